import asyncio
import logging
import os
import signal

from fastapi import FastAPI

app = FastAPI()
log = logging.getLogger("sample")


@app.get("/")
async def root() -> dict[str, object]:
    await asyncio.sleep(0)
    log.warning("root was called")
    return {"app": "async_uvlock", "greeting": os.getenv("GREETING"), "pid": os.getpid()}


@app.get("/slow")
async def slow(seconds: float = 0.2) -> dict[str, float]:
    await asyncio.sleep(seconds)
    return {"slept": seconds}


@app.post("/crash")
async def crash() -> None:
    """Dies mid-request, as a segfaulting extension or the OOM killer would."""
    await asyncio.sleep(0.05)
    os.kill(os.getpid(), signal.SIGKILL)
