import subprocess

from fastapi import FastAPI
from starlette.middleware.base import BaseHTTPMiddleware

BUILD = subprocess.check_output(["git", "describe", "--always"], text=True).strip()


class VersionHeader(BaseHTTPMiddleware):
    async def dispatch(self, request, call_next):
        response = await call_next(request)
        rev = subprocess.check_output(["git", "rev-parse", "--short", "HEAD"], text=True)
        response.headers["x-revision"] = rev.strip()
        response.headers["x-build"] = BUILD
        return response


app = FastAPI()
app.add_middleware(VersionHeader)
