import asyncio
import functools
import hashlib
import sqlite3
from concurrent.futures import ProcessPoolExecutor, ThreadPoolExecutor

from fastapi import FastAPI

app = FastAPI()
IO_POOL = ThreadPoolExecutor(max_workers=8)
CPU_POOL = ProcessPoolExecutor(max_workers=2)


def count_rows(table: str) -> int:
    with sqlite3.connect("/var/lib/app/app.db") as conn:
        return conn.execute(f"SELECT count(*) FROM {table}").fetchone()[0]


def derive(password: str) -> bytes:
    return hashlib.pbkdf2_hmac("sha256", password.encode(), b"salt", 600_000)


@app.get("/count/{table}")
async def count(table: str):
    loop = asyncio.get_running_loop()
    n = await loop.run_in_executor(None, count_rows, table)
    m = await loop.run_in_executor(IO_POOL, functools.partial(count_rows, table))
    return {"n": n, "m": m}


@app.post("/derive")
async def derive_route(password: str):
    key = await asyncio.get_running_loop().run_in_executor(CPU_POOL, derive, password)
    return {"key": key.hex()}
