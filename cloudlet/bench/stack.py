"""What the benchmarks compare, started for real: direct uvicorn, Cloudlet (the real
LocalRuntime + the router process fed by a FeedPublisher in this process), nginx."""

from __future__ import annotations

import asyncio
import contextlib
import grp
import logging
import os
import pwd
import re
import shutil
import sys
import tempfile
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

from cloudlet.bench import procs
from cloudlet.router.feed import FeedPublisher, RouteTable
from cloudlet.runtime import Instance, LocalRuntime, LogRecord, RevisionSpec, RuntimeEvent

log = logging.getLogger("cloudlet.bench")

HOST = "bench.localhost"
T = TypeVar("T")

# The reference app of reference/dataplane.md.
HELLO_APP = """\
from fastapi import FastAPI

app = FastAPI()


@app.get("/")
async def root():
    return {"message": "Hello World"}
"""

# The same, plus an endpoint that waits (for concurrency, not CPU).
SLEEP_APP = """\
import asyncio

from fastapi import FastAPI

app = FastAPI()


@app.get("/")
async def root():
    return {"message": "Hello World"}


@app.get("/sleep")
async def sleep(s: float = 1.0):
    await asyncio.sleep(s)
    return {"slept": s}
"""


@dataclass
class Target:
    """One setup compared: where it listens, its servers, and the measured runs against it."""

    key: str
    label: str
    port: int
    groups: dict[str, list[int]]  # "proxy" / "app" → root PIDs (children are counted too)
    note: str = ""
    runs: list[dict[str, Any]] = field(default_factory=list)

    def to_json(self, summary: dict[str, Any]) -> dict[str, Any]:
        return {
            "key": self.key,
            "label": self.label,
            "note": self.note,
            "summary": summary,
            "runs": self.runs,
        }


def interleave(targets: Sequence[T], rounds: int) -> Iterator[tuple[int, T]]:
    """(round from 1, target): every target once per round, in an order that rotates from
    round to round."""
    for r in range(rounds):
        shift = r % len(targets)
        for target in [*targets[shift:], *targets[:shift]]:
            yield r + 1, target


def workdir(prefix: str) -> Path:
    """A short temporary directory (Unix socket paths are limited to 107 bytes)."""
    base = tempfile.gettempdir()
    if len(base) > 40:
        base = "/tmp"
    return Path(tempfile.mkdtemp(prefix=prefix, dir=base))


def write_app(directory: Path, source: str) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "main.py").write_text(source)
    return directory


async def start_server(
    name: str,
    command: Sequence[str],
    logs: Path,
    placement: procs.Placement,
    *,
    path: str = "/",
    wait_s: float = 30,
    env: Mapping[str, str] | None = None,
    cwd: Path | None = None,
    output: Path | None = None,
) -> tuple[procs.Server, int]:
    """Start ``command`` ("{port}" replaced by a free port) on the servers' core and wait until
    GET ``path`` answers 200 (another port if that one was taken meanwhile). Its output goes
    to ``logs/<name>-<port>.log`` unless ``output``."""
    for _ in range(5):
        port = procs.free_port()
        server = await procs.Server.start(
            name,
            [part.replace("{port}", str(port)) for part in command],
            output or logs / f"{name}-{port}.log",
            prefix=placement.server_prefix(),
            env=env,
            cwd=cwd,
            autogroup_nice=placement.nice,
        )
        try:
            await procs.wait_http(port, path=path, server=server, wait_s=wait_s)
        except RuntimeError as error:
            await server.stop()
            if "address already in use" in server.tail().lower():
                continue
            if output is not None:
                raise RuntimeError(
                    f"{error}\n(its output went to {output}: run {command[:3]} in {cwd} to see it)"
                ) from None
            raise
        return server, port
    raise RuntimeError(f"could not find a free port for {name}")


async def start_uvicorn(
    app_dir: Path, logs: Path, placement: procs.Placement, name: str = "uvicorn"
) -> tuple[procs.Server, int]:
    """The reference setup: uvicorn + uvloop + httptools on 127.0.0.1 TCP."""
    command = [
        sys.executable,
        "-m",
        "uvicorn",
        "main:app",
        "--app-dir",
        str(app_dir),
        "--host",
        "127.0.0.1",
        "--port",
        "{port}",
        "--loop",
        "uvloop",
        "--http",
        "httptools",
        "--log-level",
        "warning",
        "--no-access-log",
        "--timeout-keep-alive",
        "300",
        "--backlog",
        "4096",
    ]
    return await start_server(name, command, logs, placement)


