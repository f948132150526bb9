"""The deploy hand-off: create, upload, complete, cancel, and the build-log stream (§4.4, §5.1)."""

from __future__ import annotations

import json

from cloudlet.control.platform import Platform
from cloudlet.store.models import Deployment

from .conftest import Api

REQUIRED = ("id", "app_id", "slug", "status", "dashboard_url", "url")


def upload(api: Api, deployment_id: str, payload: bytes = b"(zstd)") -> tuple[int, dict[str, str]]:
    target = api.post(f"/deployments/{deployment_id}/upload").json()
    assert set(target) == {"url", "fields"}
    assert all(isinstance(v, str) for v in target["fields"].values())
    path = target["url"].removeprefix("http://127.0.0.1:8000")
    # Exactly what the CLI sends: fields, then `file` named archive.tar, no Authorization.
    response = api.client.post(
        path, data=target["fields"], files={"file": ("archive.tar", payload, "application/x-tar")}
    )
    return response.status_code, target["fields"]


def test_create_upload_complete(api: Api, platform: Platform) -> None:
    app = api.create_app()
    created = api.post(f"/apps/{app['id']}/deployments/", json={"archive_size_bytes": 6})
    assert created.status_code == 201
    deployment = created.json()
    assert all(isinstance(deployment[k], str) and deployment[k] for k in REQUIRED)
    assert deployment["status"] == "waiting_upload"
    assert deployment["dashboard_url"].endswith(
        f"/apps/{app['slug']}/deployments/{deployment['id']}"
    )

    # Completing before uploading is refused with a reason.
    early = api.post(f"/deployments/{deployment['id']}/upload-complete")
    assert early.status_code == 400 and "upload" in early.json()["detail"].lower()

    status, fields = upload(api, deployment["id"], b"archive-bytes")
    assert status == 204
    assert platform.archive_path(deployment["id"]).read_bytes() == b"archive-bytes"

    # The one-time token cannot be used twice.
    again = api.client.post(
        f"/api/v1/deployments/{deployment['id']}/archive",
        data=fields,
        files={"file": ("archive.tar", b"evil", "application/x-tar")},
    )
    assert again.status_code == 403
    assert platform.archive_path(deployment["id"]).read_bytes() == b"archive-bytes"

    done = api.post(f"/deployments/{deployment['id']}/upload-complete")
    assert done.status_code == 200
    assert all(isinstance(done.json()[k], str) for k in REQUIRED)
    assert done.json()["status"] == "ready_for_build"

    listed = api.get(f"/apps/{app['id']}/deployments/", params={"limit": 100, "skip": 0}).json()
    assert listed["count"] == 1 and listed["data"][0]["id"] == deployment["id"]


def test_upload_without_token_is_refused(api: Api, platform: Platform) -> None:
    app = api.create_app()
    deployment = api.post(f"/apps/{app['id']}/deployments/", json={"archive_size_bytes": 6}).json()
    api.post(f"/deployments/{deployment['id']}/upload")
    response = api.client.post(
        f"/api/v1/deployments/{deployment['id']}/archive",
        data={"token": "guess"},
        files={"file": ("archive.tar", b"x", "application/x-tar")},
    )
    assert response.status_code == 403
    assert not platform.archive_path(deployment["id"]).exists()


def test_archive_too_large_is_413(api: Api, platform: Platform) -> None:
    app = api.create_app()
    too_big = platform.settings.max_archive_bytes + 1
    response = api.post(f"/apps/{app['id']}/deployments/", json={"archive_size_bytes": too_big})
    assert response.status_code == 413
    assert ".fastapicloudignore" in response.json()["detail"]


def test_upload_cancelled(api: Api) -> None:
    app = api.create_app()
    deployment = api.post(f"/apps/{app['id']}/deployments/", json={"archive_size_bytes": 1}).json()
    response = api.post(f"/deployments/{deployment['id']}/upload-cancelled")
    assert response.json()["status"] == "upload_cancelled"


def lines(text: str) -> list[dict[str, object]]:
    return [json.loads(line) for line in text.splitlines() if line.strip()]


def test_build_log_replay_resume_and_terminal_line(api: Api, platform: Platform) -> None:
    app = api.create_app()
    deployment = api.post(f"/apps/{app['id']}/deployments/", json={"archive_size_bytes": 1}).json()

    async def write() -> None:
        for n in range(3):
            await platform.buildlogs.append(deployment["id"], f"line {n}")
        async with platform.sessions() as session:
            row = await session.get(Deployment, deployment["id"])
            assert row is not None
            row.status = "building_image_failed"
            await session.commit()

    assert api.client.portal is not None
    api.client.portal.call(write)
    streamed = lines(api.get(f"/deployments/{deployment['id']}/build-logs").text)
    assert [m.get("message") for m in streamed[:3]] == ["line 0", "line 1", "line 2"]
    assert all(isinstance(m["id"], str) for m in streamed)
    assert streamed[-1]["type"] == "failed"
    resumed = lines(
        api.get(f"/deployments/{deployment['id']}/build-logs", params={"last_id": "2"}).text
    )
    assert [m.get("message") for m in resumed if m["type"] == "message"] == ["line 2"]


def test_app_logs_stream_no_follow(api: Api, platform: Platform) -> None:
    from datetime import UTC, datetime

    from cloudlet.store.applogs import AppLogEntry

    app = api.create_app()
    platform.applogs.append(app["id"], AppLogEntry(datetime.now(UTC), "warning", "careful"))
    body = lines(
        api.get(
            f"/apps/{app['id']}/logs/stream", params={"tail": 10, "since": "5m", "follow": "false"}
        ).text
    )
    assert body[0]["message"] == "careful" and body[0]["level"] == "warning"
    assert str(body[0]["timestamp"]).endswith("Z")
    too_old = api.get(f"/apps/{app['id']}/logs/stream", params={"since": "30d", "follow": "false"})
    assert too_old.status_code == 400 and "days" in too_old.json()["detail"]
