import asyncio
from contextlib import asynccontextmanager

import requests
from fastapi import FastAPI


@asynccontextmanager
async def lifespan(app: FastAPI):
    await asyncio.sleep(0)
    yield


app = FastAPI(lifespan=lifespan)


@app.on_event("startup")
def legacy_startup() -> None:
    requests.get("https://registry.internal/register", timeout=10)
