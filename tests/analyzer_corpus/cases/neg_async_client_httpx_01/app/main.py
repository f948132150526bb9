import httpx
from fastapi import FastAPI
from fastapi.responses import StreamingResponse

app = FastAPI()
client = httpx.AsyncClient(base_url="https://upstream.internal", timeout=10)


@app.get("/users/{user_id}")
async def user(user_id: int):
    resp = await client.get(f"/users/{user_id}")
    return resp.json()


@app.post("/events")
async def event(kind: str):
    async with httpx.AsyncClient() as ac:
        resp = await ac.post("https://events.internal/ingest", json={"kind": kind})
        body = await resp.aread()
    return {"status": resp.status_code, "bytes": len(body)}


@app.get("/proxy/{path:path}")
async def proxy(path: str):
    async def relay():
        async with client.stream("GET", f"/files/{path}") as resp:
            async for chunk in resp.aiter_bytes():
                yield chunk

    return StreamingResponse(relay())
