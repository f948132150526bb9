import asyncio
import time as t
from time import sleep as pause

from fastapi import FastAPI

app = FastAPI()


@app.post("/retry")
async def retry(attempts: int = 3):
    for i in range(attempts):
        pause(0.2 * i)
    return {"attempts": attempts}


@app.post("/backoff")
async def backoff():
    t.sleep(1)
    await asyncio.sleep(1)
    return {"ok": True, "at": t.time()}
