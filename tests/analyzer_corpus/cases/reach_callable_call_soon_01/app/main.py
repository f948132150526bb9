import asyncio
import time

from fastapi import FastAPI

from app import metrics

app = FastAPI()


@app.get("/hit/{name}")
async def hit(name: str):
    metrics.BUFFER.append(f"hits.{name} 1 {int(time.time())}\n")
    loop = asyncio.get_running_loop()
    if len(metrics.BUFFER) > 100:
        loop.call_soon(metrics.flush)
    else:
        loop.call_later(10, metrics.flush)
    return {"ok": True}
