import socket

from fastapi import FastAPI


class ReverseDNSMiddleware:
    def __init__(self, app):
        self.app = app

    def _resolve(self, ip: str) -> str:
        try:
            return socket.gethostbyaddr(ip)[0]
        except OSError:
            return ip

    async def __call__(self, scope, receive, send):
        if scope["type"] == "http" and scope.get("client"):
            scope.setdefault("state", {})["client_host"] = self._resolve(scope["client"][0])
        await self.app(scope, receive, send)


api = FastAPI()


@api.get("/")
async def index():
    return {"ok": True}


app = ReverseDNSMiddleware(api)
