"""Smoke test of `cloudlet bench runtime`: its --quick mode runs as a subprocess, starts what
it compares, prints its tables and writes valid JSON (see conftest.run_bench)."""

from __future__ import annotations

import subprocess
from pathlib import Path

from .conftest import MARKS, run_bench

pytestmark = MARKS


def test_bench_runtime_quick(tmp_path: Path) -> None:
    output, data = run_bench("runtime", tmp_path, "--threadpool", "40")
    assert "Runtime: medians and ratios to `fastapi run`" in output
    assert "What each server runs with" in output
    machine = data["machine"]
    assert machine["cpu_model"] and machine["load_average"]
    assert machine["python"] and machine["versions"]["wrk"]

    targets = {t["key"]: t for t in data["targets"]}
    assert set(targets) == {"fastapi_run", "cloudlet", "cloudlet_threads_40", "cloudlet_routed"}
    for target in targets.values():
        assert len(target["runs"]) == 1
        run = target["runs"][0]
        assert run["requests"] > 0
        assert run["errors"] == 0, target
        assert run["server_cpu_s"] >= 0
        assert run["p50_ms"] is not None and run["p99_ms"] is not None
    assert targets["fastapi_run"]["summary"]["ratio"] == 1.0
    assert isinstance(data["goal"]["holds"], bool)

    # Both sides really ran what they claim: fastapi run's defaults, Cloudlet's tuning, and
    # the benchmarked instance runs exactly what a LocalRuntime instance runs.
    settings = data["settings"]
    assert settings["fastapi_run"]["access_log"] is True
    assert settings["fastapi_run"]["threads"] == 40
    assert settings["cloudlet"]["access_log"] is False
    assert settings["cloudlet"]["threads"] == 100
    assert settings["cloudlet_threads_40"]["threads"] == 40
    assert settings["cloudlet"]["gc_frozen"] > 0
    assert data["parity"]["identical"], data["parity"]

    # Nothing it started is left running.
    leftovers = subprocess.run(["ps", "-eo", "args"], capture_output=True, text=True).stdout
    assert not [line for line in leftovers.splitlines() if "/clrt-" in line], leftovers
