"""Real processes for router tests: uvicorn instances on Unix sockets, a feed publisher in
this process (on its own event-loop thread) and the router as a subprocess on 127.0.0.1."""

from __future__ import annotations

import asyncio
import os
import re
import resource
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Coroutine, Iterator
from functools import partial
from pathlib import Path
from typing import Any, TypeVar

import httpx
import pytest

from cloudlet.router.feed import NO_SCALE, FeedPublisher, RouteTable, ScaleSpec

REPO = Path(__file__).resolve().parents[2]
T = TypeVar("T")

# Generous bounds for things that must happen; a test never asserts on how fast.
WAIT = 30.0

APP_SOURCE = r"""
import asyncio
import hashlib
import itertools
import os
from pathlib import Path

from fastapi import FastAPI, Request, WebSocket, WebSocketDisconnect
from fastapi.responses import Response, StreamingResponse
from starlette.requests import ClientDisconnect
from uvicorn.protocols.http import httptools_impl

INSTANCE = os.environ["INSTANCE_ID"]
REVISION = os.environ.get("REVISION_ID", "")
PATTERN = bytes(range(256)) * 256

# Number each accepted connection and put the number in the request scope, so tests can
# see which upstream connection served a request.
_serial = itertools.count(1)
_open = set()
_made = httptools_impl.HttpToolsProtocol.connection_made
_lost = httptools_impl.HttpToolsProtocol.connection_lost
_begin = httptools_impl.HttpToolsProtocol.on_message_begin


def _connection_made(self, transport):
    self._test_conn = next(_serial)
    _open.add(self._test_conn)
    _made(self, transport)


def _connection_lost(self, exc):
    _open.discard(self._test_conn)
    _lost(self, exc)


def _on_message_begin(self):
    _begin(self)
    self.scope["test.conn"] = self._test_conn


httptools_impl.HttpToolsProtocol.connection_made = _connection_made
httptools_impl.HttpToolsProtocol.connection_lost = _connection_lost
httptools_impl.HttpToolsProtocol.on_message_begin = _on_message_begin

app = FastAPI()


def me():
    return {"instance": INSTANCE, "revision": REVISION}


async def wait_for_file(path):
    while not os.path.exists(path):
        await asyncio.sleep(0.01)


@app.get("/")
async def root():
    return me()


@app.get("/echo")
async def echo(request: Request):
    headers = [[k.decode("latin-1"), v.decode("latin-1")] for k, v in request.scope["headers"]]
    return {**me(), "conn": request.scope.get("test.conn"), "headers": headers}


@app.get("/open")
async def open_connections():
    return {**me(), "open": len(_open)}


@app.get("/sleep")
async def sleep(ms: int = 0):
    await asyncio.sleep(ms / 1000)
    return me()


@app.api_route("/hold", methods=["GET", "POST"])
async def hold(started: str, release: str):
    Path(started).write_text(INSTANCE)
    await wait_for_file(release)
    return me()


@app.post("/hash")
async def hash_body(request: Request, started: str | None = None, gate: str | None = None):
    if started:
        Path(started).write_text(INSTANCE)
    if gate:
        await wait_for_file(gate)
    digest = hashlib.sha256()
    size = 0
    async for chunk in request.stream():
        digest.update(chunk)
        size += len(chunk)
    return {**me(), "sha256": digest.hexdigest(), "size": size}


@app.api_route("/big", methods=["GET", "HEAD"])
async def big(size: int, progress: str | None = None):
    async def chunks():
        sent = 0
        while sent < size:
            chunk = PATTERN[: min(len(PATTERN), size - sent)]
            sent += len(chunk)
            if progress:
                Path(progress).write_text(str(sent))
            yield chunk

    return StreamingResponse(chunks(), media_type="application/octet-stream")


@app.get("/status/{code}")
async def status(code: int):
    return Response(status_code=code)


@app.post("/partial")
async def partial(request: Request, marker: str, started: str):
    Path(started).write_text(INSTANCE)
    try:
        async for _ in request.stream():
            pass
    except ClientDisconnect:
        Path(marker).write_text("disconnected")
        raise
    Path(marker).write_text("complete")
    return me()


@app.websocket("/ws")
async def ws(websocket: WebSocket):
    await websocket.accept()
    try:
        while True:
            message = await websocket.receive()
            if message["type"] == "websocket.disconnect":
                break
            if message.get("text") is not None:
                await websocket.send_text(message["text"])
            else:
                await websocket.send_bytes(message["bytes"])
    except WebSocketDisconnect:
        pass
"""

