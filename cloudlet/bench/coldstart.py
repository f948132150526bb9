"""`cloudlet bench coldstart`: time to first byte from zero, against a bare import.

One real platform (`cloudlet up` in a temporary folder) serves one FastAPI app deployed with
the official `fastapi deploy`. Each round measures, interleaved:

- **bare import**: `python -c "import main"` in the app's own built venv and folder (a new
  interpreter importing the app and exiting): the floor for any cold start;
- **warm**: a request on a new connection to a running instance;
- **from zero**: the app at zero instances with its zygote alive (the app imported, not
  serving): the router holds the request while one instance is forked;
- **from nothing**: zygote gone too (``CLOUDLET_ZYGOTE_IDLE_S``): a new zygote imports the
  app, then forks the instance.

Time to first byte is measured from before connect() to the first response byte, on
loopback. Goals (issue 3): from zero <= 50 ms p50; from nothing <= 1.2 x bare import.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

from cloudlet.bench.procs import BIN, CLI_ISOLATION, free_port
from cloudlet.bench.report import Options as BenchOptions
from cloudlet.bench.report import (
    console,
    describe_machine,
    fmt,
    machine,
    markdown_table,
    median,
    table,
    write_json,
)

APP = """\
from fastapi import FastAPI
from pydantic import BaseModel

app = FastAPI()


class Greeting(BaseModel):
    message: str


@app.get("/")
async def root() -> Greeting:
    return Greeting(message="Hello World")
