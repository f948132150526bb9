import queue
import threading
from concurrent.futures import ThreadPoolExecutor

from fastapi import FastAPI

app = FastAPI()
POOL = ThreadPoolExecutor(max_workers=4)
JOBS: queue.Queue[str] = queue.Queue()
LOCK = threading.Lock()
STATE = {"n": 0}


def crunch(n: int) -> int:
    return sum(i * i for i in range(n))


@app.get("/crunch/{n}")
async def crunch_route(n: int):
    future = POOL.submit(crunch, n)
    return {"result": future.result()}


@app.get("/next-job")
async def next_job():
    return {"job": JOBS.get(timeout=30)}


@app.post("/bump")
async def bump():
    with LOCK:
        STATE["n"] += 1
    return STATE


@app.post("/snapshot")
def snapshot():
    with LOCK:
        with open("/var/lib/app/state.json", "w") as fh:
            fh.write(str(STATE["n"]))
    return {"ok": True}