class CloudletApp:
    """One revision run by the real LocalRuntime, routed by a FeedPublisher in this process.

    Call from the event loop that will keep running for as long as the instances live (a
    zygote dies with the thread that started it).
    """

    def __init__(
        self,
        directory: Path,
        source: str,
        *,
        sched_batch: bool = False,
        revision_id: str = "bench-rev",
        memory_limit_mb: int = 2048,
    ) -> None:
        self.dir = directory
        self.app_dir = write_app(directory / "app", source)
        self.sched_batch = sched_batch
        self.revision_id = revision_id
        self.memory_limit_mb = memory_limit_mb
        self.feed_path = directory / "feed.sock"
        self.runtime = LocalRuntime(
            directory / "run",
            on_log=self._on_log,
            on_event=self._on_event,
            sched_batch=sched_batch,
        )
        self.feed = FeedPublisher(self.feed_path)
        self.instances: list[Instance] = []
        self.app_log: list[str] = []
        self.generation = 0

    def _on_log(self, record: LogRecord) -> None:
        self.app_log.append(f"{record.level} {record.message}")
        del self.app_log[:-200]

    def _on_event(self, event: RuntimeEvent) -> None:
        log.warning("runtime: %s %s %s", event.instance_id, event.kind, event.detail)
        self.app_log.append(f"EVENT {event.instance_id} {event.kind}: {event.detail}")

    async def start(self, instances: int, env: Mapping[str, str] | None = None) -> None:
        """Start ``instances`` instances of the app, with ``env`` as its environment."""
        await self.feed.start()
        spec = RevisionSpec(
            revision_id=self.revision_id,
            app_id="bench",
            python=Path(sys.executable),
            project_dir=self.app_dir,
            import_root=self.app_dir,
            entrypoint="main:app",
            env=dict(env or {}),
            memory_limit_mb=self.memory_limit_mb,
        )
        await self.runtime.prepare(spec)
        self.instances = list(
            await asyncio.gather(
                *(self.runtime.start_instance(self.revision_id) for _ in range(instances))
            )
        )
        self.publish()

    def publish(self) -> None:
        self.generation = self.feed.publish(
            RouteTable(
                hosts={HOST: self.revision_id},
                revisions={
                    self.revision_id: {
                        "app": "bench",
                        "instances": [
                            {"id": i.id, "socket": str(i.socket_path)} for i in self.instances
                        ],
                    }
                },
            )
        )

    def zygote_pids(self) -> list[int]:
        """The zygote(s): parents of the instances."""
        pids = []
        for inst in self.instances:
            parent = procs.parent_pid(inst.pid)
            if parent is not None and parent not in pids:
                pids.append(parent)
        return pids

    @property
    def instance_pids(self) -> list[int]:
        return [i.pid for i in self.instances]

    async def start_router(
        self, logs: Path, placement: procs.Placement, *extra: str, name: str = "router"
    ) -> tuple[procs.Server, int]:
        """``python -m cloudlet.router`` as shipped (plus ``extra``), on a free port."""
        log_path = logs / f"{name}-{os.getpid()}-{len(os.listdir(logs))}.log"
        server = await procs.Server.start(
            name,
            [
                sys.executable,
                "-m",
                "cloudlet.router",
                "--bind",
                "127.0.0.1:0",
                "--feed",
                str(self.feed_path),
                *extra,
            ],
            log_path,
            prefix=placement.server_prefix(),
            autogroup_nice=placement.nice,
        )
        loop = asyncio.get_running_loop()
        deadline = loop.time() + 30
        port = 0
        while not port:
            if not server.running:
                raise RuntimeError(f"the router exited:\n{server.tail()}")
            if loop.time() > deadline:
                await server.stop()
                raise RuntimeError(f"the router did not start listening:\n{server.tail()}")
            found = re.search(r"listening on http://127\.0\.0\.1:(\d+)", server.tail(50))
            if found:
                port = int(found.group(1))
            else:
                await asyncio.sleep(0.05)
        if not await self.feed.wait_applied(self.generation, 30, min_routers=1):
            await server.stop()
            raise RuntimeError(f"the router did not apply the table:\n{server.tail()}")
        await procs.wait_http(port, host_header=HOST, server=server)
        return server, port

    async def close(self) -> None:
        with contextlib.suppress(Exception):
            await self.runtime.close()
        await self.feed.close()


