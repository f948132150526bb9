"""``cloudlet bench router``: the router's cost next to direct uvicorn and nginx.

Method (reference/dataplane.md): a FastAPI hello endpoint; wrk -t1 on one core, every
server process of a target (proxy and app) on the other, both at nice -19 where allowed;
a warm-up before each measured run; targets interleaved in every round (the order rotates
from round to round); medians over the rounds. Ratios are taken against direct uvicorn in
the same round, raw and CPU-normalised (requests per CPU-second of the target's server
processes, which corrects for a noisy neighbour taking part of the servers' core).
"""

from __future__ import annotations

import asyncio
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from cloudlet.bench import procs, report, stack, wrk
from cloudlet.settings import Settings

NAME = "router"
RATIO_GOAL = 0.85
# Below this share of their core the servers were starved by a neighbour (dataplane.md §1).
STARVED = 0.9


@dataclass
class Options:
    rounds: int = 3
    duration: int = 10
    warmup: int = 2
    connections: int = 64
    nginx: bool = True
    quick: bool = False
    results_dir: Path = report.DEFAULT_RESULTS
    markdown: bool = False

    def effective(self) -> Options:
        if not self.quick:
            return self
        return Options(
            rounds=1,
            duration=2,
            warmup=1,
            connections=min(self.connections, 32),
            nginx=self.nginx,
            quick=True,
            results_dir=self.results_dir,
            markdown=self.markdown,
        )


@dataclass
class Target:
    key: str
    label: str
    port: int
    groups: dict[str, list[int]]  # "proxy" / "app" → root PIDs (children are counted too)
    note: str = ""
    runs: list[dict[str, Any]] = field(default_factory=list)


def run(options: Options) -> Path:
    if wrk.available() is None:
        raise RuntimeError("wrk is not installed (Debian: apt-get install wrk)")
    return asyncio.run(_run(options.effective()))


