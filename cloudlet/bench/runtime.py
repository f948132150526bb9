"""``cloudlet bench runtime``: Cloudlet's instance runtime next to ``fastapi run``.

The same mixed async/sync FastAPI app (async endpoints doing small JSON work and
``await asyncio.sleep(0)``, a POST with a validated body, sync ``def`` endpoints sleeping
2 ms like a quick database call and reading a small JSON file) is served by:

- **fastapi run**: the real ``fastapi run main.py --host 127.0.0.1`` with its defaults
  (uvicorn picks uvloop + httptools itself when installed, access log on, 40 threads for
  sync endpoints, CPython's collector defaults);
- **Cloudlet runtime**: the instance runtime of cloudlet/runtime/zygote.py, run by the
  zygote's own ``main()`` (import once, ``gc.freeze()``, fork on a spawn command) with only
  the instance's listening address changed from its Unix socket to 127.0.0.1 TCP, because
  wrk cannot reach a Unix socket. A settings table checks that this instance runs exactly
  the settings of one started by the real LocalRuntime;
- **Cloudlet router → instance** (information): the platform as deployed, the router and a
  LocalRuntime instance sharing the core, so it includes the router's cost per request.

Method (reference/dataplane.md): wrk -t1 with a Lua script cycling through the paths, on
one core; every server process of a target on the other; nice -19 where allowed; a warm-up
before each measured run; targets interleaved in every round (the order rotates); medians
over the rounds. Ratios are taken against ``fastapi run`` in the same round, raw and
CPU-normalised (requests per CPU-second of the target's server processes), which is the
"at equal CPU" comparison and corrects for a noisy neighbour taking part of the core.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import signal
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from cloudlet.bench import procs, report, stack, wrk
from cloudlet.runtime import RevisionSpec
from cloudlet.runtime import zygote as runtime_zygote
from cloudlet.runtime.environment import app_environment
from cloudlet.settings import Settings

NAME = "runtime"
GOAL = 1.2
BASELINE = "fastapi_run"
ZYGOTE = Path(runtime_zygote.__file__).resolve()

APP = """\
import asyncio
import gc
import json
import os
import sys
import time
from pathlib import Path

from fastapi import FastAPI
from pydantic import BaseModel

app = FastAPI()

DATA = Path(__file__).with_name("data.json")
SYNC_S = float(os.environ.get("BENCH_SYNC_MS", "2")) / 1000


class Item(BaseModel):
    name: str
    price: float
    tags: list[str] = []


@app.get("/")
async def root():
    return {"message": "Hello World"}


@app.get("/async")
async def catalogue(q: str = ""):
    await asyncio.sleep(0)
    items = [{"id": i, "name": f"item {i}", "price": i * 1.5} for i in range(10)]
    return {"q": q, "count": len(items), "items": items}


@app.post("/items")
async def create(item: Item):
    await asyncio.sleep(0)
    return {"created": item, "total": round(item.price * 1.2, 2)}


@app.get("/sync")
def query():
    time.sleep(SYNC_S)  # a quick query through a blocking database driver
    return {"rows": [{"id": 1, "ok": True}]}


@app.get("/file")
def read_file():
    with open(DATA) as f:
        return json.load(f)


@app.get("/_runtime")
async def runtime_settings():
    # What this server runs with, read from the uvicorn protocol serving this request.
    settings = {
        "pid": os.getpid(),
        "loop": type(asyncio.get_running_loop()).__module__,
        "gc_threshold": list(gc.get_threshold()),
        "gc_frozen": gc.get_freeze_count(),
    }
    try:
        cycle = asyncio.current_task().get_coro().cr_frame.f_locals["self"]
        protocol = cycle.on_response.__self__
        settings.update(
            http=type(protocol).__module__.rpartition(".")[2],
            keep_alive_s=protocol.timeout_keep_alive,
            access_log=protocol.access_log,
            backlog=protocol.config.backlog,
        )
    except Exception as error:
        settings["introspection"] = repr(error)
    if "anyio" in sys.modules:
        import anyio.to_thread

        settings["threads"] = anyio.to_thread.current_default_thread_limiter().total_tokens
    return settings
