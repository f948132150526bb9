import threading
import time
from concurrent.futures import ThreadPoolExecutor
from contextlib import asynccontextmanager

import requests
from fastapi import FastAPI

POOL = ThreadPoolExecutor(max_workers=2)
stop = threading.Event()


def heartbeat() -> None:
    while not stop.is_set():
        requests.post("https://registry.internal/heartbeat", timeout=5)
        time.sleep(10)


def reindex(name: str) -> None:
    time.sleep(5)


@asynccontextmanager
async def lifespan(app: FastAPI):
    worker = threading.Thread(target=heartbeat, daemon=True)
    worker.start()
    yield
    stop.set()


app = FastAPI(lifespan=lifespan)


@app.post("/reindex/{name}")
async def start_reindex(name: str):
    POOL.submit(reindex, name)
    return {"queued": name}
