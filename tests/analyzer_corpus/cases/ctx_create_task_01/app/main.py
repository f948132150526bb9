import asyncio
import urllib.request

from fastapi import FastAPI

app = FastAPI()
_background: set[asyncio.Task] = set()


async def ping_upstream(url: str) -> None:
    while True:
        urllib.request.urlopen(url, timeout=2).read()
        await asyncio.sleep(30)


@app.post("/monitor")
async def monitor(url: str):
    task = asyncio.create_task(ping_upstream(url))
    _background.add(task)
    task.add_done_callback(_background.discard)
    return {"monitoring": url}