PATTERN = bytes(range(256)) * 256


def pattern_bytes(size: int) -> Iterator[bytes]:
    """What the app's /big sends, chunk by chunk."""
    sent = 0
    while sent < size:
        chunk = PATTERN[: min(len(PATTERN), size - sent)]
        sent += len(chunk)
        yield chunk


def wait_until(predicate: Any, what: str, timeout: float = WAIT) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"gave up waiting for {what}")
        time.sleep(0.01)


class Instance:
    """A uvicorn process serving the test app on a Unix socket."""

    def __init__(self, workdir: Path, instance_id: str, revision: str) -> None:
        self.id = instance_id
        self.revision = revision
        self.socket = str(workdir / f"{instance_id}.sock")
        self.log = workdir / f"{instance_id}.log"
        env = {**os.environ, "INSTANCE_ID": instance_id, "REVISION_ID": revision}
        with open(self.log, "wb") as log:
            self.proc = subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "uvicorn",
                    "--app-dir",
                    str(workdir),
                    "app:app",
                    "--uds",
                    self.socket,
                    "--http",
                    "httptools",
                    "--loop",
                    "uvloop",
                    "--timeout-keep-alive",
                    "600",
                    "--log-level",
                    "warning",
                ],
                env=env,
                stdout=subprocess.DEVNULL,
                stderr=log,
            )
        wait_until(self._ready, f"instance {instance_id} to listen")

    def _ready(self) -> bool:
        if self.proc.poll() is not None:
            raise AssertionError(f"instance exited: {self.log.read_text()}")
        if not os.path.exists(self.socket):
            return False
        try:
            with httpx.Client(transport=httpx.HTTPTransport(uds=self.socket)) as client:
                return client.get("http://instance/").status_code == 200
        except httpx.TransportError:
            return False

    def get(self, path: str) -> httpx.Response:
        """A request straight to the instance, not through the router."""
        with httpx.Client(transport=httpx.HTTPTransport(uds=self.socket)) as client:
            return client.get(f"http://instance{path}")

    @property
    def spec(self) -> dict[str, str]:
        return {"id": self.id, "socket": self.socket}

    def kill(self) -> None:
        """SIGKILL: the socket file stays behind, as after a crash."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait(WAIT)

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(WAIT)


class Publisher:
    """A FeedPublisher on an event loop in a background thread, with blocking calls."""

    def __init__(self, path: str) -> None:
        self.path = path
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()
        # Revisions routers asked an instance for (activator demand), in order.
        self.demanded: list[str] = []
        self.pub = FeedPublisher(path, on_demand=self.demanded.append)
        self.call(self.pub.start())

    def call(self, coro: Coroutine[Any, Any, T]) -> T:
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(WAIT * 2)

    def publish(self, table: RouteTable) -> int:
        async def publish() -> int:
            return self.pub.publish(table)

        return self.call(publish())

    def wait_applied(self, generation: int, timeout: float = WAIT, min_routers: int = 1) -> bool:
        return self.call(self.pub.wait_applied(generation, timeout, min_routers=min_routers))

    def inflight(self) -> dict[str, int]:
        async def inflight() -> dict[str, int]:
            return self.pub.inflight()

        return self.call(inflight())

    def held(self) -> dict[str, int]:
        async def held() -> dict[str, int]:
            return self.pub.held()

        return self.call(held())

    def rejected(self) -> dict[str, int]:
        async def rejected() -> dict[str, int]:
            return self.pub.rejected()

        return self.call(rejected())

    def routers(self) -> int:
        async def routers() -> int:
            return self.pub.routers

        return self.call(routers())

    def close(self) -> None:
        if self.loop.is_closed():
            return
        self.call(self.pub.close())
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(WAIT)
        self.loop.close()


class Router:
    """``python -m cloudlet.router`` on a free 127.0.0.1 port."""

    _count = 0

    def __init__(self, workdir: Path, feed: str, *extra: str, nofile: int | None = None) -> None:
        Router._count += 1
        self.log = workdir / f"router-{Router._count}.log"
        with open(self.log, "wb") as log:
            self.proc = subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "cloudlet.router",
                    "--bind",
                    "127.0.0.1:0",
                    "--feed",
                    feed,
                    # Pooled connections must not expire between two requests of a test.
                    "--upstream-idle-timeout",
                    "300",
                    *extra,
                ],
                cwd=REPO,
                stdout=subprocess.DEVNULL,
                stderr=log,
                preexec_fn=None if nofile is None else partial(_limit_nofile, nofile),
            )
        self.port = 0
        wait_until(self._listening, "the router to listen")
        self.url = f"http://127.0.0.1:{self.port}"

    def _listening(self) -> bool:
        if self.proc.poll() is not None:
            raise AssertionError(f"router exited: {self.log.read_text()}")
        found = re.search(r"listening on http://127\.0\.0\.1:(\d+)", self.log.read_text())
        if found:
            self.port = int(found.group(1))
        return bool(found)

    def client(self, host: str = "a.localhost", **kwargs: Any) -> httpx.Client:
        return httpx.Client(
            base_url=self.url, headers={"Host": host}, trust_env=False, timeout=WAIT, **kwargs
        )

    def connect(self) -> socket.socket:
        return socket.create_connection(("127.0.0.1", self.port), timeout=WAIT)

    def peak_rss_kb(self) -> int:
        for line in Path(f"/proc/{self.proc.pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1])
        raise AssertionError("no VmHWM")

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(WAIT)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(WAIT)

    def errors(self) -> list[str]:
        """Log lines that show a bug: an exception escaping a callback, or an error."""
        return [
            line
            for line in self.log.read_text().splitlines()
            if "Traceback" in line or " ERROR " in line or "Exception" in line
        ]


def _limit_nofile(limit: int) -> None:
    resource.setrlimit(resource.RLIMIT_NOFILE, (limit, limit))


def make_table(
    hosts: dict[str, str],
    revisions: dict[str, list[Instance]],
    scale: ScaleSpec = NO_SCALE,
) -> RouteTable:
    return RouteTable(
        hosts=hosts,
        revisions={
            rid: {"app": rid, "instances": [i.spec for i in insts], "scale": scale}
            for rid, insts in revisions.items()
        },
    )


class Cluster:
    """Instances, a publisher and a router; everything stopped by PID at the end."""

    def __init__(self, workdir: Path) -> None:
        self.dir = workdir
        (workdir / "app.py").write_text(APP_SOURCE)
        self.instances: list[Instance] = []
        self.routers: list[Router] = []
        self.publisher: Publisher | None = None
        self.feed = str(workdir / "feed.sock")

    def instance(self, instance_id: str, revision: str) -> Instance:
        inst = Instance(self.dir, instance_id, revision)
        self.instances.append(inst)
        return inst

    def publish(self, table: RouteTable) -> int:
        assert self.publisher is not None
        generation = self.publisher.publish(table)
        assert self.publisher.wait_applied(generation)
        return generation

    def start_publisher(self) -> Publisher:
        self.publisher = Publisher(self.feed)
        return self.publisher

    def router(self, *extra: str, nofile: int | None = None) -> Router:
        router = Router(self.dir, self.feed, *extra, nofile=nofile)
        self.routers.append(router)
        return router

    def marker(self, name: str) -> Path:
        return self.dir / f"{name}-{time.monotonic_ns()}"

    def close(self) -> None:
        for router in self.routers:
            router.stop()
        if self.publisher is not None:
            self.publisher.close()
        for inst in self.instances:
            inst.stop()
        errors = [line for router in self.routers for line in router.errors()]
        assert not errors, "\n".join(errors)


def _short_dir() -> Path:
    # Unix socket paths must stay under 108 bytes; pytest's tmp_path can be longer.
    return Path(tempfile.mkdtemp(prefix="clr-", dir="/tmp"))


@pytest.fixture
def cluster() -> Iterator[Cluster]:
    workdir = _short_dir()
    c = Cluster(workdir)
    try:
        yield c
    finally:
        c.close()
        shutil.rmtree(workdir, ignore_errors=True)


@pytest.fixture(scope="module")
def shared() -> Iterator[tuple[Cluster, Router]]:
    """Two instances of revision r1 behind a.localhost, r0 (no instances) behind
    empty.localhost; shared by the tests that leave them as they found them."""
    workdir = _short_dir()
    c = Cluster(workdir)
    try:
        i1 = c.instance("i1", "r1")
        i2 = c.instance("i2", "r1")
        c.start_publisher()
        router = c.router()
        c.publish(
            make_table({"a.localhost": "r1", "empty.localhost": "r0"}, {"r1": [i1, i2], "r0": []})
        )
        yield c, router
    finally:
        c.close()
        shutil.rmtree(workdir, ignore_errors=True)
