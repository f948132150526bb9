"""The control plane's HTTP app: the FastAPI Cloud contract under /api/v1, the dashboard at /."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse

from cloudlet.api import (
    applogs,
    apps,
    deployments,
    domains,
    envvars,
    integrations,
    login,
    scaling,
    teams,
    tokens,
)
from cloudlet.control.platform import Platform

API_PREFIX = "/api/v1"


def create_app(platform: Platform, *, manage_lifecycle: bool = True) -> FastAPI:
    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        if manage_lifecycle:
            await platform.start()
        try:
            yield
        finally:
            if manage_lifecycle:
                await platform.stop()

    # redirect_slashes=False: the CLI treats a 307 as an error (contract §0.1).
    app = FastAPI(
        title="Cloudlet",
        version="0.1.0",
        lifespan=lifespan,
        redirect_slashes=False,
        docs_url="/api/docs",
        openapi_url="/api/openapi.json",
        redoc_url=None,
    )
    app.state.platform = platform
    for module in (
        login,
        teams,
        apps,
        deployments,
        applogs,
        envvars,
        tokens,
        domains,
        integrations,
        scaling,
    ):
        app.include_router(module.router, prefix=API_PREFIX)

    @app.exception_handler(RequestValidationError)
    async def _validation(_: Request, exc: RequestValidationError) -> JSONResponse:
        # FastAPI's list form, with pydantic's "Value error, " kept out of the message the
        # CLI prints (it strips only that prefix, §3).
        errors = []
        for error in exc.errors():
            where = ".".join(str(p) for p in error.get("loc", ()) if p not in ("body", "query"))
            msg = str(error.get("msg", "Invalid input")).removeprefix("Value error, ")
            errors.append(
                {
                    "loc": error.get("loc"),
                    "msg": f"{where}: {msg}" if where else msg,
                    "type": error.get("type"),
                }
            )
        return JSONResponse({"detail": errors}, status_code=422)

    from cloudlet.dashboard import routes as dashboard

    app.include_router(dashboard.router)
    return app
