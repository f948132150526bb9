import traceback

import requests
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse

app = FastAPI()
ERRORS_URL = "https://errors.internal/report"


class PaymentError(Exception):
    pass


@app.exception_handler(PaymentError)
async def payment_error(request: Request, exc: PaymentError):
    trace = traceback.format_exc()
    requests.post(ERRORS_URL, json={"path": request.url.path, "trace": trace}, timeout=3)
    return JSONResponse({"detail": "payment failed"}, status_code=402)


@app.exception_handler(ValueError)
def value_error(request: Request, exc: ValueError):
    requests.post(ERRORS_URL, json={"path": request.url.path, "error": str(exc)}, timeout=3)
    return JSONResponse({"detail": str(exc)}, status_code=400)


@app.post("/pay")
async def pay(amount: int):
    if amount <= 0:
        raise ValueError("amount must be positive")
    raise PaymentError()
