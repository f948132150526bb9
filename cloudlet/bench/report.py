"""What a benchmark prints and writes: the machine it ran on, tables, JSON."""

from __future__ import annotations

import datetime as dt
import importlib.metadata
import json
import os
import platform
import re
import shutil
import statistics
import subprocess
import sys
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Self

from rich.console import Console
from rich.table import Table

console = Console()
if not console.is_terminal:
    # Output to a file or pipe (CI, tee): wide enough for the tables not to wrap.
    console.width = max(console.width, 160)

DEFAULT_RESULTS = Path("bench/results")
_PACKAGES = ("fastapi", "starlette", "uvicorn", "uvloop", "httptools", "pydantic")
# Below this share of their core the servers were starved by a neighbour (dataplane.md §1).
STARVED = 0.9


@dataclass(frozen=True)
class Options:
    """The options every benchmark has; each one's own Options adds its fields."""

    quick: bool = False
    results_dir: Path = DEFAULT_RESULTS
    markdown: bool = False

    def quick_changes(self) -> dict[str, Any]:
        """What --quick changes: a short run that still exercises every target."""
        return {}

    def effective(self) -> Self:
        """These options, with the changes of --quick when it is on."""
        return replace(self, **self.quick_changes()) if self.quick else self


def median(values: Iterable[float | None]) -> float | None:
    present = [v for v in values if v is not None]
    return statistics.median(present) if present else None


def _command_version(command: Sequence[str], pattern: str) -> str | None:
    if shutil.which(command[0]) is None:
        return None
    try:
        done = subprocess.run(list(command), capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.TimeoutExpired):
        return None
    found = re.search(pattern, done.stdout + done.stderr)
    return found.group(1) if found else None


def cpu_model() -> str:
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def memory_gb() -> float | None:
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemTotal:"):
                    return round(int(line.split()[1]) / 1024 / 1024, 1)
    except OSError:
        pass
    return None


def git_commit() -> str | None:
    root = Path(__file__).resolve().parents[2]
    if not (root / ".git").exists() or shutil.which("git") is None:
        return None
    try:
        done = subprocess.run(
            ["git", "-C", str(root), "rev-parse", "--short", "HEAD"],
            capture_output=True,
            text=True,
            timeout=10,
        )
    except (OSError, subprocess.TimeoutExpired):
        return None
    return done.stdout.strip() or None


def package_versions(names: Iterable[str]) -> dict[str, str | None]:
    versions: dict[str, str | None] = {}
    for name in names:
        try:
            versions[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            versions[name] = None
    return versions


def machine() -> dict[str, Any]:
    versions = package_versions(_PACKAGES)
    versions["nginx"] = _command_version(["nginx", "-v"], r"nginx/(\S+)")
    versions["wrk"] = _command_version(["wrk", "-v"], r"wrk (\S+)")
    return {
        "cpu_model": cpu_model(),
        "cores": os.cpu_count(),
        "cores_available": len(os.sched_getaffinity(0)),
        "memory_gb": memory_gb(),
        "load_average": [round(x, 2) for x in os.getloadavg()],
        "kernel": platform.release(),
        "os": _os_name(),
        "python": platform.python_version(),
        "versions": versions,
        "cloudlet_commit": git_commit(),
    }


def _os_name() -> str:
    try:
        with open("/etc/os-release") as f:
            for line in f:
                if line.startswith("PRETTY_NAME="):
                    return line.split("=", 1)[1].strip().strip('"')
    except OSError:
        pass
    return platform.system()


def describe_machine(info: dict[str, Any]) -> str:
    load = ", ".join(f"{x:g}" for x in info["load_average"])
    return (
        f"{info['cpu_model']}, {info['cores']} cores, {info['memory_gb']} GB, {info['os']}, "
        f"kernel {info['kernel']}, Python {info['python']}, load average {load}"
    )


def announce(name: str) -> dict[str, Any]:
    """The machine (see :func:`machine`), printed on the benchmark's first line."""
    info = machine()
    console.print(f"[bold]cloudlet bench {name}[/]: {describe_machine(info)}")
    return info


def utc_stamp() -> str:
    return dt.datetime.now(dt.UTC).strftime("%Y%m%dT%H%M%SZ")


def write_json(name: str, data: dict[str, Any], results_dir: Path = DEFAULT_RESULTS) -> Path:
    """Write ``bench/results/<name>-<UTC timestamp>.json`` (via a .tmp file, then rename)."""
    results_dir.mkdir(parents=True, exist_ok=True)
    path = results_dir / f"{name}-{utc_stamp()}.json"
    tmp = path.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(data, indent=2, default=str) + "\n")
    os.replace(tmp, path)
    return path