async def _run(options: Options) -> Path:
    placement = procs.placement()
    nofile = procs.raise_nofile()
    info = report.machine()
    default_batch = bool(Settings.model_fields["sched_batch"].default)
    router_batch_default = bool(Settings.model_fields["router_sched_batch"].default)
    report.console.print(f"[bold]cloudlet bench router[/]: {report.describe_machine(info)}")
    report.console.print(
        f"{placement.describe()}; {options.rounds} round(s) of {options.duration} s"
    )

    work = stack.workdir("clbr-")
    logs = work / "logs"
    logs.mkdir()
    servers: list[procs.Server] = []
    apps: list[stack.CloudletApp] = []
    targets: list[Target] = []
    notes: list[str] = []
    try:
        app_dir = stack.write_app(work / "direct", stack.HELLO_APP)
        uvicorn, uvicorn_port = await stack.start_uvicorn(app_dir, logs, placement)
        servers.append(uvicorn)
        targets.append(
            Target(
                "direct",
                "direct uvicorn (TCP)",
                uvicorn_port,
                {"app": [uvicorn.pid]},
                "uvicorn + uvloop + httptools, 127.0.0.1 TCP",
            )
        )

        async def cloudlet(
            sched_batch: bool, key: str, label: str, note: str, router_batch: bool | None = None
        ) -> Target:
            app = stack.CloudletApp(
                work / key, stack.HELLO_APP, sched_batch=sched_batch, revision_id=key
            )
            apps.append(app)
            await app.start(instances=1)
            procs.pin(app.zygote_pids(), placement.server_cpu, placement.nice)
            if router_batch is None:
                router_batch = sched_batch
            extra = ["--sched-batch"] if router_batch else []
            router, port = await app.start_router(logs, placement, *extra)
            servers.append(router)
            return Target(key, label, port, {"proxy": [router.pid], "app": app.instance_pids}, note)

        default = await cloudlet(
            default_batch,
            "cloudlet",
            "Cloudlet router → instance",
            f"as shipped: router_sched_batch={router_batch_default}, "
            f"sched_batch={default_batch} (the defaults)",
            router_batch=router_batch_default,
        )
        targets.append(default)
        targets.append(
            await cloudlet(
                False,
                "cloudlet_nobatch",
                "Cloudlet, no SCHED_BATCH",
                "CLOUDLET_ROUTER_SCHED_BATCH=0, CLOUDLET_SCHED_BATCH=0: "
                "router and instance scheduled normally",
                router_batch=False,
            )
        )
        targets.append(
            await cloudlet(
                True,
                "cloudlet_batch",
                "Cloudlet, all SCHED_BATCH",
                "CLOUDLET_SCHED_BATCH=1: instances in SCHED_BATCH too",
                router_batch=True,
            )
        )

        if options.nginx and stack.nginx_available():
            cloudlet_app = apps[0]
            nginx, ports = await stack.start_nginx(
                work / "nginx",
                {
                    "uds": f"unix:{cloudlet_app.instances[0].socket_path}",
                    "tcp": f"127.0.0.1:{uvicorn_port}",
                },
                placement,
            )
            servers.append(nginx)
            targets.append(
                Target(
                    "nginx_uds",
                    "nginx → instance (UDS)",
                    ports["uds"],
                    {"proxy": [nginx.pid], "app": cloudlet_app.instance_pids},
                    "the Cloudlet instance above; upstream keepalive, HTTP/1.1, no buffering",
                )
            )
            targets.append(
                Target(
                    "nginx_tcp",
                    "nginx → uvicorn (TCP)",
                    ports["tcp"],
                    {"proxy": [nginx.pid], "app": [uvicorn.pid]},
                    "the direct uvicorn above",
                )
            )
        elif options.nginx:
            notes.append("nginx is not installed: its rows are missing")

        policies = {
            t.key: {
                role: sorted({procs.sched_policy(p) for p in procs.descendants(pids)})
                for role, pids in t.groups.items()
            }
            for t in targets
        }
        for r in range(options.rounds):
            order = targets[r % len(targets) :] + targets[: r % len(targets)]
            for target in order:
                result = await _measure(target, options, placement)
                result["round"] = r + 1
                target.runs.append(result)
                report.console.print(
                    f"  round {r + 1} {target.label:<34} {result['rps']:>9,.0f} req/s  "
                    f"server CPU {result['server_cpu_share']:.2f}  "
                    f"µs/req {_us_text(result)}"
                )
    except BaseException:
        report.console.print(f"[yellow]servers' logs kept in {work}[/]")
        raise
    finally:
        for server in reversed(servers):
            await server.stop()
        for app in apps:
            await app.close()

    summary = _summarise(targets)
    goals = _goals(summary)
    starved = {
        t.label: s["server_cpu_share"]
        for t in targets
        if (s := summary[t.key])["server_cpu_share"] is not None and s["server_cpu_share"] < STARVED
    }
    if starved and placement.pinned:
        notes.append(
            "the servers did not get their core ("
            + ", ".join(f"{label}: {share:.2f}" for label, share in starved.items())
            + " CPU-s per s): something else ran on it; ratios from this run are unreliable"
        )
    columns, rows = _table(targets, summary)
    report.console.print()
    report.console.print(
        report.table("Router: medians and ratios to direct uvicorn", columns, rows)
    )
    for line in goals["lines"]:
        report.console.print(line)
    for note in notes:
        report.console.print(f"[yellow]{note}[/]")
    markdown = report.markdown_table(columns, rows)
    if options.markdown:
        report.console.print(markdown, markup=False, highlight=False, soft_wrap=True)
    data = {
        "benchmark": NAME,
        "command": report.argv(),
        "machine": info,
        "method": {
            "rounds": options.rounds,
            "duration_s": options.duration,
            "warmup_s": options.warmup,
            "connections": options.connections,
            "wrk": f"wrk -t1 -c{options.connections} -d{options.duration}s --latency",
            "placement": placement.describe(),
            "nofile": nofile.to_json(),
            "quick": options.quick,
            "ratio": "median over rounds of target / direct uvicorn in the same round",
            "cpu_normalised": "requests per CPU-second of the target's server processes",
        },
        "sched_batch_default": default_batch,
        "router_sched_batch_default": router_batch_default,
        "scheduling_policies": policies,
        "targets": [
            {
                "key": t.key,
                "label": t.label,
                "note": t.note,
                "summary": summary[t.key],
                "runs": t.runs,
            }
            for t in targets
        ],
        "goals": goals,
        "notes": notes,
        "markdown": markdown,
    }
    path = report.write_json(NAME, data, options.results_dir)
    report.console.print(f"results: {path}")
    shutil.rmtree(work, ignore_errors=True)
    return path


async def _measure(target: Target, options: Options, placement: procs.Placement) -> dict[str, Any]:
    url = f"http://127.0.0.1:{target.port}/"
    # Pin again: threads a server started since the last run must not float.
    procs.pin(
        [p for pids in target.groups.values() for p in pids], placement.server_cpu, placement.nice
    )
    prefix = placement.client_prefix()
    if options.warmup > 0:
        await wrk.run(
            url,
            duration=options.warmup,
            connections=options.connections,
            host=stack.HOST,
            prefix=prefix,
            autogroup_nice=placement.nice,
        )
    sampler = procs.Sampler(target.groups)
    busy0 = procs.core_busy(placement.server_cpu)
    sampler.start()
    result = await wrk.run(
        url,
        duration=options.duration,
        connections=options.connections,
        host=stack.HOST,
        prefix=prefix,
        autogroup_nice=placement.nice,
    )
    usage = sampler.stop()
    busy1 = procs.core_busy(placement.server_cpu)
    cpu = {role: round(u.cpu_s, 3) for role, u in usage.items()}
    total_cpu = sum(u.cpu_s for u in usage.values())
    switches = sum(u.ctx_switches for u in usage.values())
    n = max(result.requests, 1)
    out: dict[str, Any] = {
        **result.to_json(),
        "cpu_s": cpu,
        "server_cpu_s": round(total_cpu, 3),
        "server_cpu_share": total_cpu / result.seconds if result.seconds else 0.0,
        "us_per_request": {role: u.cpu_s / n * 1e6 for role, u in usage.items()},
        "us_per_request_total": total_cpu / n * 1e6,
        "req_per_cpu_s": result.requests / total_cpu if total_cpu else None,
        "ctx_switches_per_request": switches / n,
    }
    if busy0 is not None and busy1 is not None and busy1[1] > busy0[1]:
        out["server_core_busy"] = (busy1[0] - busy0[0]) / (busy1[1] - busy0[1])
    return out


