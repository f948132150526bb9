"""The real `fastapi` CLI (fastapi-cloud-cli 0.28.0) against a real `cloudlet up`."""

from __future__ import annotations

import json
import subprocess
import time
from pathlib import Path

import httpx
import pytest

from .conftest import Cloudlet, copy_app, login

pytestmark = pytest.mark.slow


def create_app(
    cloudlet: Cloudlet, name: str, path: Path, directory: str | None = None
) -> dict[str, str]:
    args = [
        "cloud",
        "apps",
        "create",
        "--name",
        name,
        "--team-id",
        cloudlet.team_id(),
        "--link",
        "--path",
        str(path),
        "--json",
    ]
    if directory:
        args += ["--directory", directory]
    result = cloudlet.fastapi(*args)
    assert result.returncode == 0, result.stdout + result.stderr
    data = json.loads(result.stdout)["data"]
    assert data["linked"] is True
    app: dict[str, str] = data["app"]
    return app


def deploy(
    cloudlet: Cloudlet, path: Path, *args: str, **env: str
) -> subprocess.CompletedProcess[str]:
    return cloudlet.fastapi("deploy", *args, cwd=path, **env)


def wait_for(predicate, timeout: float = 120.0, what: str = "condition"):  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        try:
            last = predicate()
            if last:
                return last
        except httpx.HTTPError as exc:
            last = exc
        time.sleep(0.5)
    raise AssertionError(f"timed out waiting for {what}: {last!r}")


@pytest.fixture(scope="module")
def logged_in(cloudlet: Cloudlet) -> Cloudlet:
    login(cloudlet)
    who = cloudlet.fastapi("cloud", "whoami", "--json")
    assert json.loads(who.stdout)["data"]["email"] == "e2e@example.com"
    return cloudlet


def test_deploy_async_app_with_uv_lock(logged_in: Cloudlet, tmp_path: Path) -> None:
    path = copy_app("async_uvlock", tmp_path)
    app = create_app(logged_in, "async-uvlock", path)
    result = deploy(logged_in, path)
    out = result.stdout + result.stderr
    assert result.returncode == 0, out + logged_in.output()
    assert f"http://async-uvlock.localhost:{logged_in.router_port}" in out
    assert logged_in.app_get(app["slug"]).json()["app"] == "async_uvlock"

    # Its logs, through the CLI.
    def logged() -> bool:
        logs = logged_in.fastapi("cloud", "logs", "--no-follow", "--app-id", app["id"], "--json")
        return "root was called" in logs.stdout

    wait_for(logged, 30, "the app's log line")

    # env set redeploys, and the app sees the new value.
    result = logged_in.fastapi("cloud", "env", "set", "GREETING", "hej", "--app-id", app["id"])
    assert result.returncode == 0, result.stdout + result.stderr
    wait_for(
        lambda: logged_in.app_get(app["slug"]).json()["greeting"] == "hej",
        180,
        "redeploy with GREETING",
    )

    listed = logged_in.fastapi("cloud", "deployments", "list", "--app-id", app["id"], "--json")
    assert listed.returncode == 0, listed.stdout + listed.stderr
    deployments = json.loads(listed.stdout)["data"]
    assert len(deployments) >= 2


def test_deploy_src_layout_with_requirements(logged_in: Cloudlet, tmp_path: Path) -> None:
    path = copy_app("src_requirements", tmp_path)
    app = create_app(logged_in, "shop", path)
    result = deploy(logged_in, path)
    assert result.returncode == 0, result.stdout + result.stderr + logged_in.output()
    body = logged_in.app_get(app["slug"]).json()
    assert body == {"app": "src_requirements", "cwd_has_requirements": True}


def test_deploy_bare_file_then_with_deploy_token_in_ci(logged_in: Cloudlet, tmp_path: Path) -> None:
    path = copy_app("bare", tmp_path)
    app = create_app(logged_in, "bare", path)
    result = deploy(logged_in, path)
    assert result.returncode == 0, result.stdout + result.stderr
    assert logged_in.app_get(app["slug"]).json() == {"app": "bare"}

    token_file = tmp_path / "token"
    created = logged_in.fastapi(
        "cloud",
        "tokens",
        "create",
        "--app-id",
        app["id"],
        "--name",
        "ci",
        "--output-file",
        str(token_file),
    )
    assert created.returncode == 0, created.stdout + created.stderr
    token = token_file.read_text().strip()
    assert token.startswith("fcp_")
    ci_dir = tmp_path / "ci"
    ci_dir.mkdir()
    (ci_dir / "app.py").write_text((path / "app.py").read_text().replace('"bare"', '"bare-ci"'))
    result = deploy(logged_in, ci_dir, "--app-id", app["id"], CI="true", FASTAPI_CLOUD_TOKEN=token)
    assert result.returncode == 0, result.stdout + result.stderr
    assert logged_in.app_get(app["slug"]).json() == {"app": "bare-ci"}


def test_failing_build_shows_error_and_hint(logged_in: Cloudlet, tmp_path: Path) -> None:
    path = tmp_path / "broken"
    path.mkdir()
    (path / "notes.py").write_text("print('there is no FastAPI app here')\n")
    create_app(logged_in, "broken", path)
    result = deploy(logged_in, path)
    out = result.stdout + result.stderr
    assert result.returncode == 1, out
    assert "hint" in out.lower()
    assert "entrypoint" in out


def test_logout(logged_in: Cloudlet) -> None:
    token = json.loads((logged_in.config_dir / "auth.json").read_text())["access_token"]
    result = logged_in.fastapi("cloud", "logout")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "token_not_revoked" not in result.stdout + result.stderr
    # Revoked on the server too, not only forgotten locally.
    me = httpx.get(f"{logged_in.api}/api/v1/users/me", headers={"Authorization": f"Bearer {token}"})
    assert me.status_code == 401
    assert not (logged_in.config_dir / "auth.json").exists()
    who = logged_in.fastapi("cloud", "whoami")
    assert who.returncode != 0
