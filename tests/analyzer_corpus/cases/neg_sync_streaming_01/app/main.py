import time

from fastapi import FastAPI
from fastapi.responses import StreamingResponse

from app.export import export_rows

app = FastAPI()


def countdown(n: int):
    for i in range(n, 0, -1):
        yield f"{i}\n"
        time.sleep(1)


@app.get("/export/{table}")
async def export(table: str):
    return StreamingResponse(export_rows(table), media_type="text/csv")


@app.get("/countdown")
async def count():
    return StreamingResponse(countdown(5), media_type="text/plain")
