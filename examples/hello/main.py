import os
import time

from fastapi import FastAPI

app = FastAPI(title="Hello from Cloudlet")
STARTED = time.time()


@app.get("/")
async def root() -> dict[str, object]:
    return {"message": "Hello from Cloudlet!", "pid": os.getpid(), "greeting": os.getenv("GREETING")}


@app.get("/items/{item_id}")
def read_item(item_id: int, q: str | None = None) -> dict[str, object]:
    return {"item_id": item_id, "q": q}
