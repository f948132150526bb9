"""Running wrk and reading its report."""

from __future__ import annotations

import asyncio
import re
import shutil
from collections.abc import Sequence
from dataclasses import asdict, dataclass
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
) -> WrkResult:
    """``wrk -t1 -cC -dDs --latency URL`` (behind ``prefix``, e.g. taskset/nice)."""
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
