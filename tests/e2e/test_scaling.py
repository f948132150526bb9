"""Scaling with the real platform: scale to zero keeping the zygote, the first request
held and served, draining on scale-down, admission control, team limits."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
import pytest

from .conftest import Cloudlet, copy_app, running_cloudlet

pytestmark = [pytest.mark.slow, pytest.mark.store_independent]

WAIT = 60.0


@pytest.fixture(scope="module")
def platform(store_kind: str) -> Iterator[Cloudlet]:
    # A short stable window would be nicer for tests, but scale to zero only needs the app's
    # own scale_to_zero_after_s; a fast tick keeps the waits short.
    with running_cloudlet(store_kind, "clscale-") as instance:
        yield instance


def deploy(platform: Cloudlet, tmp_path: Path, name: str) -> dict[str, str]:
    path = copy_app("async_uvlock", tmp_path)
    app, token = platform.new_app(name)
    result = platform.fastapi(
        "deploy", "--app-id", app["id"], cwd=path, CI="true", FASTAPI_CLOUD_TOKEN=token
    )
    assert result.returncode == 0, result.stdout + result.stderr + platform.output()
    return app


def scaling(platform: Cloudlet, app_id: str, **changes: Any) -> dict[str, Any]:
    url = f"{platform.api}/api/v1/apps/{app_id}/scaling"
    if changes:
        r = httpx.patch(url, json=changes, headers=platform.admin)
    else:
        r = httpx.get(url, headers=platform.admin)
    assert r.status_code == 200, r.text
    return dict(r.json())


def wait_for(predicate: Callable[[], bool], what: str) -> None:
    deadline = time.monotonic() + WAIT
    while not predicate():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.1)


def zygotes(platform: Cloudlet) -> int:
    """Zygote processes of this platform (instances are forks of one, with its command
    line: those whose parent is one of them are not counted)."""
    run_dir = str(platform.data_dir.resolve()).encode()
    found: dict[int, int] = {}  # pid -> parent pid
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            cmdline = (entry / "cmdline").read_bytes()
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        if b"zygote.py" in cmdline and b"--control-fd" in cmdline and run_dir in cmdline:
            found[int(entry.name)] = int(stat.rpartition(")")[2].split()[1])
    return sum(1 for parent in found.values() if parent not in found)


def test_scale_to_zero_keeps_the_zygote_and_the_next_request_is_held_and_served(
    platform: Cloudlet, tmp_path: Path
) -> None:
    app = deploy(platform, tmp_path, "to-zero")
    assert scaling(platform, app["id"])["instances"] >= 1
    zygotes_before = zygotes(platform)
    scaling(platform, app["id"], min_instances=0, scale_to_zero_after_s=1)
    wait_for(lambda: scaling(platform, app["id"])["instances"] == 0, "scale to zero")
    assert scaling(platform, app["id"])["state"] == "scaled_to_zero"
    assert zygotes(platform) == zygotes_before  # the app stays imported

    # Several requests arrive at zero at once: all are held, then served.
    with ThreadPoolExecutor(8) as pool:
        answers = list(pool.map(lambda _: platform.app_get(app["slug"], "/"), range(8)))
    assert [r.status_code for r in answers] == [200] * 8
    assert answers[0].json()["app"] == "async_uvlock"
    assert scaling(platform, app["id"])["instances"] >= 1
    # And it goes back to zero once idle.
    wait_for(lambda: scaling(platform, app["id"])["instances"] == 0, "scale to zero again")
    assert platform.app_get(app["slug"], "/").status_code == 200


def test_scale_down_drains_requests_in_flight(platform: Cloudlet, tmp_path: Path) -> None:
    app = deploy(platform, tmp_path, "drain")
    scaling(platform, app["id"], min_instances=2, max_instances=2)
    wait_for(lambda: scaling(platform, app["id"])["instances"] == 2, "two instances")

    def slow() -> httpx.Response:
        return platform.app_get(app["slug"], "/slow", params={"seconds": 4})

    with ThreadPoolExecutor(4) as pool:
        # Least-in-flight: with two instances, each gets some of these.
        busy = [pool.submit(slow) for _ in range(4)]
        time.sleep(0.5)
        scaling(platform, app["id"], min_instances=0, max_instances=1)
        wait_for(lambda: scaling(platform, app["id"])["instances"] == 1, "one instance")
        statuses = [f.result(WAIT).status_code for f in busy]
    assert statuses == [200] * 4, statuses


def test_capacity_share_gives_429_with_retry_after(platform: Cloudlet, tmp_path: Path) -> None:
    app = deploy(platform, tmp_path, "capacity")
    body = scaling(platform, app["id"], max_instances=1, target_concurrency=2, capacity_share=0.5)
    assert body["admission_limit"] == 1
    with ThreadPoolExecutor(1) as pool:
        busy = pool.submit(lambda: platform.app_get(app["slug"], "/slow", params={"seconds": 3}))
        time.sleep(0.5)
        refused = platform.app_get(app["slug"], "/")
        assert refused.status_code == 429
        assert refused.headers["retry-after"] == "1"
        assert busy.result(WAIT).status_code == 200
    assert platform.app_get(app["slug"], "/").status_code == 200


def app_logs(platform: Cloudlet, app_id: str) -> str:
    r = httpx.get(
        f"{platform.api}/api/v1/apps/{app_id}/logs/stream",
        params={"follow": "false", "tail": 1000, "since": "1h"},
        headers=platform.admin,
    )
    assert r.status_code == 200, r.text
    return r.text


def test_team_instance_limit_refuses_at_once_and_says_why(
    platform: Cloudlet, tmp_path: Path
) -> None:
    first = deploy(platform, tmp_path / "a", "team-first")
    second = deploy(platform, tmp_path / "b", "team-second")
    team = platform.team_id()
    apps = httpx.get(
        f"{platform.api}/api/v1/apps/", params={"team_id": team}, headers=platform.admin
    ).json()["data"]
    # Every app of the team at zero, so the team's count is known: 0.
    for each in apps:
        scaling(platform, each["id"], min_instances=0, scale_to_zero_after_s=1)
    ids = [each["id"] for each in apps]
    wait_for(lambda: all(scaling(platform, i)["instances"] == 0 for i in ids), "the team at zero")
    scaling(platform, first["id"], scale_to_zero_after_s=300)
    limits = f"{platform.api}/api/v1/teams/{team}/limits"
    r = httpx.patch(limits, json={"max_instances": 1}, headers=platform.admin)
    assert r.status_code == 200, r.text
    try:
        assert platform.app_get(first["slug"], "/").status_code == 200  # the team's one
        refused = platform.app_get(second["slug"], "/")
        assert refused.status_code == 503
        assert refused.headers["retry-after"] == "1"
        assert "limit (1 instances) is reached" in app_logs(platform, second["id"])
    finally:
        r = httpx.patch(limits, json={"max_instances": None}, headers=platform.admin)
        assert r.status_code == 200, r.text
    wait_for(lambda: platform.app_get(second["slug"], "/").status_code == 200, "served again")


def test_instance_crash_mid_request_is_a_502_and_the_next_request_succeeds(
    platform: Cloudlet, tmp_path: Path
) -> None:
    app = deploy(platform, tmp_path, "crash")
    scaling(platform, app["id"], min_instances=1, max_instances=1)
    first_pid = platform.app_get(app["slug"], "/").json()["pid"]
    crashed = httpx.post(
        f"http://127.0.0.1:{platform.router_port}/crash",
        headers={"Host": f"{app['slug']}.localhost"},
        timeout=WAIT,
    )
    assert crashed.status_code == 502
    # The only instance is gone; the next request waits for its restart.
    after = platform.app_get(app["slug"], "/")
    assert after.status_code == 200
    assert after.json()["pid"] != first_pid
