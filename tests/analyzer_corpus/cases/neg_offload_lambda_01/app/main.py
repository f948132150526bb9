import asyncio
from pathlib import Path

from fastapi import FastAPI
from fastapi.concurrency import run_in_threadpool

app = FastAPI()
ROOT = Path("/srv/content")


@app.get("/pages/{name}")
async def page(name: str):
    body = await asyncio.to_thread(lambda: (ROOT / f"{name}.md").read_text())
    return {"body": body}


@app.put("/pages/{name}")
async def save_page(name: str, body: str):
    await run_in_threadpool(lambda: (ROOT / f"{name}.md").write_text(body))
    return {"ok": True}
