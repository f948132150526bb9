"""`cloudlet apps scale` and `cloudlet apps limits` against a real control plane over HTTP,
logged in the way the official FastAPI Cloud CLI stores its login."""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import httpx
import pytest
import uvicorn
from typer.testing import CliRunner

from cloudlet.api.app import create_app
from cloudlet.api.login import issue_user_token
from cloudlet.cli import app as cloudlet_cli
from cloudlet.control.platform import Platform, ensure_personal_team
from cloudlet.store.models import User

from .conftest import ADMIN_TOKEN, test_settings

T = TypeVar("T")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class Server:
    base: str
    platform: Platform
    loop: asyncio.AbstractEventLoop

    def run(self, fn: Callable[[], Awaitable[T]]) -> T:
        """Run a coroutine on the server's event loop (where the platform lives)."""
        return asyncio.run_coroutine_threadsafe(fn(), self.loop).result(timeout=60)  # type: ignore[arg-type]

    def api(self, method: str, path: str, token: str = ADMIN_TOKEN, **kw: Any) -> Any:
        response = httpx.request(
            method,
            f"{self.base}/api/v1{path}",
            headers={"Authorization": f"Bearer {token}"},
            **kw,
        )
        assert response.is_success, response.text
        return response.json()

    def create_app(self, name: str, token: str = ADMIN_TOKEN) -> dict[str, Any]:
        team_id = self.api("GET", "/teams/", token=token)["data"][0]["id"]
        return dict(
            self.api("POST", "/apps/", token=token, json={"name": name, "team_id": team_id})
        )

    def create_user(self, email: str) -> str:
        async def make() -> str:
            async with self.platform.sessions() as session:
                user = User(email=email)
                session.add(user)
                await session.flush()
                await ensure_personal_team(session, user)
                value, _ = await issue_user_token(session, user, "test", 1)
                await session.commit()
                return value

        return self.run(make)


@pytest.fixture(scope="module")
def server() -> Iterator[Server]:
    data_dir = Path(tempfile.mkdtemp(prefix="cl-", dir="/tmp"))  # short: Unix sockets
    settings = test_settings(data_dir, f"sqlite+aiosqlite:///{data_dir / 'cloudlet.db'}")
    platform = Platform(settings)
    port = free_port()
    config = uvicorn.Config(
        create_app(platform), host="127.0.0.1", port=port, log_level="warning", lifespan="on"
    )
    uv_server = uvicorn.Server(config)
    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_until_complete, args=(uv_server.serve(),))
    thread.start()
    try:
        while not uv_server.started:
            assert thread.is_alive(), "uvicorn stopped during startup"
            time.sleep(0.05)
        yield Server(f"http://127.0.0.1:{port}", platform, loop)
    finally:
        uv_server.should_exit = True
        thread.join()
        loop.close()
        shutil.rmtree(data_dir, ignore_errors=True)


@dataclass
class Cli:
    """`cloudlet` with the official CLI's config folder, run in a project folder."""

    config_dir: Path
    project: Path
    monkeypatch: pytest.MonkeyPatch

    def login(
        self, server: Server, token: str = ADMIN_TOKEN, expires_at: int | None = None
    ) -> None:
        # Written by the official CLI's own code, exactly as `fastapi login` writes them.
        from fastapi_cloud_cli.utils.auth import AuthConfig, write_auth_config

        (self.config_dir / "cli.json").write_text(
            json.dumps({"base_api_url": f"{server.base}/api/v1", "dashboard_base_url": server.base})
        )
        write_auth_config(AuthConfig(access_token=token, expires_at=expires_at))

    def link(self, app: dict[str, Any]) -> None:
        from fastapi_cloud_cli.utils.apps import AppConfig, write_app_config

        write_app_config(self.project, AppConfig(app_id=app["id"], team_id=app["team_id"]))

    def __call__(self, *args: str, env: dict[str, str] | None = None) -> Any:
        result = CliRunner().invoke(cloudlet_cli, list(args), env=env)
        # Whatever happened, it was reported, not raised: no traceback.
        assert result.exception is None or isinstance(result.exception, SystemExit), (
            result.exception
        )
        assert "Traceback" not in result.output
        return result


