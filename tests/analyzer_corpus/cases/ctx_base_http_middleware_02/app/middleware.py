from starlette.middleware.base import BaseHTTPMiddleware, RequestResponseEndpoint
from starlette.requests import Request
from starlette.responses import Response

from .sessions import SessionStore


class SessionMiddleware(BaseHTTPMiddleware):
    def __init__(self, app, url: str) -> None:
        super().__init__(app)
        self.store = SessionStore(url)

    async def dispatch(self, request: Request, call_next: RequestResponseEndpoint) -> Response:
        sid = request.cookies.get("sid")
        request.state.session = self.store.load(sid) if sid else None
        return await call_next(request)
