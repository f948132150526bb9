import time

from fastapi import FastAPI

app = FastAPI()


def pause() -> None:
    time.sleep(0.01)


@app.get("/")
async def root() -> dict[str, str]:
    pause()  # blocks the event loop: the analyzer reports it
    return {"app": "blocking"}


@app.get("/threaded")
def threaded() -> dict[str, str]:
    time.sleep(0.01)  # a plain def route runs in the threadpool: fine
    return {"app": "blocking"}
