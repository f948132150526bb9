import time

from fastapi import FastAPI, Request

app = FastAPI()
ACCESS_LOG = "/var/log/app/access.log"


@app.middleware("http")
async def access_log(request: Request, call_next):
    start = time.perf_counter()
    response = await call_next(request)
    elapsed = time.perf_counter() - start
    with open(ACCESS_LOG, "a") as fh:
        fh.write(f"{request.method} {request.url.path} {response.status_code} {elapsed:.3f}\n")
    return response
