import asyncio
import subprocess
import time

import requests
from fastapi import FastAPI

app = FastAPI()


def render_pdf(doc_id: int) -> bytes:
    subprocess.run(["wkhtmltopdf", f"/srv/docs/{doc_id}.html", f"/tmp/{doc_id}.pdf"], check=True)
    with open(f"/tmp/{doc_id}.pdf", "rb") as fh:
        return fh.read()


@app.get("/docs/{doc_id}.pdf")
async def pdf(doc_id: int):
    data = await asyncio.to_thread(render_pdf, doc_id)
    return {"size": len(data)}


@app.get("/fetch")
async def fetch(url: str):
    resp = await asyncio.to_thread(requests.get, url, timeout=5)
    return {"status": resp.status_code}


@app.post("/slow")
async def slow(seconds: float):
    def work() -> float:
        time.sleep(seconds)
        return seconds

    return {"slept": await asyncio.to_thread(work)}
