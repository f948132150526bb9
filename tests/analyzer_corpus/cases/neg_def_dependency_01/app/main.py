import json
from collections.abc import Iterator

import psycopg2
from fastapi import Depends, FastAPI

app = FastAPI()


def load_settings() -> dict:
    with open("/etc/app/settings.json") as fh:
        return json.load(fh)


def get_conn() -> Iterator[psycopg2.extensions.connection]:
    conn = psycopg2.connect("dbname=app")
    try:
        yield conn
        conn.commit()
    finally:
        conn.close()


def get_user_count(conn=Depends(get_conn)) -> int:
    with conn.cursor() as cur:
        cur.execute("SELECT count(*) FROM users")
        return cur.fetchone()[0]


@app.get("/stats")
async def stats(settings: dict = Depends(load_settings), users: int = Depends(get_user_count)):
    return {"env": settings.get("env"), "users": users}
