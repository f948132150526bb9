import requests
from fastapi import FastAPI, HTTPException, Request
from fastapi.responses import JSONResponse

app = FastAPI()
ERRORS = "https://errors.internal/report"


class QuotaExceeded(Exception):
    pass


@app.exception_handler(QuotaExceeded)
def quota_exceeded(request: Request, exc: QuotaExceeded):
    requests.post(ERRORS, json={"kind": "quota", "path": request.url.path}, timeout=3)
    return JSONResponse({"detail": "quota exceeded"}, status_code=429)


def on_http_error(request: Request, exc: HTTPException):
    with open("/var/log/app/http_errors.log", "a") as fh:
        fh.write(f"{exc.status_code} {request.url.path}\n")
    return JSONResponse({"detail": exc.detail}, status_code=exc.status_code)


def on_crash(request: Request, exc: Exception):
    requests.post(ERRORS, json={"kind": "crash", "error": repr(exc)}, timeout=3)
    return JSONResponse({"detail": "internal error"}, status_code=500)


app.add_exception_handler(HTTPException, on_http_error)
app.add_exception_handler(Exception, on_crash)


@app.get("/quota")
async def quota():
    raise QuotaExceeded()


@app.get("/things/{thing_id}")
async def thing(thing_id: int):
    raise HTTPException(status_code=404, detail=f"no thing {thing_id}")
