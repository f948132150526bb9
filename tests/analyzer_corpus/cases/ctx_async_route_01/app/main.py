import time

from fastapi import FastAPI

app = FastAPI()


@app.get("/slow")
async def slow():
    time.sleep(0.5)
    return {"ok": True}


@app.get("/fast")
def fast():
    time.sleep(0.5)
    return {"ok": True}
