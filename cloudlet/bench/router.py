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
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cloudlet.bench import procs, report, stack, wrk
from cloudlet.settings import Settings

NAME = "router"
RATIO_GOAL = 0.85


@dataclass(frozen=True)
class Options(report.Options):
    rounds: int = 3
    duration: int = 10
    warmup: int = 2
    connections: int = 64
    nginx: bool = True

    def quick_changes(self) -> dict[str, Any]:
        return {"rounds": 1, "duration": 2, "warmup": 1, "connections": min(self.connections, 32)}


def run(options: Options) -> Path:
    wrk.require()
    return asyncio.run(_run(options.effective()))


async def _run(options: Options) -> Path:
    placement = procs.placement()
    nofile = procs.raise_nofile()
    default_batch = bool(Settings.model_fields["sched_batch"].default)
    router_batch_default = bool(Settings.model_fields["router_sched_batch"].default)
    info = report.announce(NAME)
    report.console.print(
        f"{placement.describe()}; {options.rounds} round(s) of {options.duration} s"
    )

    work = stack.workdir("clbr-")
    logs = work / "logs"
    logs.mkdir()
    servers: list[procs.Server] = []
    apps: list[stack.CloudletApp] = []
    targets: list[stack.Target] = []
    notes: list[str] = []
    try:
        app_dir = stack.write_app(work / "direct", stack.HELLO_APP)
        uvicorn, uvicorn_port = await stack.start_uvicorn(app_dir, logs, placement)
        servers.append(uvicorn)
        targets.append(
            stack.Target(
                "direct",
                "direct uvicorn (TCP)",
                uvicorn_port,
                {"app": [uvicorn.pid]},
                "uvicorn + uvloop + httptools, 127.0.0.1 TCP",
            )
        )

        async def cloudlet(
            sched_batch: bool,
            key: str,
            label: str,
            note: str,
            router_batch: bool | None = None,
        ) -> stack.Target:
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
            return stack.Target(
                key,
                label,
                port,
                {"proxy": [router.pid], "app": app.instance_pids},
                note,
            )

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
                stack.Target(
                    "nginx_uds",
                    "nginx → instance (UDS)",
                    ports["uds"],
                    {"proxy": [nginx.pid], "app": cloudlet_app.instance_pids},
                    "the Cloudlet instance above; upstream keepalive, HTTP/1.1, no buffering",
                )
            )
            targets.append(
                stack.Target(
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
        for n, target in stack.interleave(targets, options.rounds):
            result = await _measure(target, options, placement)
            result["round"] = n
            target.runs.append(result)
            report.console.print(
                f"  round {n} {target.label:<34} {result['rps']:>9,.0f} req/s  "
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
    starved = report.starved({t.label: summary[t.key]["server_cpu_share"] for t in targets})
    if starved and placement.pinned:
        notes.append(
            f"the servers did not get their core ({starved} CPU-s per s): something else ran "
            "on it; ratios from this run are unreliable"
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
        report.print_markdown(markdown)
    data = {
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
        "targets": [t.to_json(summary[t.key]) for t in targets],
        "goals": goals,
        "notes": notes,
        "markdown": markdown,
    }
    path = report.save(NAME, info, data, options.results_dir)
    shutil.rmtree(work, ignore_errors=True)
    return path


async def _measure(
    target: stack.Target, options: Options, placement: procs.Placement
) -> dict[str, Any]:
    measured = await wrk.measure(
        target.port,
        target.groups,
        placement,
        duration=options.duration,
        warmup=options.warmup,
        connections=options.connections,
        host=stack.HOST,
        autogroup_nice=placement.nice,
    )
    out = measured.to_json()
    if measured.core_busy is not None:
        out["server_core_busy"] = measured.core_busy
    return out


def _us_text(result: dict[str, Any]) -> str:
    parts = [f"{role} {v:.0f}" for role, v in result["us_per_request"].items()]
    return ", ".join(parts)


def _summarise(targets: list[stack.Target]) -> dict[str, dict[str, Any]]:
    summary: dict[str, dict[str, Any]] = {}
    for t in targets:
        ratios, normalised = report.ratios(t.runs, targets[0].runs)
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
        out["ratio"] = {
            "goal": RATIO_GOAL,
            "cpu_normalised": ratio,
            "raw": raw,
            "holds": holds,
        }
        lines.append(
            f"Goal 1 (router keeps ≥ {RATIO_GOAL} of direct uvicorn): CPU-normalised "
            f"{ratio:.2f}, raw {raw:.2f} → {report.verdict(holds)}"
        )
    router_us = cloudlet.get("us_per_request", {}).get("proxy")
    nginx_us = summary.get("nginx_uds", {}).get("us_per_request", {}).get("proxy")
    if router_us is not None and nginx_us is not None:
        holds = router_us <= nginx_us
        out["cpu_per_request"] = {
            "router_us": router_us,
            "nginx_us": nginx_us,
            "holds": holds,
        }
        lines.append(
            f"Goal 2 (router CPU per request ≤ nginx's, both → the same instance): "
            f"{router_us:.1f} µs vs {nginx_us:.1f} µs → {report.verdict(holds)}"
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


def _table(
    targets: list[stack.Target], summary: dict[str, dict[str, Any]]
) -> tuple[list[str], list[list[str]]]:
    columns = [
        *report.ratio_columns("vs direct"),
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
                *report.ratio_cells(t.label, s, 2),
                report.fmt(s["us_per_request"].get("proxy"), 1),
                report.fmt(s["us_per_request"].get("app"), 1),
                report.fmt(s["ctx_switches_per_request"], 2),
                str(s["errors"]),
            ]
        )
    return columns, rows
