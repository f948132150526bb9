from fastapi import FastAPI

from app.services.geo import resolve_host

app = FastAPI()


@app.get("/resolve/{host}")
async def resolve(host: str):
    return {"host": host, "addresses": resolve_host(host)}
