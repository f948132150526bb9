"""Running wrk and reading its report."""

from __future__ import annotations

import asyncio
import functools
import re
import shutil
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from cloudlet.bench import procs

_UNITS = {"us": 1e-3, "ms": 1.0, "s": 1e3, "m": 60e3, "h": 3600e3}
_DURATION = {"us": 1e-6, "ms": 1e-3, "s": 1.0, "m": 60.0, "h": 3600.0}


class WrkError(RuntimeError):
    pass


@dataclass
class WrkResult:
    requests: int
    seconds: float
    rps: float
    p50_ms: float | None
    p90_ms: float | None
    p99_ms: float | None
    errors: int  # socket errors (connect, read, write, timeout) + non-2xx/3xx responses
    non_2xx: int

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


def available() -> str | None:
    return shutil.which("wrk")


def require() -> None:
    if available() is None:
        raise RuntimeError("wrk is not installed (Debian: apt-get install wrk)")


def _ms(value: str) -> float:
    match = re.fullmatch(r"([\d.]+)(us|ms|s|m|h)", value)
    if match is None:
        raise WrkError(f"cannot read the latency {value!r}")
    return float(match.group(1)) * _UNITS[match.group(2)]


def parse(output: str) -> WrkResult:
    """Read wrk's text report (run with --latency for the percentiles)."""
    total = re.search(r"(\d+) requests in ([\d.]+)(us|ms|s|m|h)", output)
    rps = re.search(r"Requests/sec:\s+([\d.]+)", output)
    if total is None or rps is None:
        raise WrkError(f"unexpected wrk output:\n{output}")
    percentiles: dict[str, float] = {}
    for pct, value in re.findall(r"^\s+(50|90|99)%\s+(\S+)", output, re.MULTILINE):
        percentiles[pct] = _ms(value)
    errors = 0
    socket_errors = re.search(
        r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", output
    )
    if socket_errors is not None:
        errors += sum(int(n) for n in socket_errors.groups())
    non_2xx_match = re.search(r"Non-2xx or 3xx responses: (\d+)", output)
    non_2xx = int(non_2xx_match.group(1)) if non_2xx_match else 0
    return WrkResult(
        requests=int(total.group(1)),
        seconds=float(total.group(2)) * _DURATION[total.group(3)],
        rps=float(rps.group(1)),
        p50_ms=percentiles.get("50"),
        p90_ms=percentiles.get("90"),
        p99_ms=percentiles.get("99"),
        errors=errors + non_2xx,
        non_2xx=non_2xx,
    )


async def run(
    url: str,
    *,
    duration: int,
    connections: int,
    threads: int = 1,
    host: str | None = None,
    prefix: Sequence[str] = (),
    autogroup_nice: int = 0,
    script: Path | None = None,
) -> WrkResult:
    """``wrk -t1 -cC -dDs --latency [-s SCRIPT] URL`` (behind ``prefix``, e.g. taskset/nice)."""
    command = [
        *prefix,
        "wrk",
        f"-t{threads}",
        f"-c{connections}",
        f"-d{max(1, duration)}s",
        "--latency",
        "--timeout",
        "10s",
    ]
    if script is not None:
        command += ["-s", str(script)]
    if host is not None:
        command += ["-H", f"Host: {host}"]
    command.append(url)
    process = await asyncio.create_subprocess_exec(
        *command,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
        start_new_session=True,  # its own autogroup, so that its nice value counts
    )
    if autogroup_nice:
        procs.set_autogroup_nice(process.pid, autogroup_nice)
    try:
        out, _ = await asyncio.wait_for(process.communicate(), duration + 60)
    except BaseException:
        if process.returncode is None:
            process.kill()
            await process.wait()
        raise
    text = out.decode(errors="replace")
    if process.returncode != 0:
        raise WrkError(f"wrk exited with {process.returncode}:\n{text}")
    return parse(text)


@dataclass
class Measurement:
    """One measured wrk run and what the servers' processes used meanwhile."""

    result: WrkResult
    usage: dict[str, procs.Usage]  # by role ("proxy", "app", ...)
    core_busy: float | None  # share of the servers' core busy (None when not pinned)

    def to_json(self) -> dict[str, Any]:
        """wrk's numbers, and the servers' CPU per request by role and in total."""
        result, usage = self.result, self.usage
        total_cpu = sum(u.cpu_s for u in usage.values())
        n = max(result.requests, 1)
        return {
            **result.to_json(),
            "cpu_s": {role: round(u.cpu_s, 3) for role, u in usage.items()},
            "server_cpu_s": round(total_cpu, 3),
            "server_cpu_share": total_cpu / result.seconds if result.seconds else 0.0,
            "us_per_request": {role: u.cpu_s / n * 1e6 for role, u in usage.items()},
            "us_per_request_total": total_cpu / n * 1e6,
            "req_per_cpu_s": result.requests / total_cpu if total_cpu else None,
            "ctx_switches_per_request": sum(u.ctx_switches for u in usage.values()) / n,
        }


async def measure(
    port: int,
    groups: Mapping[str, Sequence[int]],
    placement: procs.Placement,
    *,
    duration: int,
    warmup: int,
    connections: int,
    host: str | None,
    script: Path | None = None,
    autogroup_nice: int = 0,
) -> Measurement:
    """wrk against 127.0.0.1:``port`` from the load generator's core: a warm-up run, then a
    measured one during which the CPU of the process ``groups`` (root PIDs by role, their
    children counted too) is sampled."""
    url = f"http://127.0.0.1:{port}/"
    # Pin again: threads a server started since the last run must not float.
    procs.pin([p for pids in groups.values() for p in pids], placement.server_cpu, placement.nice)
    wrk = functools.partial(
        run,
        url,
        connections=connections,
        host=host,
        prefix=placement.client_prefix(),
        autogroup_nice=autogroup_nice,
        script=script,
    )
    if warmup > 0:
        await wrk(duration=warmup)
    sampler = procs.Sampler(groups)
    busy0 = procs.core_busy(placement.server_cpu)
    sampler.start()
    result = await wrk(duration=duration)
    usage = sampler.stop()
    busy1 = procs.core_busy(placement.server_cpu)
    core_busy = None
    if busy0 is not None and busy1 is not None and busy1[1] > busy0[1]:
        core_busy = (busy1[0] - busy0[0]) / (busy1[1] - busy0[1])
    return Measurement(result, usage, core_busy)
