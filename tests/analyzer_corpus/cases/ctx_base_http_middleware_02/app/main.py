from fastapi import FastAPI
from starlette.middleware import Middleware

from .middleware import SessionMiddleware

app = FastAPI(middleware=[Middleware(SessionMiddleware, url="mongodb://db:27017")])


@app.get("/")
async def index():
    return {"ok": True}
