"""Every build runs the blocking-call analyzer: a summary in the build log the CLI shows,
the report at GET /api/v1/deployments/{id}/analysis."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest

from .conftest import Cloudlet, copy_app

pytestmark = [pytest.mark.slow, pytest.mark.store_independent]


def test_build_reports_blocking_calls(cloudlet: Cloudlet, tmp_path: Path) -> None:
    path = copy_app("blocking", tmp_path)
    app, token = cloudlet.new_app("blocking")
    result = cloudlet.fastapi(
        "deploy", "--app-id", app["id"], cwd=path, CI="true", FASTAPI_CLOUD_TOKEN=token
    )
    output = result.stdout + result.stderr
    assert result.returncode == 0, output + cloudlet.output()
    # The developer sees it in `fastapi deploy`'s build log, with the route and the fix.
    assert "Found 1 blocking call on async paths" in output
    assert "main.py:9" in output and "GET /" in output

    api = f"{cloudlet.api}/api/v1"
    deployments = httpx.get(f"{api}/apps/{app['id']}/deployments/", headers=cloudlet.admin)
    deployment_id = deployments.json()["data"][0]["id"]
    report = httpx.get(f"{api}/deployments/{deployment_id}/analysis", headers=cloudlet.admin)
    assert report.status_code == 200
    body = report.json()
    assert (body["status"], body["count"]) == ("complete", 1)
    finding = body["findings"][0]
    assert (finding["file"], finding["line"]) == ("main.py", 9)
    assert finding["call_site"] == {"file": "main.py", "line": 14}
    assert finding["entry"]["label"] == "GET /"
    assert finding["fix"]
    # The app deployed and serves all the same: the analysis advises, it never blocks a deploy.
    assert cloudlet.app_get(app["slug"], "/").json() == {"app": "blocking"}
