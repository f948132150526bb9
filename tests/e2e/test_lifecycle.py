"""Redeploys under load, restarts, and a control plane killed in the middle of a build."""

from __future__ import annotations

import os
import signal
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from .conftest import Cloudlet, copy_app, running_cloudlet
from .load import Probe, load

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def platform(store_kind: str) -> Iterator[Cloudlet]:
    """A Cloudlet of this module's own: these tests stop and kill it."""
    with running_cloudlet(store_kind, "cllife-") as instance:
        yield instance


def ci_deploy(cloudlet: Cloudlet, path: Path, app_id: str, token: str, *args: str):  # type: ignore[no-untyped-def]
    return cloudlet.fastapi(
        "deploy", *args, "--app-id", app_id, cwd=path, CI="true", FASTAPI_CLOUD_TOKEN=token
    )


def processes_under(path: Path) -> list[int]:
    """PIDs whose command line mentions `path` (builds, zygotes, instances, the router)."""
    found = []
    needle = str(path).encode()
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            cmdline = Path(f"/proc/{entry}/cmdline").read_bytes()
        except OSError:
            continue
        if needle in cmdline:
            found.append(int(entry))
    return found


def test_redeploy_under_load_has_zero_failures(platform: Cloudlet, tmp_path: Path) -> None:
    path = copy_app("async_uvlock", tmp_path)
    app, token = platform.new_app("under-load")
    first = ci_deploy(platform, path, app["id"], token)
    assert first.returncode == 0, first.stdout + first.stderr + platform.output()

    seen_pids: set[int] = set()

    def record_pid(r: httpx.Response) -> None:
        seen_pids.add(r.json()["pid"])

    with load(
        platform.router_port,
        f"{app['slug']}.localhost",
        [Probe("/slow?seconds=0.05")],
        fresh_probes=[Probe("/", check=record_pid)],
    ) as traffic:
        (path / "app" / "main.py").write_text(
            (path / "app" / "main.py").read_text().replace('"async_uvlock"', '"async_uvlock v2"')
        )
        second = ci_deploy(platform, path, app["id"], token)
        assert second.returncode == 0, second.stdout + second.stderr
        deadline = time.monotonic() + 30
        while platform.app_get(app["slug"]).json()["app"] != "async_uvlock v2":
            assert time.monotonic() < deadline, "the new revision never took traffic"
            time.sleep(0.2)
        time.sleep(2)  # keep the load on while the old revision drains and stops
    assert traffic.failures == [], traffic.failures[:10]
    assert traffic.requests > 50
    assert len(seen_pids) >= 2  # both revisions served


def test_restart_brings_every_app_back(platform: Cloudlet, tmp_path: Path) -> None:
    path = copy_app("bare", tmp_path)
    app, token = platform.new_app("survivor")
    result = ci_deploy(platform, path, app["id"], token)
    assert result.returncode == 0, result.stdout + result.stderr
    platform.stop(signal.SIGINT)
    assert platform.process is not None and platform.process.returncode == 0, platform.output()
    deadline = time.monotonic() + 15
    while processes_under(platform.data_dir):
        assert time.monotonic() < deadline, f"left behind: {processes_under(platform.data_dir)}"
        time.sleep(0.2)
    platform.start()
    deadline = time.monotonic() + 60
    while True:
        try:
            if platform.app_get(app["slug"]).status_code == 200:
                break
        except httpx.HTTPError:
            pass
        assert time.monotonic() < deadline, platform.output()
        time.sleep(0.3)
    assert platform.app_get(app["slug"]).json() == {"app": "bare"}


def test_sigkill_during_build_then_restart(platform: Cloudlet, tmp_path: Path) -> None:
    path = copy_app("slow_build", tmp_path)
    app, token = platform.new_app("slow")
    served, _ = platform.new_app("served")
    served_path = copy_app("bare", tmp_path / "served")
    assert ci_deploy(platform, served_path, served["id"], _).returncode == 0

    started = ci_deploy(platform, path, app["id"], token, "--no-wait")
    assert started.returncode == 0, started.stdout + started.stderr
    api = f"{platform.api}/api/v1"
    deployments = httpx.get(f"{api}/apps/{app['id']}/deployments/", headers=platform.admin).json()
    deployment_id = deployments["data"][0]["id"]

    def status() -> str:
        return str(
            httpx.get(f"{api}/deployments/{deployment_id}", headers=platform.admin).json()["status"]
        )

    def log_text() -> str:
        r = httpx.get(
            f"{api}/deployments/{deployment_id}/build-logs", headers=platform.admin, timeout=60
        )
        return r.text

    # Follow the build log until uv builds the slow package: the build is truly mid-way.
    with httpx.stream(
        "GET", f"{api}/deployments/{deployment_id}/build-logs", headers=platform.admin, timeout=120
    ) as stream:
        for line in stream.iter_lines():
            if "slowpkg" in line:
                break
            assert '"type":"failed"' not in line.replace(" ", ""), line
    assert status() == "building"

    platform.stop(signal.SIGKILL)
    deadline = time.monotonic() + 15
    while processes_under(platform.data_dir):  # uv, zygotes, instances and the router die too
        left = {
            p: Path(f"/proc/{p}/cmdline").read_bytes()[:300]
            for p in processes_under(platform.data_dir)
        }
        assert time.monotonic() < deadline, f"orphans: {left}"
        time.sleep(0.2)

    platform.start()
    deadline = time.monotonic() + 300
    while status() not in ("success", "building_image_failed", "failed"):
        assert time.monotonic() < deadline, status()
        time.sleep(0.5)
    assert status() == "success", log_text()
    assert "restarted during this build" in log_text()
    assert platform.app_get(app["slug"]).json() == {"app": "slow_build", "value": "slow"}
    # The app that was serving before the kill is back as well.
    assert platform.app_get(served["slug"]).json() == {"app": "bare"}
