"""What the developer sees when the app cannot import, cannot start, or runs out of memory."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest

from .conftest import Cloudlet

pytestmark = [pytest.mark.slow, pytest.mark.store_independent]

LIFESPAN_FAILS = """
from contextlib import asynccontextmanager
from fastapi import FastAPI

@asynccontextmanager
async def lifespan(app):
    raise RuntimeError("database unreachable at 10.9.9.9")
    yield

app = FastAPI(lifespan=lifespan)
"""

IMPORT_FAILS = """
import os
from fastapi import FastAPI

DATABASE_URL = os.environ["DATABASE_URL"]
app = FastAPI()
"""

OOM_AT_START = """
from contextlib import asynccontextmanager
from fastapi import FastAPI

@asynccontextmanager
async def lifespan(app):
    app.state.ballast = b"x" * (700 * 1024 * 1024)
    yield

app = FastAPI(lifespan=lifespan)
"""


def deploy_source(
    cloudlet: Cloudlet, tmp_path: Path, name: str, source: str
) -> tuple[str, str, str]:
    """Deploy `source` as main.py of a new app; return (CLI output, app id, deployment id)."""
    api = f"{cloudlet.api}/api/v1"
    app, token = cloudlet.new_app(name)
    path = tmp_path / name
    path.mkdir()
    (path / "main.py").write_text(source)
    result = cloudlet.fastapi(
        "deploy", "--app-id", app["id"], cwd=path, CI="true", FASTAPI_CLOUD_TOKEN=token
    )
    assert result.returncode == 1, result.stdout + result.stderr
    latest = httpx.get(f"{api}/apps/{app['id']}/deployments/", headers=cloudlet.admin).json()[
        "data"
    ][0]
    return result.stdout + result.stderr, app["id"], latest["id"]


def deployment(cloudlet: Cloudlet, deployment_id: str) -> dict[str, object]:
    r = httpx.get(f"{cloudlet.api}/api/v1/deployments/{deployment_id}", headers=cloudlet.admin)
    return dict(r.json())


def test_import_error_fails_the_build_with_the_traceback(
    cloudlet: Cloudlet, tmp_path: Path
) -> None:
    out, _, deployment_id = deploy_source(cloudlet, tmp_path, "needs-config", IMPORT_FAILS)
    assert "failed to import" in out
    assert "DATABASE_URL" in out
    assert "env set" in out  # the hint says how to fix it
    body = deployment(cloudlet, deployment_id)
    assert body["status"] == "building_image_failed"


def test_startup_failure_is_verifying_failed_with_the_traceback(
    cloudlet: Cloudlet, tmp_path: Path
) -> None:
    out, _, deployment_id = deploy_source(cloudlet, tmp_path, "lifespan-fails", LIFESPAN_FAILS)
    assert "Verification Failed" in out
    body = deployment(cloudlet, deployment_id)
    assert body["status"] == "verifying_failed"
    failure = body["failure"]
    assert isinstance(failure, dict) and "database unreachable" in failure["error_message"]


def test_out_of_memory_at_startup(cloudlet: Cloudlet, tmp_path: Path) -> None:
    out, _, deployment_id = deploy_source(cloudlet, tmp_path, "hungry", OOM_AT_START)
    assert "OOM" in out
    assert deployment(cloudlet, deployment_id)["status"] == "verification_failed_oom"


def test_secrets_and_tokens_never_reach_logs_or_disk(cloudlet: Cloudlet, tmp_path: Path) -> None:
    import time

    secret = "canary-secret-value-7f3a"
    api = f"{cloudlet.api}/api/v1"
    app, token = cloudlet.new_app("keeps-secrets")
    path = tmp_path / "app"
    path.mkdir()
    (path / "main.py").write_text(
        "import os\nfrom fastapi import FastAPI\napp = FastAPI()\n"
        "@app.get('/')\ndef root():\n    return {'set': bool(os.getenv('API_KEY'))}\n"
    )
    first = cloudlet.fastapi(
        "deploy", "--app-id", app["id"], cwd=path, CI="true", FASTAPI_CLOUD_TOKEN=token
    )
    assert first.returncode == 0, first.stdout + first.stderr
    r = httpx.put(
        f"{api}/apps/{app['id']}/environment-variables/",
        json={
            "upsert": {"API_KEY": {"value": secret, "is_secret": True}},
            "delete": [],
            "redeploy": True,
        },
        headers=cloudlet.admin,
    )
    assert r.status_code == 200 and secret not in r.text
    deadline = time.monotonic() + 120
    while not cloudlet.app_get(app["slug"]).json()["set"]:
        assert time.monotonic() < deadline, cloudlet.output()
        time.sleep(0.5)
    haystack = cloudlet.output()
    for file in cloudlet.data_dir.rglob("*"):
        if (
            file.is_file()
            and file.suffix not in (".db", ".db-wal", ".db-shm", ".sock")
            and "venv" not in file.parts
        ):
            try:
                haystack += file.read_text(errors="ignore")
            except OSError:
                continue
    assert secret not in haystack
    assert token not in haystack


def test_a_failed_deploy_leaves_the_running_revision_serving(
    cloudlet: Cloudlet, tmp_path: Path
) -> None:
    app, token = cloudlet.new_app("steady")
    path = tmp_path / "steady"
    path.mkdir()
    (path / "main.py").write_text(
        "from fastapi import FastAPI\napp = FastAPI()\n"
        "@app.get('/')\ndef root():\n    return {'v': 1}\n"
    )
    ok = cloudlet.fastapi(
        "deploy", "--app-id", app["id"], cwd=path, CI="true", FASTAPI_CLOUD_TOKEN=token
    )
    assert ok.returncode == 0, ok.stdout + ok.stderr
    for broken in (IMPORT_FAILS, LIFESPAN_FAILS):
        (path / "main.py").write_text(broken)
        bad = cloudlet.fastapi(
            "deploy", "--app-id", app["id"], cwd=path, CI="true", FASTAPI_CLOUD_TOKEN=token
        )
        assert bad.returncode == 1
        assert cloudlet.app_get(app["slug"]).json() == {"v": 1}
