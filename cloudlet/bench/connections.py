"""``cloudlet bench connections``: many connections through the router.

(a) Idle keep-alive connections: a fresh server process (the Cloudlet router, and direct
    uvicorn for comparison) gets N connections, one GET each, then held idle. Measured: the
    server's RSS per held connection, whether a sample still answers after the hold, and
    wrk throughput for active clients before vs while the connections are held.
(b) Concurrency: an endpoint that awaits 1 s, N requests in flight at once (every request
    written before any response is read) through the router to several Cloudlet instances;
    errors must be 0. Direct uvicorn (one process) is the reference row.

Load clients (wrk, ``python -m cloudlet.bench.loadclient``) run on one core, servers on
the other, as in ``cloudlet bench router``; rounds interleave the targets, medians reported.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import re
import shutil
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cloudlet.bench import procs, report, stack, wrk

NAME = "connections"
KB_GOAL = 5.0
THROUGHPUT_GOAL = 0.95  # "no loss" within the noise of one machine
ROUTER_KEEPALIVE_S = 60.0  # RouterConfig.keepalive_timeout: idle clients are closed after it


@dataclass(frozen=True)
class Options(report.Options):
    rounds: int = 3
    idle: int = 15_000
    concurrent: int = 10_000
    instances: int = 4
    hold: float = 20.0
    duration: int = 5
    warmup: int = 2
    connections: int = 64
    sleep: float = 1.0

    def quick_changes(self) -> dict[str, Any]:
        return {
            "rounds": 1,
            "idle": min(self.idle, 500),
            "concurrent": min(self.concurrent, 200),
            "instances": min(self.instances, 2),
            "hold": 2.0,
            "duration": 1,
            "warmup": 1,
            "connections": min(self.connections, 32),
        }


def run(options: Options) -> Path:
    wrk.require()
    options = options.effective()
    if options.hold >= ROUTER_KEEPALIVE_S - 5:
        raise RuntimeError(
            f"--hold must stay below the router's idle keep-alive timeout "
            f"({ROUTER_KEEPALIVE_S:g} s): idle clients are closed after it by design"
        )
    return asyncio.run(_run(options))


class LoadClient:
    """``python -m cloudlet.bench.loadclient`` as a process; JSON lines on its stdout."""

    def __init__(self, process: asyncio.subprocess.Process) -> None:
        self.process = process
        self.pid = process.pid
        self.limits: dict[str, Any] = {}

    @classmethod
    async def start(cls, placement: procs.Placement, *args: str) -> LoadClient:
        process = await asyncio.create_subprocess_exec(
            *placement.client_prefix(),
            sys.executable,
            "-m",
            "cloudlet.bench.loadclient",
            *args,
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
            limit=1024 * 1024,
            start_new_session=True,
        )
        if placement.nice:
            procs.set_autogroup_nice(process.pid, placement.nice)
        client = cls(process)
        client.limits = await client.expect("limits", 30)
        return client

    async def expect(self, event: str, wait_s: float) -> dict[str, Any]:
        assert self.process.stdout is not None
        while True:
            try:
                line = await asyncio.wait_for(self.process.stdout.readline(), wait_s)
            except TimeoutError:
                raise RuntimeError(f"the load client sent no {event!r} in {wait_s:g} s") from None
            if not line:
                err = b""
                if self.process.stderr is not None:
                    err = await self.process.stderr.read()
                raise RuntimeError(f"the load client exited:\n{err.decode(errors='replace')}")
            message: dict[str, Any] = json.loads(line)
            if message.get("event") == event:
                return message

    def send(self, line: str) -> None:
        assert self.process.stdin is not None
        self.process.stdin.write(line.encode() + b"\n")

    async def stop(self) -> None:
        if self.process.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                self.process.kill()
        await self.process.wait()


@dataclass
class Target:
    key: str
    label: str


TARGETS = [
    Target("cloudlet", "Cloudlet router"),
    Target("uvicorn", "direct uvicorn"),
]


async def _run(options: Options) -> Path:
    placement = procs.placement()
    # Every server inherits this process's limit (the router raises its soft limit itself).
    nofile = procs.raise_nofile(want=2 * max(options.idle, options.concurrent) + 200)
    info = report.announce(NAME)
    report.console.print(
        f"{placement.describe()}; {options.rounds} round(s); {options.idle:,} idle connections, "
        f"{options.concurrent:,} concurrent requests, {options.instances} instance(s)"
    )
    report.console.print(
        f"open-files limit of this process: soft {nofile.soft}, hard {nofile.hard}"
        + (f" ({nofile.beyond_hard})" if nofile.beyond_hard else "")
    )
    work = stack.workdir("clbc-")
    logs = work / "logs"
    logs.mkdir()
    app_dir = stack.write_app(work / "direct", stack.SLEEP_APP)
    cloudlet = stack.CloudletApp(work / "cloudlet", stack.SLEEP_APP)
    idle_runs: dict[str, list[dict[str, Any]]] = {t.key: [] for t in TARGETS}
    burst_runs: dict[str, list[dict[str, Any]]] = {t.key: [] for t in TARGETS}
    try:
        await cloudlet.start(instances=options.instances)
        procs.pin(cloudlet.zygote_pids(), placement.server_cpu, placement.nice)
        for n, target in stack.interleave(TARGETS, options.rounds):
            if target.key == "cloudlet":
                server, port = await cloudlet.start_router(logs, placement)
                host = stack.HOST
                app_pids = cloudlet.instance_pids
            else:
                server, port = await stack.start_uvicorn(app_dir, logs, placement)
                host = "127.0.0.1"
                app_pids = []
            try:
                procs.pin([server.pid, *app_pids], placement.server_cpu, placement.nice)
                result = await _idle(server, port, host, app_pids, options, placement)
                result["round"] = n
                idle_runs[target.key].append(result)
                report.console.print(
                    f"  round {n} idle  {target.label:<16} open {result['open']:>6,}  "
                    f"{report.fmt(result['kb_per_conn'], 2)} KB/conn  "
                    f"alive {result['alive']}/{result['sampled']}  "
                    f"throughput held/before {report.fmt(result['throughput_ratio'], 2)}"
                )
                result = await _burst(server, port, host, app_pids, options, placement)
                result["round"] = n
                burst_runs[target.key].append(result)
                report.console.print(
                    f"  round {n} burst {target.label:<16} ok {result['ok']:>6,}  "
                    f"errors {result['errors_total']:,}  total {result['total_s']:.2f} s  "
                    f"peak fds {result['server_peak_fds']}"
                )
            finally:
                await server.stop()
    except BaseException:
        report.console.print(f"[yellow]servers' logs kept in {work}[/]")
        raise
    finally:
        app_log = cloudlet.app_log[-20:]
        await cloudlet.close()

    idle_summary = {k: _summarise_idle(v) for k, v in idle_runs.items()}
    burst_summary = {k: _summarise_burst(v) for k, v in burst_runs.items()}
    idle_columns, idle_rows = _idle_table(idle_summary, options)
    burst_columns, burst_rows = _burst_table(burst_summary, options)
    goals = _goals(idle_summary, burst_summary, options)
    report.console.print()
    report.console.print(
        report.table(f"(a) {options.idle:,} idle keep-alive connections", idle_columns, idle_rows)
    )
    report.console.print(
        report.table(
            f"(b) {options.concurrent:,} concurrent requests to an endpoint awaiting "
            f"{options.sleep:g} s",
            burst_columns,
            burst_rows,
        )
    )
    for line in goals["lines"]:
        report.console.print(line)
    markdown = (
        report.markdown_table(idle_columns, idle_rows)
        + "\n\n"
        + report.markdown_table(burst_columns, burst_rows)
    )
    if options.markdown:
        report.print_markdown(markdown)
    data = {
        "method": {
            "rounds": options.rounds,
            "idle_connections": options.idle,
            "concurrent_requests": options.concurrent,
            "instances": options.instances,
            "hold_s": options.hold,
            "wrk": f"wrk -t1 -c{options.connections} -d{options.duration}s --latency",
            "sleep_s": options.sleep,
            "placement": placement.describe(),
            "bench_process_nofile": nofile.to_json(),
            "quick": options.quick,
        },
        "idle": {"summary": idle_summary, "runs": idle_runs},
        "concurrent": {"summary": burst_summary, "runs": burst_runs},
        "goals": goals,
        "app_log_tail": app_log,
        "markdown": markdown,
    }
    path = report.save(NAME, info, data, options.results_dir)
    shutil.rmtree(work, ignore_errors=True)
    return path


async def _throughput(
    port: int, host: str, pids: list[int], options: Options, placement: procs.Placement
) -> dict[str, Any]:
    measured = await wrk.measure(
        port,
        {"server": pids},
        placement,
        duration=options.duration,
        warmup=options.warmup,
        connections=options.connections,
        host=host,
        autogroup_nice=placement.nice,
    )
    result, cpu = measured.result, measured.usage["server"].cpu_s
    return {
        **result.to_json(),
        "server_cpu_s": round(cpu, 3),
        "req_per_cpu_s": result.requests / cpu if cpu else None,
    }


async def _idle(
    server: procs.Server,
    port: int,
    host: str,
    app_pids: list[int],
    options: Options,
    placement: procs.Placement,
) -> dict[str, Any]:
    pids = [server.pid, *app_pids]
    before = await _throughput(port, host, pids, options, placement)
    await asyncio.sleep(1)
    rss0 = procs.rss_kb(server.pid)
    tcp0 = procs.slab_kb()
    client = await LoadClient.start(
        placement,
        "idle",
        f"--port={port}",
        f"--host={host}",
        f"--count={options.idle}",
    )
    try:
        opened = await client.expect("open", 600)
        loop = asyncio.get_running_loop()
        held_since = loop.time()
        await asyncio.sleep(2)
        rss1 = procs.rss_kb(server.pid)
        tcp1 = procs.slab_kb()
        fds = procs.open_fds(server.pid)
        during = await _throughput(port, host, pids, options, placement)
        await asyncio.sleep(max(0.0, options.hold - (loop.time() - held_since)))
        held_s = loop.time() - held_since
        client.send(f"check {min(200, max(1, opened['open']))}")
        check = await client.expect("check", 120)
        client.send("close")
        with contextlib.suppress(RuntimeError):
            await client.expect("closed", 60)
    finally:
        await client.stop()
    n = opened["open"]
    kb = (rss1 - rss0) / n if n and rss0 is not None and rss1 is not None else None
    kernel_kb = (tcp1 - tcp0) / n if n and tcp0 is not None and tcp1 is not None else None
    ratio = during["rps"] / before["rps"] if before["rps"] else None
    cpu_ratio = (
        during["req_per_cpu_s"] / before["req_per_cpu_s"]
        if during["req_per_cpu_s"] and before["req_per_cpu_s"]
        else None
    )
    return {
        "requested": options.idle,
        "open": n,
        "failed": opened["failed"],
        "open_errors": opened["errors"],
        "open_statuses": opened["statuses"],
        "open_s": opened["seconds"],
        "rss_before_kb": rss0,
        "rss_held_kb": rss1,
        "kb_per_conn": kb,
        "kernel_slab_kb_per_conn": kernel_kb,
        "server_fds_held": fds,
        "held_s": round(held_s, 1),
        "sampled": check["sampled"],
        "alive": check["alive"],
        "still_open": check["still_open"],
        "check": check,
        "wrk_before": before,
        "wrk_held": during,
        "throughput_ratio": ratio,
        "throughput_ratio_cpu_normalised": cpu_ratio,
        "server_nofile": procs.nofile_limits(server.pid),
        "client_nofile": _without_event(client.limits),
    }


def _without_event(message: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in message.items() if k != "event"}


async def _burst(
    server: procs.Server,
    port: int,
    host: str,
    app_pids: list[int],
    options: Options,
    placement: procs.Placement,
) -> dict[str, Any]:
    client = await LoadClient.start(
        placement,
        "burst",
        f"--port={port}",
        f"--host={host}",
        f"--path=/sleep?s={options.sleep:g}",
        f"--count={options.concurrent}",
    )
    peak = {server.pid: 0, **{pid: 0 for pid in app_pids}}
    log_size = _size(server.log)
    stop = asyncio.Event()

    async def watch_fds() -> None:
        while not stop.is_set():
            for pid in peak:
                peak[pid] = max(peak[pid], procs.open_fds(pid) or 0)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), 0.05)

    watcher = asyncio.create_task(watch_fds())
    try:
        connected = await client.expect("connected", 600)
        result = await client.expect("burst", 600)
    finally:
        stop.set()
        await watcher
        await client.stop()
    server_log = _log_since(server.log, log_size)
    result.pop("event", None)
    return {
        **result,
        "connected_event": connected,
        "server_peak_fds": peak[server.pid],
        "instances_peak_fds": [peak[p] for p in app_pids],
        "server_nofile": procs.nofile_limits(server.pid),
        "client_nofile": _without_event(client.limits),
        "server_log_problems": _problems(server_log),
    }


def _size(path: Path) -> int:
    try:
        return path.stat().st_size
    except OSError:
        return 0


def _log_since(path: Path, offset: int) -> str:
    try:
        with open(path, "rb") as f:
            f.seek(offset)
            return f.read().decode(errors="replace")
    except OSError:
        return ""


def _problems(text: str) -> dict[str, Any]:
    """Warnings and errors the server logged during the burst, counted by kind."""
    lines = [
        line
        for line in text.splitlines()
        if re.search(r"WARNING|ERROR|Traceback|Errno|Too many open files", line)
    ]
    kinds: dict[str, int] = {}
    for line in lines:
        key = re.sub(r"^\S+ \S+ ", "", line)  # drop the timestamp
        key = re.sub(r"<Instance [^>]*>", "<instance>", key)
        key = re.sub(r"\d+", "N", key)[:160]
        kinds[key] = kinds.get(key, 0) + 1
    return {"lines": len(lines), "kinds": kinds, "first": lines[:5]}


def _summarise_idle(runs: list[dict[str, Any]]) -> dict[str, Any]:
    if not runs:
        return {}
    return {
        "open": report.median(r["open"] for r in runs),
        "failed": max(r["failed"] for r in runs),
        "kb_per_conn": report.median(r["kb_per_conn"] for r in runs),
        "kb_per_conn_runs": [
            None if r["kb_per_conn"] is None else round(r["kb_per_conn"], 2) for r in runs
        ],
        "kernel_slab_kb_per_conn": report.median(r["kernel_slab_kb_per_conn"] for r in runs),
        "rss_before_kb": report.median(r["rss_before_kb"] for r in runs),
        "rss_held_kb": report.median(r["rss_held_kb"] for r in runs),
        "alive": min(r["alive"] for r in runs),
        "sampled": max(r["sampled"] for r in runs),
        "rps_before": report.median(r["wrk_before"]["rps"] for r in runs),
        "rps_held": report.median(r["wrk_held"]["rps"] for r in runs),
        "p99_held_ms": report.median(r["wrk_held"]["p99_ms"] for r in runs),
        "throughput_ratio": report.median(r["throughput_ratio"] for r in runs),
        "throughput_ratio_cpu_normalised": report.median(
            r["throughput_ratio_cpu_normalised"] for r in runs
        ),
        "server_nofile": runs[-1]["server_nofile"],
        "client_nofile": [runs[-1]["client_nofile"].get(k) for k in ("soft", "hard")],
    }


def _summarise_burst(runs: list[dict[str, Any]]) -> dict[str, Any]:
    if not runs:
        return {}
    errors: dict[str, int] = {}
    statuses: dict[str, int] = {}
    for r in runs:
        for k, v in r["errors"].items():
            errors[k] = errors.get(k, 0) + v
        for k, v in r["connect_errors"].items():
            errors[f"connect {k}"] = errors.get(f"connect {k}", 0) + v
        for k, v in r["statuses"].items():
            if k != "200":
                statuses[k] = statuses.get(k, 0) + v
    return {
        "ok": min(r["ok"] for r in runs),
        "errors_runs": [r["errors_total"] for r in runs],
        "errors_max": max(r["errors_total"] for r in runs),
        "non_200_statuses": statuses,
        "errors": errors,
        "total_s": report.median(r["total_s"] for r in runs),
        "p50_s": report.median(r["latency_s"]["p50"] for r in runs),
        "p99_s": report.median(r["latency_s"]["p99"] for r in runs),
        "server_peak_fds": max(r["server_peak_fds"] for r in runs),
        "instances_peak_fds": max(max(r["instances_peak_fds"] or [0]) for r in runs),
        "server_nofile": runs[-1]["server_nofile"],
        "client_nofile": [runs[-1]["client_nofile"].get(k) for k in ("soft", "hard")],
        "server_log_problems": _merge_problems(r["server_log_problems"] for r in runs),
    }


def _merge_problems(items: Any) -> dict[str, int]:
    merged: dict[str, int] = {}
    for item in items:
        for k, v in item["kinds"].items():
            merged[k] = merged.get(k, 0) + v
    return merged


def _limits(value: Any) -> str:
    if not value or value[0] is None:
        return "?"
    return f"{value[0]}/{value[1]}"


def _summarised(summary: dict[str, dict[str, Any]]) -> Iterator[tuple[Target, dict[str, Any]]]:
    """The targets that have a summary (in table order), with it."""
    for target in TARGETS:
        if s := summary.get(target.key):
            yield target, s


def _idle_table(
    summary: dict[str, dict[str, Any]], options: Options
) -> tuple[list[str], list[list[str]]]:
    columns = [
        "server (fresh process)",
        "held",
        "failed",
        "RSS before → held MB",
        "RSS KB/conn",
        "kernel slab KB/conn",
        "alive after hold",
        "req/s before",
        "req/s held",
        "held/before",
        "nofile soft/hard",
    ]
    rows = []
    for target, s in _summarised(summary):
        rows.append(
            [
                target.label,
                report.fmt(s["open"]),
                str(s["failed"]),
                f"{report.fmt((s['rss_before_kb'] or 0) / 1024, 1)} → "
                f"{report.fmt((s['rss_held_kb'] or 0) / 1024, 1)}",
                report.fmt(s["kb_per_conn"], 2),
                report.fmt(s["kernel_slab_kb_per_conn"], 1),
                f"{s['alive']}/{s['sampled']}",
                report.fmt(s["rps_before"]),
                report.fmt(s["rps_held"]),
                report.fmt(s["throughput_ratio"], 2),
                _limits(s["server_nofile"]),
            ]
        )
    return columns, rows


def _burst_table(
    summary: dict[str, dict[str, Any]], options: Options
) -> tuple[list[str], list[list[str]]]:
    columns = [
        "target",
        "requests",
        "ok (worst round)",
        "errors (per round)",
        "what failed",
        "total s",
        "p50 s",
        "p99 s",
        "server peak fds",
        "server nofile",
        "client nofile",
    ]
    rows = []
    for target, s in _summarised(summary):
        label = target.label
        if target.key == "cloudlet":
            label += f" → {options.instances} instances"
        else:
            label += " (1 process)"
        failed = {**s["errors"], **{f"HTTP {k}": v for k, v in s["non_200_statuses"].items()}}
        rows.append(
            [
                label,
                f"{options.concurrent:,}",
                report.fmt(s["ok"]),
                ", ".join(str(e) for e in s["errors_runs"]),
                "; ".join(f"{k}: {v}" for k, v in failed.items()) or "-",
                report.fmt(s["total_s"], 2),
                report.fmt(s["p50_s"], 2),
                report.fmt(s["p99_s"], 2),
                str(s["server_peak_fds"]),
                _limits(s["server_nofile"]),
                _limits(s["client_nofile"]),
            ]
        )
    return columns, rows


def _goals(
    idle: dict[str, dict[str, Any]], burst: dict[str, dict[str, Any]], options: Options
) -> dict[str, Any]:
    lines: list[str] = []
    out: dict[str, Any] = {}
    router = idle.get("cloudlet") or {}
    if router:
        kb = router["kb_per_conn"]
        held_all = router["open"] >= options.idle and router["alive"] == router["sampled"]
        holds = kb is not None and kb <= KB_GOAL and held_all
        out["idle_memory"] = {"kb_per_conn": kb, "goal_kb": KB_GOAL, "holds": holds}
        lines.append(
            f"Router holds {report.fmt(router['open'])}/{options.idle:,} idle connections, "
            f"{router['alive']}/{router['sampled']} alive after the hold, "
            f"{report.fmt(kb, 2)} KB each (goal ≤ {KB_GOAL:g}) → {report.verdict(holds)}"
        )
        ratio = router["throughput_ratio"]
        if ratio is not None:
            holds = ratio >= THROUGHPUT_GOAL
            out["idle_throughput"] = {
                "ratio": ratio,
                "cpu_normalised": router["throughput_ratio_cpu_normalised"],
                "goal": THROUGHPUT_GOAL,
                "holds": holds,
            }
            lines.append(
                f"Active clients while they are held: {ratio:.2f} of the throughput before "
                f"(CPU-normalised {report.fmt(router['throughput_ratio_cpu_normalised'], 2)}; "
                f"≥ {THROUGHPUT_GOAL} counts as no loss) → {report.verdict(holds)}"
            )
    b = burst.get("cloudlet") or {}
    if b:
        holds = b["errors_max"] == 0
        out["concurrent"] = {"errors_runs": b["errors_runs"], "holds": holds}
        line = (
            f"{options.concurrent:,} concurrent requests through the router: errors per round "
            f"{b['errors_runs']} → {report.verdict(holds)}"
        )
        if not holds:
            diagnosis = _diagnose(b, options)
            out["concurrent"]["diagnosis"] = diagnosis
            line += f"\n  {diagnosis}"
        lines.append(line)
    out["lines"] = lines
    return out


def _diagnose(b: dict[str, Any], options: Options) -> str:
    limit = b["server_nofile"][0] if b["server_nofile"] else None
    problems = "; ".join(f"{k}: {v}" for k, v in list(b["server_log_problems"].items())[:4])
    parts = [
        f"router peak open fds {b['server_peak_fds']} (limit {limit}); one client fd and one "
        f"instance fd per request in flight need ≈ {2 * options.concurrent:,}"
    ]
    if problems:
        parts.append(f"router log: {problems}")
    return "; ".join(parts)
