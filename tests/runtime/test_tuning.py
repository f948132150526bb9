"""The instance runtime's tuning, checked inside real instances (LocalRuntime, zygote, fork):
uvloop + httptools, the thread pool for sync endpoints, keep-alive and backlog for the router
in front, no access log, the collector's threshold, and the app's own lifespan still running.

The settings are read from inside the instance: an endpoint finds the uvicorn protocol
serving it (the request's task runs the protocol's RequestResponseCycle). No timing here."""

from __future__ import annotations

import asyncio
import contextlib
import textwrap
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from cloudlet.router.config import RouterConfig
from cloudlet.runtime import LocalRuntime, LogRecord, RevisionSpec, RuntimeEvent
from cloudlet.runtime import zygote as runtime_zygote

pytestmark = pytest.mark.anyio

# Has fastapi, uvicorn, uvloop and httptools, like a revision venv the builder makes.
PYTHON = Path("/work/main/.venv/bin/python")
GENEROUS_S = 60.0  # only to keep a broken test from hanging; never a performance bound

# What an instance reports about itself; shared by every app below.
PROBE = """
import asyncio
import gc
import sys


def runtime_settings():
    cycle = asyncio.current_task().get_coro().cr_frame.f_locals["self"]
    protocol = cycle.on_response.__self__
    settings = {
        "loop": type(asyncio.get_running_loop()).__module__,
        "http": type(protocol).__module__,
        "keep_alive_s": protocol.timeout_keep_alive,
        "access_log": protocol.access_log,
        "backlog": protocol.config.backlog,
        "lifespan": protocol.config.lifespan,
        "gc_enabled": gc.isenabled(),
        "gc_threshold": list(gc.get_threshold()),
    }
    if "anyio" in sys.modules:
        import anyio.to_thread

        settings["thread_tokens"] = anyio.to_thread.current_default_thread_limiter().total_tokens
    return settings
"""

FASTAPI_APP = (
    PROBE
    + """
import os
import threading
from contextlib import asynccontextmanager

import anyio.from_thread
import anyio.to_thread
from fastapi import FastAPI

if os.environ.get("APP_GC") == "disable":
    gc.disable()

LIFESPAN = os.environ.get("APP_LIFESPAN")
seen = {}


@asynccontextmanager
async def lifespan(app):
    seen["started"] = True
    seen["tokens_at_startup"] = anyio.to_thread.current_default_thread_limiter().total_tokens
    if os.environ.get("APP_TOKENS"):
        anyio.to_thread.current_default_thread_limiter().total_tokens = int(
            os.environ["APP_TOKENS"]
        )
    yield
    with open("lifespan-shutdown", "w") as f:
        f.write("done")


app = FastAPI(lifespan=lifespan) if LIFESPAN else FastAPI()
barrier = threading.Barrier(int(os.environ.get("APP_BARRIER", "2")))


@app.get("/runtime")
async def runtime():
    return {**runtime_settings(), "lifespan_seen": seen}


@app.get("/tokens")
def tokens():
    # A sync endpoint, in a worker thread: the limiter it was admitted by.
    limiter = anyio.from_thread.run_sync(anyio.to_thread.current_default_thread_limiter)
    return {"tokens": limiter.total_tokens, "thread": threading.current_thread().name}


@app.get("/together")
def together():
    # Returns only once APP_BARRIER requests are in sync endpoints at the same time.
    barrier.wait(timeout=60)
    return {"ok": True}
"""
)

# No FastAPI and no lifespan support: lifespan="auto" must go on without it.
RAW_APP = (
    PROBE
    + """
import json


async def app(scope, receive, send):
    if scope["type"] == "lifespan":
        raise RuntimeError("this app does not speak lifespan")
    body = json.dumps(runtime_settings()).encode()
    await send({"type": "http.response.start", "status": 200,
                "headers": [(b"content-type", b"application/json")]})
    await send({"type": "http.response.body", "body": body})
"""
)


class Instance:
    def __init__(self, socket_path: Path, logs: list[LogRecord]) -> None:
        self.socket_path = socket_path
        self.logs = logs

    def client(self) -> httpx.AsyncClient:
        transport = httpx.AsyncHTTPTransport(uds=str(self.socket_path))
        return httpx.AsyncClient(
            transport=transport, base_url="http://instance", timeout=GENEROUS_S
        )

    async def get(self, path: str) -> Any:
        async with self.client() as client:
            response = await client.get(path)
        assert response.status_code == 200, response.text
        return response.json()


def write_app(project: Path, source: str) -> None:
    project.mkdir(parents=True, exist_ok=True)
    (project / "main.py").write_text(textwrap.dedent(source))


@contextlib.asynccontextmanager
async def instance_of(
    run_dir: Path, project: Path, source: str, env: dict[str, str] | None = None
) -> AsyncIterator[Instance]:
    write_app(project, source)
    logs: list[LogRecord] = []
    events: list[RuntimeEvent] = []
    runtime = LocalRuntime(run_dir, on_log=logs.append, on_event=events.append)
    spec = RevisionSpec(
        revision_id="rev-1",
        app_id="app-1",
        python=PYTHON,
        project_dir=project,
        import_root=project,
        entrypoint="main:app",
        env=env or {},
    )
    try:
        await runtime.prepare(spec)
        started = await runtime.start_instance("rev-1")
        yield Instance(started.socket_path, logs)
    finally:
        await runtime.close()
    assert not [e for e in events if e.kind != "restarted"], events


