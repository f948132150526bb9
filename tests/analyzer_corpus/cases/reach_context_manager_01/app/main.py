from fastapi import FastAPI

from app.locks import FileLock

app = FastAPI()
COUNTER = {"n": 0}


@app.post("/counter")
async def bump():
    with FileLock("/var/lock/app-counter.lock"):
        COUNTER["n"] += 1
        return COUNTER
