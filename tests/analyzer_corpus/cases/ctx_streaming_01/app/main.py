from fastapi import FastAPI
from fastapi.responses import StreamingResponse

app = FastAPI()


async def file_chunks(path: str):
    with open(path, "rb") as fh:
        while chunk := fh.read(65536):
            yield chunk


def sync_chunks(path: str):
    with open(path, "rb") as fh:
        while chunk := fh.read(65536):
            yield chunk


@app.get("/download/{name}")
async def download(name: str):
    return StreamingResponse(file_chunks(f"/srv/files/{name}"))


@app.get("/download-sync/{name}")
async def download_sync(name: str):
    return StreamingResponse(sync_chunks(f"/srv/files/{name}"))