"""

ADMIN_EMAIL = "bench@cloudlet.localhost"
# Long enough for a round's bare imports to run while the zygote is still there.
ZYGOTE_IDLE_S = 5.0


@dataclass(frozen=True)
class Options(BenchOptions):
    rounds: int = 7
    imports: int = 3  # bare imports per round

    def quick_changes(self) -> dict[str, Any]:
        return {"rounds": 2, "imports": 1}


class Platform:
    """`cloudlet up` in a temporary folder, stopped by its PID."""

    def __init__(self, workdir: Path) -> None:
        self.workdir = workdir
        self.api_port = free_port()
        self.router_port = free_port()
        self.token = "bench-" + os.urandom(12).hex()
        self.log = workdir / "cloudlet.log"
        env = {
            **{k: v for k, v in os.environ.items() if not k.startswith("CLOUDLET_")},
            "CLOUDLET_DATA_DIR": str(workdir / "data"),
            "CLOUDLET_API_PORT": str(self.api_port),
            "CLOUDLET_ROUTER_PORT": str(self.router_port),
            "CLOUDLET_ADMIN_EMAIL": ADMIN_EMAIL,
            "CLOUDLET_ADMIN_TOKEN": self.token,
            "CLOUDLET_ZYGOTE_IDLE_S": str(ZYGOTE_IDLE_S),
            "CLOUDLET_AUTOSCALE_TICK_S": "0.25",
            "CLOUDLET_UV_CACHE": str(Path.home() / ".cache" / "cloudlet-bench" / "uv"),
        }
        with open(self.log, "ab") as log:
            self.process = subprocess.Popen(
                [str(BIN / "cloudlet"), "up"], env=env, stdout=log, stderr=subprocess.STDOUT
            )
        self.api = httpx.Client(
            base_url=f"http://127.0.0.1:{self.api_port}/api/v1",
            headers={"Authorization": f"Bearer {self.token}"},
            timeout=30,
            trust_env=False,
        )
        deadline = time.monotonic() + 60
        while True:
            if self.process.poll() is not None:
                raise RuntimeError(f"cloudlet up exited:\n{self.tail()}")
            with contextlib.suppress(httpx.HTTPError):
                if self.api.get("/users/me").status_code == 200:
                    break
            if time.monotonic() > deadline:
                raise RuntimeError(f"cloudlet up did not answer:\n{self.tail()}")
            time.sleep(0.2)

    def tail(self) -> str:
        return self.log.read_text(errors="replace")[-4000:]

    def stop(self) -> None:
        self.api.close()
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGINT)
            try:
                self.process.wait(30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()

    def deploy(self, folder: Path) -> dict[str, Any]:
        team = self.api.get("/teams/").json()["data"][0]["id"]
        app = self.api.post("/apps/", json={"name": "coldstart", "team_id": team}).json()
        token = self.api.post(
            f"/apps/{app['id']}/tokens", json={"name": "bench", "expires_in_days": 1}
        ).json()["value"]
        config = self.workdir / "cli-config"
        config.mkdir(exist_ok=True)
        (config / "cli.json").write_text(
            json.dumps(
                {
                    "base_api_url": f"http://127.0.0.1:{self.api_port}/api/v1",
                    "dashboard_base_url": f"http://127.0.0.1:{self.api_port}",
                }
            )
        )
        env = {
            **{k: v for k, v in os.environ.items() if not k.startswith(("CLOUDLET_", "FASTAPI"))},
            **CLI_ISOLATION,
            "FASTAPI_CLOUD_CLI_CONFIG_DIR": str(config),
            "FASTAPI_CLOUD_TOKEN": token,
            "CI": "true",
        }
        done = subprocess.run(
            [str(BIN / "fastapi"), "deploy", "--app-id", app["id"]],
            cwd=folder,
            env=env,
            capture_output=True,
            text=True,
            timeout=600,
            stdin=subprocess.DEVNULL,
        )
        if done.returncode != 0:
            raise RuntimeError(f"fastapi deploy failed:\n{done.stdout}\n{done.stderr}")
        return dict(app)

    def scaling(self, app_id: str, **changes: Any) -> dict[str, Any]:
        url = f"/apps/{app_id}/scaling"
        r = self.api.patch(url, json=changes) if changes else self.api.get(url)
        r.raise_for_status()
        return dict(r.json())

    def wait_state(self, app_id: str, state: str, timeout: float = 60) -> None:
        deadline = time.monotonic() + timeout
        while self.scaling(app_id)["state"] != state:
            if time.monotonic() > deadline:
                raise RuntimeError(f"the app never reached state {state!r}:\n{self.tail()}")
            time.sleep(0.05)


def first_byte_s(port: int, host: str) -> float:
    """Seconds from before connect() to the first response byte; checks for a 200."""
    request = f"GET / HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n".encode()
    started = time.perf_counter()
    with socket.create_connection(("127.0.0.1", port), timeout=60) as sock:
        sock.sendall(request)
        data = sock.recv(65536)
        took = time.perf_counter() - started
        while chunk := sock.recv(65536):
            data += chunk
    if not data.startswith(b"HTTP/1.1 200"):
        raise RuntimeError(f"unexpected answer: {data[:200]!r}")
    return took


def bare_import_s(python: Path, folder: Path) -> float:
    started = time.perf_counter()
    subprocess.run([str(python), "-c", "import main"], cwd=folder, check=True)
    return time.perf_counter() - started


def run(options: Options) -> Path:
    options = options.effective()
    workdir = Path(tempfile.mkdtemp(prefix="clcold-", dir="/tmp"))
    info = machine()
    samples: dict[str, list[float]] = {"import": [], "warm": [], "zero": [], "nothing": []}
    platform: Platform | None = None
    try:
        source = workdir / "app"
        source.mkdir()
        (source / "main.py").write_text(APP)
        (source / "requirements.txt").write_text("fastapi\n")
        console.print("Starting a platform and deploying the app with `fastapi deploy` ...")
        platform = Platform(workdir)
        app = platform.deploy(source)
        host = f"{app['slug']}.localhost"
        deployment = platform.api.get(f"/apps/{app['id']}/deployments/").json()["data"][0]
        built = workdir / "data" / "revisions" / deployment["id"]
        python = built / "venv" / "bin" / "python"
        project = built / "source"
        platform.scaling(app["id"], min_instances=0, scale_to_zero_after_s=1)
        for n in range(options.rounds):
            console.print(f"round {n + 1}/{options.rounds}")
            platform.wait_state(app["id"], "scaled_to_zero")
            samples["zero"].append(first_byte_s(platform.router_port, host))
            samples["warm"].append(first_byte_s(platform.router_port, host))
            platform.wait_state(app["id"], "stopped")
            samples["nothing"].append(first_byte_s(platform.router_port, host))
            for _ in range(options.imports):
                samples["import"].append(bare_import_s(python, project))
    finally:
        if platform is not None:
            platform.stop()
            if os.environ.get("CLOUDLET_BENCH_KEEP_LOG"):
                shutil.copy(platform.log, os.environ["CLOUDLET_BENCH_KEEP_LOG"])
        shutil.rmtree(workdir, ignore_errors=True)
    return _report(samples, info, options)


def _ratio(value: float | None, base: float | None) -> str:
    return fmt(value / base, 2) if value is not None and base else "-"


def _report(samples: dict[str, list[float]], info: dict[str, Any], options: Options) -> Path:
    ms = {k: [v * 1000 for v in vs] for k, vs in samples.items()}
    p50 = {k: median(vs) for k, vs in ms.items()}
    bare = p50["import"]
    labels = {
        "import": "bare `python -c 'import main'`",
        "warm": "warm instance (new connection)",
        "zero": "from zero, zygote alive",
        "nothing": "from nothing (new zygote)",
    }
    columns = ["path", "runs", "p50 ms", "min ms", "max ms", "x bare import"]
    rows = [
        [
            labels[k],
            str(len(ms[k])),
            fmt(p50[k], 1),
            fmt(min(ms[k]), 1),
            fmt(max(ms[k]), 1),
            _ratio(p50[k], bare),
        ]
        for k in ("import", "warm", "zero", "nothing")
    ]
    console.print(table("Cold start: time to first byte through the router", columns, rows))
    if options.markdown:
        console.print(markdown_table(columns, rows))
    zero_ok = p50["zero"] is not None and p50["zero"] <= 50
    ratio = p50["nothing"] / bare if bare and p50["nothing"] is not None else None
    nothing_ok = ratio is not None and ratio <= 1.2
    console.print(
        f"from zero p50 {fmt(p50['zero'], 1)} ms: goal <= 50 ms "
        f"{'[green]holds[/]' if zero_ok else '[red]not met[/]'}; "
        f"from nothing {fmt(ratio, 2)} x bare import: goal <= 1.2 "
        f"{'[green]holds[/]' if nothing_ok else '[red]not met[/]'}"
    )
    console.print(f"machine: {describe_machine(info)}")
    path = write_json(
        "coldstart",
        {
            "benchmark": "coldstart",
            "machine": info,
            "samples_ms": ms,
            "p50_ms": p50,
            "from_nothing_over_bare_import": ratio,
            "goals": {"from_zero_p50_le_50ms": zero_ok, "from_nothing_le_1_2x_import": nothing_ok},
        },
        options.results_dir,
    )
    console.print(f"wrote {path}")
    return path