def save(
    name: str, info: dict[str, Any], data: dict[str, Any], results_dir: Path = DEFAULT_RESULTS
) -> Path:
    """Write the result of benchmark ``name`` (see :func:`write_json`): which benchmark, the
    command line and the machine ``info``, then ``data``; and say where it went."""
    path = write_json(
        name, {"benchmark": name, "command": argv(), "machine": info, **data}, results_dir
    )
    console.print(f"results: {path}")
    return path


def table(title: str, columns: Sequence[str], rows: Iterable[Sequence[str]]) -> Table:
    t = Table(title=title, title_justify="left", show_lines=False)
    for i, column in enumerate(columns):
        t.add_column(column, justify="left" if i == 0 else "right", overflow="fold")
    for row in rows:
        t.add_row(*row)
    return t


def markdown_table(columns: Sequence[str], rows: Iterable[Sequence[str]]) -> str:
    """The same table as Markdown, for pasting into the README."""
    lines = ["| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return "\n".join(lines)


def print_markdown(text: str) -> None:
    console.print(text, markup=False, highlight=False, soft_wrap=True)


def fmt(value: float | None, digits: int = 0, suffix: str = "") -> str:
    if value is None:
        return "-"
    return f"{value:,.{digits}f}{suffix}"


def ratio_columns(baseline: str) -> list[str]:
    """The first columns of a table of targets measured against ``baseline``."""
    return ["target", "req/s", baseline, f"{baseline}, CPU-norm.", "p50 ms", "p99 ms", "server CPU"]


def ratio_cells(label: str, summary: dict[str, Any], ms_digits: int) -> list[str]:
    """A target's cells under :func:`ratio_columns`, from its summary."""
    return [
        label,
        fmt(summary["rps"]),
        fmt(summary["ratio"], 2),
        fmt(summary["ratio_cpu_normalised"], 2),
        fmt(summary["p50_ms"], ms_digits),
        fmt(summary["p99_ms"], ms_digits),
        fmt(summary["server_cpu_share"], 2),
    ]


def argv() -> list[str]:
    return [Path(sys.argv[0]).name, *sys.argv[1:]]


def verdict(holds: bool) -> str:
    return "[green]holds[/]" if holds else "[red]does not hold[/]"


def ratios(
    runs: Iterable[dict[str, Any]], baseline: Iterable[dict[str, Any]]
) -> tuple[list[float], list[float]]:
    """Each run's req/s over the baseline's run of the same round: raw and CPU-normalised
    (requests per CPU-second of the servers)."""
    by_round = {run["round"]: run for run in baseline}
    raw: list[float] = []
    normalised: list[float] = []
    for run in runs:
        ref = by_round.get(run["round"])
        if ref is None or not ref["rps"]:
            continue
        raw.append(run["rps"] / ref["rps"])
        if run["req_per_cpu_s"] and ref["req_per_cpu_s"]:
            normalised.append(run["req_per_cpu_s"] / ref["req_per_cpu_s"])
    return raw, normalised


def starved(shares: Mapping[str, float | None]) -> str:
    """The servers that got less than STARVED of their core, from their CPU-seconds per
    second by label, as "label: share, ..." ("" when none did)."""
    return ", ".join(
        f"{label}: {share:.2f}"
        for label, share in shares.items()
        if share is not None and share < STARVED
    )
