import asyncio

from fastapi import FastAPI

from app.notify import notifier

app = FastAPI()
_tasks: set[asyncio.Task] = set()


@app.post("/broadcast")
async def broadcast(text: str, to: list[str]):
    t = asyncio.create_task(notifier.notify_all(to, text))
    _tasks.add(t)
    t.add_done_callback(_tasks.discard)
    return {"queued": len(to)}