"""

DATA = (
    '{"items": ['
    + ", ".join(f'{{"id": {i}, "name": "item {i}", "price": {i * 1.5}}}' for i in range(20))
    + "]}\n"
)

# One request per path in turn: half async (two paths), half sync (two paths).
LUA = """\
local body = '{"name": "widget", "price": 9.5, "tags": ["a", "b"]}'
local requests = {
  wrk.format("GET", "/async?q=hello"),
  wrk.format("GET", "/sync"),
  wrk.format("POST", "/items", {["Content-Type"] = "application/json"}, body),
  wrk.format("GET", "/file"),
}
local i = 0
request = function()
  i = i + 1
  return requests[(i % #requests) + 1]
end
"""

# Cloudlet's instance runtime on TCP: the zygote's own main() (control channel, import,
# gc.freeze, fork), with only the instance's address changed. Runs under the app's python.
LAUNCHER = """\
import importlib.util
import json
import os
import socket
import sys

zygote_path, port, args = sys.argv[1], int(sys.argv[2]), sys.argv[3:]
spec = importlib.util.spec_from_file_location("cloudlet_zygote", zygote_path)
zygote = importlib.util.module_from_spec(spec)
spec.loader.exec_module(zygote)

# The instance runs _serve_instance() as _run_instance() does, bound to TCP instead of its
# Unix socket, and writes its output to ours instead of the manager's log socket.
zygote._run_instance = lambda app, command: zygote._serve_instance(
    app, host="127.0.0.1", port=port
)
manager, control = socket.socketpair()
manager.sendall(json.dumps({"op": "spawn", "id": "bench", "socket": "", "log": ""}).encode())
manager.sendall(b"\\n")
sys.exit(
    zygote.main(["--control-fd", str(control.detach()), "--parent-pid", str(os.getppid()), *args])
)
"""

# Rows of the settings table: (key in /_runtime, label).
SETTINGS = (
    ("loop", "event loop"),
    ("http", "HTTP parser"),
    ("threads", "threads for sync endpoints"),
    ("keep_alive_s", "keep-alive timeout (s)"),
    ("backlog", "listen backlog"),
    ("access_log", "access log"),
    ("gc_threshold", "gc thresholds"),
    ("gc_frozen", "objects frozen (gc.freeze)"),
)
# What must be the same in the benchmarked instance and a LocalRuntime one.
PARITY = ("loop", "http", "threads", "keep_alive_s", "backlog", "access_log", "gc_threshold")


@dataclass(frozen=True)
class Options(report.Options):
    rounds: int = 5
    duration: int = 10
    warmup: int = 2
    connections: int = 100
    sync_ms: float = 2.0
    threadpools: tuple[int, ...] = ()
    routed: bool = True

    def quick_changes(self) -> dict[str, Any]:
        return {"rounds": 1, "duration": 2, "warmup": 1}


@dataclass
class Target(stack.Target):
    host: str | None = None  # the Host header wrk sends, if any
    serving_pid: int | None = None  # the process that runs the app's event loop
    settings: dict[str, Any] = field(default_factory=dict)
    rss_mb: float | None = None


def run(options: Options) -> Path:
    wrk.require()
    if not (procs.BIN / "fastapi").exists():
        raise RuntimeError(f"no `fastapi` command next to {sys.executable} (fastapi-cli)")
    return asyncio.run(_run(options.effective()))


async def _run(options: Options) -> Path:
    placement = procs.placement()
    nofile = procs.raise_nofile()
    sched_batch = bool(Settings.model_fields["sched_batch"].default)
    info = report.announce(NAME)
    info["versions"].update(report.package_versions(("fastapi-cli", "anyio")))
    report.console.print(
        f"{placement.describe()}; {options.rounds} round(s) of {options.duration} s, "
        f"wrk -c{options.connections}"
    )

    work = stack.workdir("clrt-")
    logs = work / "logs"
    logs.mkdir()
    app_dir = _write_files(work)
    spec = RevisionSpec(
        revision_id="runtime-bench",
        app_id="bench",
        python=Path(sys.executable),
        project_dir=app_dir,
        import_root=app_dir,
        entrypoint="main:app",
        env={"BENCH_SYNC_MS": f"{options.sync_ms:g}"},
    )
    # Every server gets the environment the LocalRuntime gives an app.
    env = app_environment(spec)
    servers: list[procs.Server] = []
    cloudlet_app: stack.CloudletApp | None = None
    targets: list[Target] = []
    local_settings: dict[str, Any] = {}
    notes: list[str] = []
    try:
        fastapi_run, port = await stack.start_server(
            "fastapi-run",
            [
                str(procs.BIN / "fastapi"),
                "run",
                "main.py",
                "--host",
                "127.0.0.1",
                "--port",
                "{port}",
            ],
            logs,
            placement,
            env={**env, **procs.CLI_ISOLATION},
            path="/async",
            wait_s=60,
            cwd=app_dir,
            # Its access log: the cheapest sink, so that a slow disk cannot penalise it.
            output=Path(os.devnull),
        )
        servers.append(fastapi_run)
        targets.append(
            Target(
                BASELINE,
                "fastapi run (defaults)",
                port,
                {"app": [fastapi_run.pid]},
                "`fastapi run main.py --host 127.0.0.1`, access log to /dev/null",
                serving_pid=fastapi_run.pid,
            )
        )

        launcher = work / "launcher.py"
        pools: list[int | None] = [None, *options.threadpools]
        for pool in pools:
            key = "cloudlet" if pool is None else f"cloudlet_threads_{pool}"
            extra_env = {} if pool is None else {runtime_zygote.THREADPOOL_ENV: str(pool)}
            server, port = await stack.start_server(
                key,
                [
                    sys.executable,
                    str(launcher),
                    str(ZYGOTE),
                    "{port}",
                    "--project-dir",
                    str(app_dir),
                    "--import-root",
                    str(app_dir),
                    "--entrypoint",
                    "main:app",
                    *(["--sched-batch"] if sched_batch else []),
                ],
                logs,
                placement,
                path="/async",
                wait_s=60,
                env={**env, **extra_env},
                cwd=app_dir,
            )
            servers.append(server)
            instance = [p for p in procs.descendants([server.pid]) if p != server.pid]
            label = "Cloudlet runtime" if pool is None else f"Cloudlet runtime, {pool} threads"
            note = (
                "the zygote's main() and instance server, bound to 127.0.0.1 TCP"
                if pool is None
                else f"the same with {runtime_zygote.THREADPOOL_ENV}={pool}"
            )
            targets.append(
                Target(
                    key,
                    label,
                    port,
                    {"app": [server.pid]},
                    note,
                    serving_pid=instance[0] if instance else None,
                )
            )

        # The real LocalRuntime: the settings reference, and the routed row.
        cloudlet_app = stack.CloudletApp(
            work / "local", APP, sched_batch=sched_batch, revision_id="runtime-bench"
        )
        _write_data(cloudlet_app.app_dir)
        await cloudlet_app.start(instances=1, env=spec.env)
        procs.pin(cloudlet_app.zygote_pids(), placement.server_cpu, placement.nice)
        local_settings = await _settings(
            "http://instance/_runtime", uds=cloudlet_app.instances[0].socket_path
        )
        if options.routed:
            router, port = await cloudlet_app.start_router(logs, placement)
            servers.append(router)
            targets.append(
                Target(
                    "cloudlet_routed",
                    "Cloudlet router → instance",
                    port,
                    {"proxy": [router.pid], "app": cloudlet_app.instance_pids},
                    "as deployed: router + LocalRuntime instance on the same core (information)",
                    host=stack.HOST,
                    serving_pid=cloudlet_app.instance_pids[0],
                )
            )

        for target in targets:
            target.settings = await _settings(
                f"http://127.0.0.1:{target.port}/_runtime", host=target.host
            )

        for n, target in stack.interleave(targets, options.rounds):
            measured = await wrk.measure(
                target.port,
                target.groups,
                placement,
                duration=options.duration,
                warmup=options.warmup,
                connections=options.connections,
                host=target.host,
                script=work / "mix.lua",
            )
            result = {**measured.to_json(), "round": n}
            target.runs.append(result)
            report.console.print(
                f"  round {n} {target.label:<32} {result['rps']:>9,.0f} req/s  "
                f"server CPU {result['server_cpu_share']:.2f}  "
                f"µs/req {result['us_per_request_total']:.0f}  errors {result['errors']}"
            )
        for target in targets:
            rss = procs.rss_kb(target.serving_pid) if target.serving_pid else None
            target.rss_mb = rss / 1024 if rss is not None else None
    finally:
        for server in reversed(servers):
            await server.stop()
        if cloudlet_app is not None:
            await cloudlet_app.close()
        await _stop_strays()

    summary = _summarise(targets)
    goal = _goal(summary)
    parity = _parity(_target(targets, "cloudlet").settings, local_settings)
    notes += _notes(targets, summary, parity, placement, sched_batch, options)

    columns, rows = _table(targets, summary)
    report.console.print()
    report.console.print(
        report.table("Runtime: medians and ratios to `fastapi run`", columns, rows)
    )
    s_columns, s_rows = _settings_table(targets, local_settings)
    report.console.print(report.table("What each server runs with", s_columns, s_rows))
    report.console.print(goal["line"])
    for note in notes:
        report.console.print(f"- {note}", highlight=False)
    markdown = report.markdown_table(columns, rows)
    if options.markdown:
        report.print_markdown(markdown)
        report.print_markdown(report.markdown_table(s_columns, s_rows))
    data = {
        "method": {
            "rounds": options.rounds,
            "duration_s": options.duration,
            "warmup_s": options.warmup,
            "connections": options.connections,
            "wrk": f"wrk -t1 -c{options.connections} -d{options.duration}s --latency -s mix.lua",
            "mix": "GET /async, GET /sync, POST /items, GET /file in turn",
            "sync_ms": options.sync_ms,
            "placement": placement.describe(),
            "nofile": nofile.to_json(),
            "sched_batch": sched_batch,
            "quick": options.quick,
            "ratio": "median over rounds of target / fastapi run in the same round",
            "cpu_normalised": "requests per CPU-second of the target's server processes",
        },
        "app": APP,
        "lua": LUA,
        "settings": {t.key: t.settings for t in targets} | {"local_runtime": local_settings},
        "parity": parity,
        "targets": [t.to_json(summary[t.key]) for t in targets],
        "goal": {k: v for k, v in goal.items() if k != "line"},
        "notes": notes,
        "markdown": markdown,
    }
    path = report.save(NAME, info, data, options.results_dir)
    shutil.rmtree(work, ignore_errors=True)
    return path


# -- starting what is compared ------------------------------------------------------------------


def _write_data(app_dir: Path) -> None:
    (app_dir / "data.json").write_text(DATA)


def _write_files(work: Path) -> Path:
    """The app (main.py, data.json), the wrk script and the launcher; the app's folder."""
    directory = stack.write_app(work / "app", APP)
    _write_data(directory)
    (work / "mix.lua").write_text(LUA)
    (work / "launcher.py").write_text(LAUNCHER)
    return directory


async def _settings(
    url: str, *, host: str | None = None, uds: Path | None = None
) -> dict[str, Any]:
    """GET /_runtime of a server: what it runs with."""
    transport = httpx.AsyncHTTPTransport(uds=str(uds)) if uds is not None else None
    headers = {"Host": host} if host else {}
    async with httpx.AsyncClient(transport=transport, timeout=30) as client:
        response = await client.get(url, headers=headers)
    response.raise_for_status()
    result: dict[str, Any] = response.json()
    return result


async def _stop_strays() -> None:
    """Stop processes of ours that outlived their owner, by PID: a router whose start failed
    is not handed back by CloudletApp.start_router, so nobody else would stop it."""
    me = os.getpid()
    strays = [p for p in procs.descendants([me]) if p != me]
    for pid in strays:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGTERM)
    for _ in range(100):
        if not any(_alive(p) for p in strays):
            return
        await asyncio.sleep(0.1)
    for pid in strays:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)


