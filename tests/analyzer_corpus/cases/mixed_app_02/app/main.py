import asyncio
from contextlib import asynccontextmanager

import anyio.to_thread
from fastapi import FastAPI, Request, WebSocket
from fastapi.responses import JSONResponse, StreamingResponse

from app import jobs, storage

QUEUE: asyncio.Queue[str] = asyncio.Queue()


@asynccontextmanager
async def lifespan(app: FastAPI):
    task = asyncio.create_task(jobs.transcode_loop(QUEUE))
    yield
    task.cancel()


app = FastAPI(lifespan=lifespan)


class NotFound(Exception):
    pass


@app.exception_handler(NotFound)
async def not_found(request: Request, exc: NotFound):
    with open("/var/log/media/404.log", "a") as fh:
        fh.write(request.url.path + "\n")
    return JSONResponse({"detail": "not found"}, status_code=404)


@app.get("/media/{key}")
async def media(key: str):
    size = await anyio.to_thread.run_sync(storage.head, key)
    if not size:
        raise NotFound()
    return StreamingResponse(storage.stream_object(key), headers={"content-length": str(size)})


@app.post("/media/{key}/transcode")
async def transcode(key: str):
    await QUEUE.put(key)
    return {"queued": key}


@app.websocket("/ws/progress/{key}")
async def progress(websocket: WebSocket, key: str):
    await websocket.accept()
    while key not in jobs.PROGRESS:
        await asyncio.sleep(1)
    await websocket.send_json({"key": key, "duration": jobs.PROGRESS[key]})
    await websocket.close()
