from pathlib import Path

from fastapi import Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse

LOG = Path("/var/log/app/validation.log")


def record(request: Request, exc: RequestValidationError) -> None:
    with LOG.open("a") as fh:
        fh.write(f"{request.url.path} {exc.errors()}\n")


async def on_validation_error(request: Request, exc: RequestValidationError) -> JSONResponse:
    record(request, exc)
    return JSONResponse({"detail": exc.errors()}, status_code=422)