def _alive(pid: int) -> bool:
    """Running, not a zombie waiting to be reaped."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            stat = f.read()
    except OSError:
        return False
    return stat[stat.rfind(b")") + 2 : stat.rfind(b")") + 3] != b"Z"


# -- reporting ------------------------------------------------------------------------------


def _target(targets: list[Target], key: str) -> Target:
    return next(t for t in targets if t.key == key)


def _summarise(targets: list[Target]) -> dict[str, dict[str, Any]]:
    baseline = _target(targets, BASELINE).runs
    summary: dict[str, dict[str, Any]] = {}
    for t in targets:
        ratios, normalised = report.ratios(t.runs, baseline)
        summary[t.key] = {
            "rps": report.median(r["rps"] for r in t.runs),
            "rps_runs": [round(r["rps"]) for r in t.runs],
            "ratio": report.median(ratios),
            "ratio_runs": [round(x, 3) for x in ratios if x is not None],
            "ratio_cpu_normalised": report.median(normalised),
            "p50_ms": report.median(r["p50_ms"] for r in t.runs),
            "p99_ms": report.median(r["p99_ms"] for r in t.runs),
            "server_cpu_share": report.median(r["server_cpu_share"] for r in t.runs),
            "us_per_request_total": report.median(r["us_per_request_total"] for r in t.runs),
            "us_per_request_proxy": report.median(r["us_per_request"].get("proxy") for r in t.runs),
            "ctx_switches_per_request": report.median(
                r["ctx_switches_per_request"] for r in t.runs
            ),
            "rss_mb": t.rss_mb,
            "errors": sum(r["errors"] for r in t.runs),
        }
    return summary


def _goal(summary: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """Whether the issue's goal holds in this run (information, not a verdict)."""
    cloudlet = summary["cloudlet"]
    normalised, raw = cloudlet["ratio_cpu_normalised"], cloudlet["ratio"]
    if normalised is None or raw is None:
        return {"goal": GOAL, "holds": None, "line": "Goal not checked: no ratio measured"}
    holds = normalised >= GOAL
    line = (
        f"Goal (Cloudlet runtime ≥ {GOAL}x `fastapi run` at equal CPU): CPU-normalised "
        f"{normalised:.2f}x, raw {raw:.2f}x → {report.verdict(holds)} in this run"
    )
    return {"goal": GOAL, "cpu_normalised": normalised, "raw": raw, "holds": holds, "line": line}


