import requests
from fastapi import FastAPI
from fastapi.responses import StreamingResponse

app = FastAPI()
UPSTREAM = "https://media.internal"


async def relay(path: str):
    with requests.get(f"{UPSTREAM}/{path}", stream=True, timeout=30) as upstream:
        for chunk in upstream.iter_content(chunk_size=8192):
            yield chunk


@app.get("/media/{path:path}")
async def media(path: str):
    return StreamingResponse(content=relay(path), media_type="application/octet-stream")
