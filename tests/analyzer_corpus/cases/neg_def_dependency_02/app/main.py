import sqlite3

import requests
from fastapi import Depends, FastAPI, Header

app = FastAPI()


class Pagination:
    def __init__(self, page: int = 1, size: int = 20) -> None:
        with sqlite3.connect("/var/lib/app/app.db") as conn:
            self.max_size = conn.execute("SELECT value FROM config WHERE key = 'max_page'").fetchone()[0]
        self.page = page
        self.size = min(size, self.max_size)


class TokenIntrospector:
    def __init__(self, url: str) -> None:
        self.url = url

    def __call__(self, authorization: str = Header()) -> dict:
        return requests.post(self.url, data={"token": authorization}, timeout=3).json()


introspect = TokenIntrospector("https://auth.internal/introspect")


@app.get("/things")
async def things(p: Pagination = Depends(), claims: dict = Depends(introspect)):
    return {"page": p.page, "size": p.size, "sub": claims.get("sub")}