def _parity(bench: dict[str, Any], local: dict[str, Any]) -> dict[str, Any]:
    differ = {k: [bench.get(k), local.get(k)] for k in PARITY if bench.get(k) != local.get(k)}
    return {"compared": list(PARITY), "differ": differ, "identical": not differ}


def _notes(
    targets: list[Target],
    summary: dict[str, dict[str, Any]],
    parity: dict[str, Any],
    placement: procs.Placement,
    sched_batch: bool,
    options: Options,
) -> list[str]:
    notes = [
        "Fairness: one core each (taskset), the same app file, interpreter, venv and "
        "environment, the same wrk and script. Cloudlet's row is its instance runtime run "
        "by the zygote's own main() with only the listening address changed from the Unix "
        "socket to 127.0.0.1 TCP (wrk cannot reach a Unix socket; in production the router "
        "talks to the instance over the Unix socket, which costs less than TCP, so the TCP "
        "binding does not flatter Cloudlet).",
        "`fastapi run` uses uvloop + httptools here too (uvicorn picks them when installed); "
        "what differs is in the settings table. Its access log goes to /dev/null, the "
        "cheapest sink (a file or a container's log pipe would cost it more); Cloudlet "
        "accounts requests in its router instead.",
    ]
    if parity["identical"]:
        notes.append(
            "Settings parity: the benchmarked instance and an instance started by the real "
            "LocalRuntime run identical settings (" + ", ".join(parity["compared"]) + ")."
        )
    else:
        notes.append(
            "[red]Settings parity FAILED[/]: the benchmarked instance differs from a "
            f"LocalRuntime instance: {parity['differ']}"
        )
    if any(t.key == "cloudlet_routed" for t in targets):
        notes.append(
            "The router row is the platform as deployed (router and instance share the one "
            "core); it is information, not the goal: the router's own cost is measured by "
            "`cloudlet bench router`."
        )
    if sched_batch:
        notes.append("Cloudlet instances ran in SCHED_BATCH (the platform's default here).")
    starved = report.starved({t.label: summary[t.key]["server_cpu_share"] for t in targets})
    if starved and placement.pinned:
        notes.append(
            f"[yellow]The servers did not get their whole core ({starved} CPU-s per s): a "
            "neighbour ran on it; trust the CPU-normalised ratios[/]"
        )
    errors = {t.label: summary[t.key]["errors"] for t in targets if summary[t.key]["errors"]}
    if errors:
        notes.append(f"[red]Errors (socket errors or non-2xx answers)[/]: {errors}")
    if options.quick:
        notes.append("--quick: one short round; the numbers mean nothing")
    return notes


