import sqlite3

from fastapi import FastAPI

app = FastAPI()
DB = "/var/lib/app/app.db"


@app.get("/healthz")
async def healthz():  # sync-ok: liveness probe must not depend on the threadpool
    with sqlite3.connect(DB) as conn:
        conn.execute("SELECT 1")
    return {"ok": True}


@app.get("/readyz")
async def readyz():
    with sqlite3.connect(DB) as conn:
        conn.execute("SELECT 1")
    return {"ok": True}
