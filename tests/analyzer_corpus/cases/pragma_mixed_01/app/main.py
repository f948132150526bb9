import subprocess

import requests
from fastapi import Depends, FastAPI, Request

app = FastAPI()


@app.middleware("http")
async def stamp(request: Request, call_next):
    response = await call_next(request)
    response.headers["x-host"] = subprocess.check_output(["hostname"], text=True).strip()  # noqa: ASYNC221  # sync-ok: 1 ms
    return response


async def audit(request: Request) -> None:
    requests.post("https://audit.internal/log", data="# sync-ok", timeout=2)


async def tenant() -> str:  # sync-ok: file on tmpfs
    return open("/run/app/tenant").read().strip()


@app.get("/", dependencies=[Depends(audit)])
async def index(t: str = Depends(tenant)):
    return {"tenant": t}