# -- nginx ----------------------------------------------------------------------------------

NGINX_CONF = """\
{user}worker_processes 1;
daemon off;
pid {dir}/nginx.pid;
error_log {dir}/error.log warn;
worker_rlimit_nofile {nofile};
events {{ worker_connections {worker_connections}; use epoll; multi_accept on; }}
http {{
    access_log off;
    client_body_temp_path {dir}/tmp/body;
    proxy_temp_path {dir}/tmp/proxy;
    fastcgi_temp_path {dir}/tmp/fastcgi;
    uwsgi_temp_path {dir}/tmp/uwsgi;
    scgi_temp_path {dir}/tmp/scgi;
    keepalive_timeout 300;
    keepalive_requests 1000000;
{upstreams}
{servers}
}}
"""

NGINX_UPSTREAM = """\
    upstream {name} {{ server {address}; keepalive 128; keepalive_requests 1000000; }}"""

# The router adds X-Forwarded-* and a traceparent; nginx is asked for the same work.
NGINX_SERVER = """\
    server {{
        listen 127.0.0.1:{port} backlog=4096;
        location / {{
            proxy_pass http://{upstream};
            proxy_http_version 1.1;
            proxy_set_header Connection "";
            proxy_set_header Host $host;
            proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;
            proxy_set_header X-Forwarded-Proto $scheme;
            proxy_set_header X-Forwarded-Host $host;
            proxy_set_header traceparent "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01";
            proxy_buffering off;
        }}
    }}"""


def nginx_available() -> str | None:
    return shutil.which("nginx") or (
        "/usr/sbin/nginx" if os.access("/usr/sbin/nginx", os.X_OK) else None
    )


async def start_nginx(
    directory: Path, upstreams: dict[str, str], placement: procs.Placement
) -> tuple[procs.Server, dict[str, int]]:
    """One nginx (master + 1 worker) with a listener per upstream; ``upstreams`` maps a name
    to ``unix:/path.sock`` or ``127.0.0.1:PORT``. Returns the server and name → port."""
    binary = nginx_available()
    if binary is None:
        raise RuntimeError("nginx is not installed")
    ports = {name: procs.free_port() for name in upstreams}
    conf_path = write_nginx_conf(directory, upstreams, ports)
    server = await procs.Server.start(
        "nginx",
        [binary, "-p", f"{directory}/", "-c", str(conf_path), "-e", str(directory / "error.log")],
        directory / "stdout.log",
        prefix=placement.server_prefix(),
        autogroup_nice=placement.nice,
    )
    try:
        for port in ports.values():
            await procs.wait_http(port, host_header=HOST, server=server, wait_s=30)
    except RuntimeError as error:
        await server.stop()
        raise RuntimeError(f"{error}\n{_read(directory / 'error.log')}") from None
    return server, ports


def write_nginx_conf(directory: Path, upstreams: dict[str, str], ports: dict[str, int]) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "tmp").mkdir(exist_ok=True)
    _, hard = procs.nofile_limits() or (1024, 1024)
    nofile = hard if hard > 0 else 65536
    user = ""
    if os.geteuid() == 0:
        # Workers would switch to "nobody", which cannot enter the instances' 0700 folder.
        user = f"user {pwd.getpwuid(0).pw_name} {grp.getgrgid(0).gr_name};\n"
    conf = NGINX_CONF.format(
        user=user,
        dir=directory,
        nofile=nofile,
        worker_connections=max(1024, nofile - 100),
        upstreams="\n".join(
            NGINX_UPSTREAM.format(name=f"u_{name}", address=address)
            for name, address in upstreams.items()
        ),
        servers="\n".join(
            NGINX_SERVER.format(port=ports[name], upstream=f"u_{name}") for name in upstreams
        ),
    )
    path = directory / "nginx.conf"
    path.write_text(conf)
    return path


def _read(path: Path) -> str:
    try:
        return path.read_text(errors="replace")[-2000:]
    except OSError:
        return ""
