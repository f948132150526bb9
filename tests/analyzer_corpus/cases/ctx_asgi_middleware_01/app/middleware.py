from pathlib import Path

BLOCKLIST = Path("/etc/app/blocklist.txt")


class BlocklistMiddleware:
    def __init__(self, app):
        self.app = app

    async def __call__(self, scope, receive, send):
        if scope["type"] == "http":
            blocked = set(BLOCKLIST.read_text().split())
            client = scope.get("client")
            if client and client[0] in blocked:
                await send({"type": "http.response.start", "status": 403, "headers": []})
                await send({"type": "http.response.body", "body": b"forbidden"})
                return
        await self.app(scope, receive, send)
