"""Smoke test of `cloudlet bench router` and `cloudlet bench connections`: each runs its
--quick mode as a subprocess, prints its table and writes valid JSON (see
conftest.run_bench)."""

from __future__ import annotations

import shutil
from pathlib import Path

from .conftest import MARKS, run_bench

pytestmark = MARKS


def test_bench_router_quick(tmp_path: Path) -> None:
    output, data = run_bench("router", tmp_path)
    assert "Router: medians and ratios to direct uvicorn" in output
    targets = {t["key"]: t for t in data["targets"]}
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
    idle = data["idle"]["summary"]
    concurrent = data["concurrent"]["summary"]
    for key in ("cloudlet", "uvicorn"):
        assert idle[key]["open"] == method["idle_connections"]
        assert idle[key]["alive"] == idle[key]["sampled"] > 0
        assert idle[key]["kb_per_conn"] is not None
        assert concurrent[key]["errors_max"] == 0, concurrent[key]
        assert concurrent[key]["ok"] == method["concurrent_requests"]
        assert concurrent[key]["server_nofile"]
