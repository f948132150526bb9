from fastapi import FastAPI
from fastapi.concurrency import run_in_threadpool
from starlette import concurrency

from app.geo import geocode

app = FastAPI()


def read_rules() -> str:
    with open("/etc/app/rules.txt") as fh:
        return fh.read()


@app.get("/rules")
async def rules():
    return {"rules": await run_in_threadpool(read_rules)}


@app.get("/geocode")
async def geo(address: str):
    return await concurrency.run_in_threadpool(geocode, address)
