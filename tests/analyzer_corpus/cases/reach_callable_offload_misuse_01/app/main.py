import asyncio

from fastapi import FastAPI
from fastapi.concurrency import run_in_threadpool

app = FastAPI()


def load_report(path: str) -> str:
    with open(path) as fh:
        return fh.read()


def parse_report(text: str) -> dict:
    return {"lines": text.count("\n")}


@app.get("/report/{name}")
async def report(name: str):
    text = await run_in_threadpool(load_report(f"/srv/reports/{name}.txt"))
    return await run_in_threadpool(parse_report, text)


@app.get("/report-ok/{name}")
async def report_ok(name: str):
    text = await asyncio.to_thread(load_report, f"/srv/reports/{name}.txt")
    return parse_report(text)