async def test_instance_runs_uvloop_httptools_and_the_chosen_settings(
    run_dir: Path, tmp_path: Path
) -> None:
    async with instance_of(run_dir, tmp_path / "p", FASTAPI_APP) as instance:
        settings = await instance.get("/runtime")
    assert settings["loop"] == "uvloop"
    assert settings["http"] == "uvicorn.protocols.http.httptools_impl"
    assert settings["access_log"] is False
    assert settings["backlog"] == runtime_zygote.BACKLOG == 4096
    assert settings["lifespan"] == "auto"
    assert settings["gc_enabled"] is True
    assert settings["gc_threshold"][0] == runtime_zygote.GC_THRESHOLD_0
    assert settings["thread_tokens"] == runtime_zygote.THREADPOOL_SIZE == 100
    assert settings["lifespan_seen"] == {}  # this app has no lifespan of its own


async def test_keep_alive_outlasts_the_routers_pooled_connections(
    run_dir: Path, tmp_path: Path
) -> None:
    async with instance_of(run_dir, tmp_path / "p", FASTAPI_APP) as instance:
        settings = await instance.get("/runtime")
    assert settings["keep_alive_s"] == runtime_zygote.KEEP_ALIVE_S
    # The router stops reusing a pooled connection after upstream_idle_timeout and closes it
    # in its once-a-second sweep: the instance must not close it first.
    assert settings["keep_alive_s"] > RouterConfig().upstream_idle_timeout + 1
    assert settings["keep_alive_s"] > 5  # uvicorn's default, which raced the router


async def test_sync_endpoints_get_the_thread_pool(run_dir: Path, tmp_path: Path) -> None:
    # 60 requests that can only finish together: more than anyio's default 40 threads.
    parties = 60
    env = {"APP_BARRIER": str(parties)}
    async with instance_of(run_dir, tmp_path / "p", FASTAPI_APP, env) as instance:
        seen = await instance.get("/tokens")
        assert seen["tokens"] == runtime_zygote.THREADPOOL_SIZE
        assert seen["thread"] != "MainThread"
        async with instance.client() as client:
            answers = await asyncio.gather(*(client.get("/together") for _ in range(parties)))
    assert [a.status_code for a in answers] == [200] * parties


@pytest.mark.parametrize(("value", "expected"), [("12", 12), ("lots", 100), ("0", 100)])
async def test_thread_pool_size_can_be_set_by_the_app(
    run_dir: Path, tmp_path: Path, value: str, expected: int
) -> None:
    env = {runtime_zygote.THREADPOOL_ENV: value}
    async with instance_of(run_dir, tmp_path / "p", FASTAPI_APP, env) as instance:
        assert (await instance.get("/tokens"))["tokens"] == expected
        warnings = [r.message for r in instance.logs if r.level == "warning"]
    if str(expected) != value:
        assert any("CLOUDLET_THREADPOOL_SIZE" in w and repr(value) in w for w in warnings)
    else:
        assert not any("CLOUDLET_THREADPOOL_SIZE" in w for w in warnings)


async def test_an_apps_own_lifespan_still_runs_and_may_size_the_pool(
    run_dir: Path, tmp_path: Path
) -> None:
    project = tmp_path / "p"
    env = {"APP_LIFESPAN": "1", "APP_TOKENS": "7"}
    async with instance_of(run_dir, project, FASTAPI_APP, env) as instance:
        settings = await instance.get("/runtime")
        tokens = (await instance.get("/tokens"))["tokens"]
    # The pool was sized before the app's lifespan ran; what the lifespan set stays.
    assert settings["lifespan_seen"] == {"started": True, "tokens_at_startup": 100}
    assert settings["thread_tokens"] == tokens == 7
    assert (project / "lifespan-shutdown").read_text() == "done"


async def test_an_app_without_lifespan_support_still_serves(run_dir: Path, tmp_path: Path) -> None:
    async with instance_of(run_dir, tmp_path / "p", RAW_APP) as instance:
        settings = await instance.get("/")
        messages = [r.message for r in instance.logs]
    assert any("lifespan" in m and "unsupported" in m for m in messages), messages
    assert settings["loop"] == "uvloop"
    assert settings["http"] == "uvicorn.protocols.http.httptools_impl"
    assert settings["gc_threshold"][0] == runtime_zygote.GC_THRESHOLD_0


async def test_an_app_that_disabled_the_collector_keeps_it_disabled(
    run_dir: Path, tmp_path: Path
) -> None:
    env = {"APP_GC": "disable"}
    async with instance_of(run_dir, tmp_path / "p", FASTAPI_APP, env) as instance:
        settings = await instance.get("/runtime")
    assert settings["gc_enabled"] is False
    assert settings["gc_threshold"][0] < runtime_zygote.GC_THRESHOLD_0