def _table(
    targets: list[Target], summary: dict[str, dict[str, Any]]
) -> tuple[list[str], list[list[str]]]:
    columns = [*report.ratio_columns("x fastapi run"), "CPU µs/req", "RSS MB", "errors"]
    rows = []
    for t in targets:
        s = summary[t.key]
        cpu_us = report.fmt(s["us_per_request_total"], 0)
        if s["us_per_request_proxy"] is not None:
            cpu_us += f" ({report.fmt(s['us_per_request_proxy'], 0)} router)"
        rows.append(
            [
                *report.ratio_cells(t.label, s, 1),
                cpu_us,
                report.fmt(s["rss_mb"], 0),
                str(s["errors"]),
            ]
        )
    return columns, rows


def _settings_table(
    targets: list[Target], local: dict[str, Any]
) -> tuple[list[str], list[list[str]]]:
    shown = [t for t in targets if t.key in (BASELINE, "cloudlet")]
    columns = ["setting", *(t.label for t in shown), "LocalRuntime instance (Unix socket)"]
    rows = []
    for key, label in SETTINGS:
        values = [t.settings.get(key) for t in shown] + [local.get(key)]
        rows.append([label, *(_setting_text(v) for v in values)])
    return columns, rows


def _setting_text(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, bool):
        return "on" if value else "off"
    if isinstance(value, list):
        return ", ".join(str(v) for v in value)
    return str(value)
