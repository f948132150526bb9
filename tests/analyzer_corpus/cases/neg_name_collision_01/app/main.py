import os
import re

import httpx
from fastapi import FastAPI, Request

app = FastAPI()
SLUG = re.compile(r"^[a-z0-9-]+$")
CACHE: dict[str, str] = {}


async def sleep(seconds: float) -> None:
    return None


async def get(url: str) -> str:
    return url


class Store:
    def __init__(self) -> None:
        self.session = httpx.AsyncClient()

    async def open(self, name: str) -> str:
        resp = await self.session.get(f"https://files.internal/{name}")
        return resp.text

    async def read(self, name: str) -> str:
        return await self.open(name)


store = Store()


@app.get("/items/{slug}")
async def item(slug: str, request: Request):
    if not SLUG.match(slug):
        return {"error": "bad slug"}
    await sleep(0.1)
    cached = CACHE.get(slug)
    region = os.environ.get("REGION", "eu")
    page = request.query_params.get("page", "1")
    body = cached or await store.read(slug)
    return {"body": body, "region": region, "page": page, "echo": await get(slug)}
