"""GET /api/v1/deployments/{id}/analysis: the analyzer's report as stored by the build."""

from __future__ import annotations

from typing import Any

from cloudlet.control.platform import Platform
from cloudlet.store.models import Deployment

from .conftest import Api

REPORT = {
    "status": "complete",
    "duration_s": 0.12,
    "findings": [
        {
            "file": "app/main.py",
            "line": 12,
            "call_site": {"file": "app/main.py", "line": 12},
            "chain": [],
            "kind": "sleep",
            "message": "time.sleep() blocks the event loop",
            "fix": "await asyncio.sleep(...)",
        }
    ],
}


def set_deployment(api: Api, deployment_id: str, **fields: Any) -> None:
    async def update() -> None:
        platform: Platform = api.client.app.state.platform  # type: ignore[attr-defined]
        async with platform.sessions() as session:
            row = await session.get(Deployment, deployment_id)
            assert row is not None
            for key, value in fields.items():
                setattr(row, key, value)
            await session.commit()

    assert api.client.portal is not None
    api.client.portal.call(update)


def test_pending_before_the_build_then_the_stored_report(api: Api) -> None:
    app = api.create_app()
    deployment = api.post(f"/apps/{app['id']}/deployments/", json={}).json()
    path = f"/deployments/{deployment['id']}/analysis"
    body = api.get(path).json()
    assert body == {
        "deployment_id": deployment["id"],
        "status": "pending",
        "findings": [],
        "count": 0,
    }

    set_deployment(api, deployment["id"], status="success", analysis=REPORT)
    body = api.get(path).json()
    assert body["status"] == "complete"
    assert body["count"] == 1
    assert body["findings"] == REPORT["findings"]


def test_not_run_when_the_build_ended_without_one(api: Api) -> None:
    app = api.create_app()
    deployment = api.post(f"/apps/{app['id']}/deployments/", json={}).json()
    set_deployment(api, deployment["id"], status="building_image_failed")
    body = api.get(f"/deployments/{deployment['id']}/analysis").json()
    assert (body["status"], body["count"]) == ("not_run", 0)


def test_other_teams_deployment_is_not_found(api: Api, other_api: Api) -> None:
    app = api.create_app()
    deployment = api.post(f"/apps/{app['id']}/deployments/", json={}).json()
    r = other_api.get(f"/deployments/{deployment['id']}/analysis")
    assert r.status_code == 404
    assert "detail" in r.json()
