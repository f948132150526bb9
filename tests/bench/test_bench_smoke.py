"""Smoke test of `cloudlet bench router` and `cloudlet bench connections`: each runs its
--quick mode as a subprocess, prints its table and writes valid JSON. No timing is ever
asserted here: the numbers of a --quick run on a shared machine mean nothing."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(
        shutil.which("wrk") is None,
        reason="wrk is not installed (Debian: apt-get install wrk; `dev.py test` does as root)",
    ),
    pytest.mark.skipif(not sys.platform.startswith("linux"), reason="the benchmarks read /proc"),
]


def run_bench(name: str, results: Path) -> tuple[str, dict[str, object]]:
    done = subprocess.run(
        [sys.executable, "-m", "cloudlet.cli", "bench", name, "--quick", "--results-dir", results],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=900,
    )
    output = done.stdout + done.stderr
    assert done.returncode == 0, output
    files = sorted(results.glob(f"{name}-*.json"))
    assert len(files) == 1, output
    assert not list(results.glob("*.tmp")), "a half-written result was left behind"
    data = json.loads(files[0].read_text())
    assert data["benchmark"] == name
    assert data["machine"]["cores"] >= 1
    assert data["machine"]["versions"]["uvicorn"]
    return output, data


def test_bench_router_quick(tmp_path: Path) -> None:
    output, data = run_bench("router", tmp_path)
    assert "Router: medians and ratios to direct uvicorn" in output
    targets = {t["key"]: t for t in data["targets"]}  # type: ignore[attr-defined]
    expected = {"direct", "cloudlet", "cloudlet_nobatch", "cloudlet_batch"}
    if shutil.which("nginx") or Path("/usr/sbin/nginx").exists():
        expected |= {"nginx_uds", "nginx_tcp"}
    assert expected <= set(targets)
    for target in targets.values():
        assert len(target["runs"]) == 1
        run = target["runs"][0]
        assert run["requests"] > 0
        assert run["errors"] == 0
        assert run["server_cpu_s"] >= 0
    # The CPU split names the router and the app separately.
    assert set(targets["cloudlet"]["runs"][0]["cpu_s"]) == {"proxy", "app"}
    assert data["markdown"].startswith("| target |")


def test_bench_connections_quick(tmp_path: Path) -> None:
    output, data = run_bench("connections", tmp_path)
    assert "idle keep-alive connections" in output
    assert "concurrent requests" in output
    method = data["method"]
    assert isinstance(method, dict)
    idle = data["idle"]["summary"]  # type: ignore[index]
    concurrent = data["concurrent"]["summary"]  # type: ignore[index]
    for key in ("cloudlet", "uvicorn"):
        assert idle[key]["open"] == method["idle_connections"]
        assert idle[key]["alive"] == idle[key]["sampled"] > 0
        assert idle[key]["kb_per_conn"] is not None
        assert concurrent[key]["errors_max"] == 0, concurrent[key]
        assert concurrent[key]["ok"] == method["concurrent_requests"]
        assert concurrent[key]["server_nofile"]