def _us_text(result: dict[str, Any]) -> str:
    parts = [f"{role} {v:.0f}" for role, v in result["us_per_request"].items()]
    return ", ".join(parts)


def _summarise(targets: list[Target]) -> dict[str, dict[str, Any]]:
    direct = {run["round"]: run for run in targets[0].runs}
    summary: dict[str, dict[str, Any]] = {}
    for t in targets:
        ratios: list[float | None] = []
        normalised: list[float | None] = []
        for run in t.runs:
            ref = direct.get(run["round"])
            if ref is None or not ref["rps"]:
                continue
            ratios.append(run["rps"] / ref["rps"])
            if run["req_per_cpu_s"] and ref["req_per_cpu_s"]:
                normalised.append(run["req_per_cpu_s"] / ref["req_per_cpu_s"])
        roles = sorted({role for run in t.runs for role in run["us_per_request"]})
        summary[t.key] = {
            "rps": report.median(r["rps"] for r in t.runs),
            "rps_runs": [round(r["rps"]) for r in t.runs],
            "ratio": report.median(ratios),
            "ratio_cpu_normalised": report.median(normalised),
            "p50_ms": report.median(r["p50_ms"] for r in t.runs),
            "p99_ms": report.median(r["p99_ms"] for r in t.runs),
            "server_cpu_share": report.median(r["server_cpu_share"] for r in t.runs),
            "us_per_request": {
                role: report.median(r["us_per_request"].get(role) for r in t.runs) for role in roles
            },
            "us_per_request_total": report.median(r["us_per_request_total"] for r in t.runs),
            "ctx_switches_per_request": report.median(
                r["ctx_switches_per_request"] for r in t.runs
            ),
            "errors": sum(r["errors"] for r in t.runs),
        }
    return summary


def _goals(summary: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """Whether the issue's two goals hold in this run (information, not a verdict)."""
    lines: list[str] = []
    out: dict[str, Any] = {}
    cloudlet = summary.get("cloudlet", {})
    ratio = cloudlet.get("ratio_cpu_normalised")
    raw = cloudlet.get("ratio")
    if ratio is not None:
        holds = ratio >= RATIO_GOAL
        out["ratio"] = {"goal": RATIO_GOAL, "cpu_normalised": ratio, "raw": raw, "holds": holds}
        lines.append(
            f"Goal 1 (router keeps ≥ {RATIO_GOAL} of direct uvicorn): CPU-normalised "
            f"{ratio:.2f}, raw {raw:.2f} → {_verdict(holds)}"
        )
    router_us = cloudlet.get("us_per_request", {}).get("proxy")
    nginx_us = summary.get("nginx_uds", {}).get("us_per_request", {}).get("proxy")
    if router_us is not None and nginx_us is not None:
        holds = router_us <= nginx_us
        out["cpu_per_request"] = {"router_us": router_us, "nginx_us": nginx_us, "holds": holds}
        lines.append(
            f"Goal 2 (router CPU per request ≤ nginx's, both → the same instance): "
            f"{router_us:.1f} µs vs {nginx_us:.1f} µs → {_verdict(holds)}"
        )
    elif router_us is not None:
        lines.append("Goal 2 not checked: no nginx row in this run")
    for key in ("cloudlet_nobatch", "cloudlet_batch"):
        other = summary.get(key)
        if other is not None and other.get("ratio_cpu_normalised") is not None:
            out[key] = {
                "cpu_normalised": other["ratio_cpu_normalised"],
                "router_us": other["us_per_request"].get("proxy"),
            }
    out["lines"] = lines
    return out


def _verdict(holds: bool) -> str:
    return "[green]holds[/]" if holds else "[red]does not hold[/]"


def _table(
    targets: list[Target], summary: dict[str, dict[str, Any]]
) -> tuple[list[str], list[list[str]]]:
    columns = [
        "target",
        "req/s",
        "vs direct",
        "vs direct, CPU-norm.",
        "p50 ms",
        "p99 ms",
        "server CPU",
        "proxy µs/req",
        "app µs/req",
        "ctx sw/req",
        "errors",
    ]
    rows = []
    for t in targets:
        s = summary[t.key]
        rows.append(
            [
                t.label,
                report.fmt(s["rps"]),
                report.fmt(s["ratio"], 2),
                report.fmt(s["ratio_cpu_normalised"], 2),
                report.fmt(s["p50_ms"], 2),
                report.fmt(s["p99_ms"], 2),
                report.fmt(s["server_cpu_share"], 2),
                report.fmt(s["us_per_request"].get("proxy"), 1),
                report.fmt(s["us_per_request"].get("app"), 1),
                report.fmt(s["ctx_switches_per_request"], 2),
                str(s["errors"]),
            ]
        )
    return columns, rows