@pytest.fixture
def cli(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Cli:
    config_dir = tmp_path / "fastapi-cli"
    config_dir.mkdir()
    project = tmp_path / "project"
    project.mkdir()
    for name in ("CLOUDLET_API_URL", "CLOUDLET_TOKEN", "FASTAPI_CLOUD_TOKEN"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("FASTAPI_CLOUD_CLI_CONFIG_DIR", str(config_dir))
    monkeypatch.chdir(project)
    return Cli(config_dir, project, monkeypatch)


def one_line_error(result: Any) -> str:
    assert result.exit_code == 1, result.output
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("error: ")
    return str(lines[0])


# -- scale -----------------------------------------------------------------------------------


def test_shows_the_linked_app(server: Server, cli: Cli) -> None:
    app = server.create_app("linked")
    cli.login(server)
    cli.link(app)
    result = cli("apps", "scale")
    assert result.exit_code == 0, result.output
    out = result.stdout
    assert f"Scaling of linked ({app['id']})" in out
    for label, value in [
        ("min instances", "0"),
        ("max instances", "4"),
        ("target concurrency", "100"),
        ("scale to zero after", "300s"),
        ("capacity share", "1"),
        ("admission limit", "400"),
        ("instances", "0"),
        ("state", "not_deployed"),
    ]:
        line = next(x for x in out.splitlines() if f" {label} " in x)
        assert f" {value} " in line, (label, line)


def test_changes_settings_by_slug_and_by_id(server: Server, cli: Cli) -> None:
    app = server.create_app("beta")
    cli.login(server)
    result = cli("apps", "scale", "beta", "--capacity-share", "0.7", "--max", "10", "--min", "1")
    assert result.exit_code == 0, result.output
    assert "Updated the scaling of beta." in result.stdout
    assert "700" in result.stdout  # admission limit: 10 x 100 x 0.7
    stored = server.api("GET", f"/apps/{app['id']}/scaling")
    assert (stored["min_instances"], stored["max_instances"], stored["capacity_share"]) == (
        1,
        10,
        0.7,
    )
    result = cli(
        "apps", "scale", app["id"], "--target", "20", "--scale-to-zero-after", "60", "--json"
    )
    assert result.exit_code == 0, result.output
    body = json.loads(result.stdout)
    assert body == server.api("GET", f"/apps/{app['id']}/scaling")
    assert body["target_concurrency"] == 20 and body["scale_to_zero_after_s"] == 60
    assert body["admission_limit"] == 140 and body["state"] == "not_deployed"


def test_json_shows_the_api_body(server: Server, cli: Cli) -> None:
    app = server.create_app("plain")
    cli.login(server)
    cli.link(app)
    result = cli("apps", "scale", "--json")
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout) == {
        "app_id": app["id"],
        "min_instances": 0,
        "max_instances": 4,
        "target_concurrency": 100,
        "scale_to_zero_after_s": 300,
        "capacity_share": 1.0,
        "admission_limit": 400,
        "instances": 0,
        "state": "not_deployed",
    }


def test_validation_errors_are_one_line(server: Server, cli: Cli) -> None:
    server.create_app("strict")
    cli.login(server)
    line = one_line_error(cli("apps", "scale", "strict", "--min", "5"))
    assert "min_instances: must not exceed max_instances" in line
    line = one_line_error(cli("apps", "scale", "strict", "--capacity-share", "1.5"))
    assert "capacity_share" in line
    result = cli("apps", "scale", "strict", "--max", "0", "--json")
    assert result.exit_code == 1
    error = json.loads(result.stdout)["error"]
    assert error["code"] == "invalid_input" and error["message"].startswith("max_instances")


def test_unknown_app(server: Server, cli: Cli) -> None:
    cli.login(server)
    line = one_line_error(cli("apps", "scale", "no-such-app"))
    assert "App not found: no-such-app" in line
    result = cli("apps", "scale", "no-such-app", "--json")
    assert result.exit_code == 1
    assert json.loads(result.stdout)["error"]["code"] == "not_found"


def test_another_teams_app_is_not_found(server: Server, cli: Cli) -> None:
    app = server.create_app("private")
    cli.login(server, token=server.create_user("mallory@example.com"))
    assert "App not found" in one_line_error(cli("apps", "scale", app["id"], "--max", "1"))
    assert "App not found" in one_line_error(cli("apps", "scale", "private"))


def test_not_logged_in(server: Server, cli: Cli) -> None:
    cli.login(server)
    (cli.config_dir / "auth.json").unlink()
    assert "Not logged in" in one_line_error(cli("apps", "scale", "x"))


def test_expired_login(server: Server, cli: Cli) -> None:
    cli.login(server, expires_at=int(time.time()) - 10)
    assert "expired" in one_line_error(cli("apps", "scale", "x"))


def test_rejected_token(server: Server, cli: Cli) -> None:
    cli.login(server, token="clt_not_a_token")
    line = one_line_error(cli("apps", "scale", "x"))
    assert "token is not valid" in line
    # Unlike the official CLI, Cloudlet's leaves the login alone.
    assert (cli.config_dir / "auth.json").exists()


def test_no_cloudlet_configured(cli: Cli) -> None:
    assert "cli.json" in one_line_error(cli("apps", "scale", "x"))
    (cli.config_dir / "cli.json").write_text("{not json")
    assert "cli.json" in one_line_error(cli("apps", "scale", "x"))


def test_not_linked(server: Server, cli: Cli) -> None:
    cli.login(server)
    assert "not linked" in one_line_error(cli("apps", "scale"))


def test_connection_refused(server: Server, cli: Cli) -> None:
    cli.login(server)
    port = free_port()  # nothing listens there
    (cli.config_dir / "cli.json").write_text(
        json.dumps({"base_api_url": f"http://127.0.0.1:{port}/api/v1"})
    )
    line = one_line_error(cli("apps", "scale", "x"))
    assert f"Could not connect to Cloudlet at http://127.0.0.1:{port}/api/v1" in line
    result = cli("apps", "scale", "x", "--json")
    assert result.exit_code == 1
    assert json.loads(result.stdout)["error"]["code"] == "network_error"


def test_options_and_environment_override_the_login(server: Server, cli: Cli) -> None:
    app = server.create_app("overridden")
    # No cli.json and no auth.json at all.
    result = cli("apps", "scale", "overridden", "--api-url", server.base, "--token", ADMIN_TOKEN)
    assert result.exit_code == 0, result.output
    result = cli(
        "apps",
        "scale",
        app["id"],
        "--json",
        env={"CLOUDLET_API_URL": f"{server.base}/api/v1/", "CLOUDLET_TOKEN": ADMIN_TOKEN},
    )
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["app_id"] == app["id"]
    # --token beats the stored login.
    cli.login(server, token="clt_not_a_token")
    result = cli("apps", "scale", app["id"], "--token", ADMIN_TOKEN)
    assert result.exit_code == 0, result.output


def test_deploy_token(server: Server, cli: Cli) -> None:
    app = server.create_app("ci-app")
    other = server.create_app("ci-other")
    token = server.api("POST", f"/apps/{app['id']}/tokens", json={"name": "ci"})["value"]
    cli.login(server)
    (cli.config_dir / "auth.json").unlink()
    env = {"FASTAPI_CLOUD_TOKEN": token}
    result = cli("apps", "scale", app["id"], "--max", "2", "--json", env=env)
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["max_instances"] == 2
    assert "App not found" in one_line_error(cli("apps", "scale", other["id"], env=env))
    assert "App not found" in one_line_error(cli("apps", "scale", "ci-other", env=env))


# -- limits ----------------------------------------------------------------------------------


def test_team_limits(server: Server, cli: Cli) -> None:
    team = server.api("GET", "/teams/")["data"][0]
    cli.login(server)
    result = cli("apps", "limits", team["slug"], "--max-instances", "8", "--max-memory-mb", "4096")
    assert result.exit_code == 0, result.output
    assert "Updated the limits" in result.stdout and "4096 MB" in result.stdout
    result = cli("apps", "limits", team["id"], "--max-memory-mb", "none", "--json")
    assert json.loads(result.stdout) == {
        "team_id": team["id"],
        "max_instances": 8,
        "max_memory_mb": None,
    }
    result = cli("apps", "limits", team["id"])
    assert "no cap" in result.stdout
    line = one_line_error(cli("apps", "limits", team["id"], "--max-instances", "lots"))
    assert "--max-instances must be a whole number or `none`" in line
    assert "max_instances" in one_line_error(
        cli("apps", "limits", team["id"], "--max-instances", "0")
    )
    assert "Team not found: nope" in one_line_error(cli("apps", "limits", "nope"))
    server.api("PATCH", f"/teams/{team['id']}/limits", json={"max_instances": None})


def test_team_limits_need_an_admin(server: Server, cli: Cli) -> None:
    token = server.create_user("bob@example.com")
    cli.login(server, token=token)
    team = server.api("GET", "/teams/", token=token)["data"][0]
    result = cli("apps", "limits", team["slug"], "--json")
    own = json.loads(result.stdout)
    assert result.exit_code == 0 and own["max_instances"] is None
    line = one_line_error(cli("apps", "limits", own["team_id"], "--max-instances", "50"))
    assert line == "error: Only administrators can change a team's limits."


# -- the installed command -------------------------------------------------------------------


def test_as_a_process(server: Server, cli: Cli) -> None:
    """The real entry point, as a process: output, exit codes, no traceback."""
    app = server.create_app("process")
    cli.login(server)
    cli.link(app)
    env = {**os.environ, "FASTAPI_CLOUD_CLI_CONFIG_DIR": str(cli.config_dir), "COLUMNS": "120"}
    command = [sys.executable, "-m", "cloudlet.cli", "apps", "scale"]
    done = subprocess.run(
        [*command, "--max", "3"], cwd=cli.project, env=env, capture_output=True, text=True
    )
    assert done.returncode == 0, done.stderr
    assert "Updated the scaling of process." in done.stdout
    assert any(" max instances " in x and " 3 " in x for x in done.stdout.splitlines())
    done = subprocess.run(
        [*command, "--min", "9"], cwd=cli.project, env=env, capture_output=True, text=True
    )
    assert done.returncode == 1
    assert "Traceback" not in done.stderr + done.stdout
    assert done.stderr.strip().splitlines() == [
        "error: min_instances: must not exceed max_instances (9 > 3)"
    ]
    done = subprocess.run(
        [*command, "x", "--api-url", f"http://127.0.0.1:{free_port()}"],
        cwd=cli.project,
        env=env,
        capture_output=True,
        text=True,
    )
    assert done.returncode == 1 and "Traceback" not in done.stderr
    assert done.stderr.startswith("error: Could not connect to Cloudlet")
