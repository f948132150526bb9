"""Every leaf command of the real `fastapi` CLI (fastapi-cloud-cli 0.28.0), human and --json.

One `fastapi deploy` of tests/apps/bare (module fixture `deployed`) backs the commands that need a
deployment; everything else is fast. Each run checks the exit code the contract gives, that no
Python traceback reaches the user, and the data itself. The last test proves that every leaf
command of the installed CLI ran, in both modes where it has `--json`.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import os
import shutil
import signal
import stat
import subprocess
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import update

from .conftest import BIN, Cloudlet, approve_device, copy_app, free_port, login

pytestmark = [
    pytest.mark.slow,
    pytest.mark.store_independent,
    pytest.mark.xdist_group("cli-conformance"),
]


# --- which commands ran -----------------------------------------------------------------------


def _cli_leaves() -> dict[str, bool]:
    """Every leaf command of the installed CLI -> whether it takes --json."""
    import typer
    from fastapi_cli.cli import app

    leaves: dict[str, bool] = {}

    def walk(command: Any, path: tuple[str, ...]) -> None:
        if hasattr(command, "list_commands"):
            ctx = command.context_class(command)
            for name in command.list_commands(ctx):
                walk(command.get_command(ctx, name), (*path, name))
        else:
            leaves[" ".join(path)] = any("--json" in p.opts for p in command.params)

    walk(typer.main.get_command(app), ())
    return leaves


LEAVES = _cli_leaves()
INVOKED: set[tuple[str, str]] = set()


def record(args: tuple[str, ...]) -> None:
    words = [a for a in args if not a.startswith("-")]
    for n in range(len(words), 0, -1):
        leaf = " ".join(words[:n])
        if leaf in LEAVES:
            INVOKED.add((leaf, "json" if "--json" in args else "human"))
            return
    raise AssertionError(f"not a leaf command: {args}")


def run(
    cli: Cloudlet,
    *args: str,
    code: int = 0,
    cwd: Path | None = None,
    input: str | None = None,
    **env: str,
) -> subprocess.CompletedProcess[str]:
    record(args)
    result = cli.fastapi(*args, cwd=cwd, input=input, **env)
    out = result.stdout + result.stderr
    assert result.returncode == code, f"fastapi {' '.join(args)} -> {result.returncode}:\n{out}"
    assert "Traceback" not in out, out
    return result


def run_json(cli: Cloudlet, *args: str, code: int = 0, **kw: Any) -> Any:
    result = run(cli, *args, "--json", code=code, **kw)
    try:
        body = json.loads(result.stdout)
    except json.JSONDecodeError as exc:
        raise AssertionError(f"not one JSON document: {result.stdout!r}") from exc
    assert ("data" in body) if code == 0 else ("error" in body), body
    return body


def run_error(cli: Cloudlet, *args: str, **kw: Any) -> dict[str, Any]:
    """A --json run that must fail with exit 1; returns the error envelope."""
    error: dict[str, Any] = run_json(cli, *args, code=1, **kw)["error"]
    return error


def ndjson(text: str) -> list[dict[str, Any]]:
    return [json.loads(line) for line in text.splitlines() if line.strip()]


def spawn(cli: Cloudlet, *args: str, cwd: Path | None = None, **env: str) -> subprocess.Popen[str]:
    """A long-running CLI command (follow modes, dev/run servers); killed after 120 s at the
    latest so a missing line fails the test instead of hanging it."""
    record(args)
    process = subprocess.Popen(
        [str(BIN / "fastapi"), *args],
        cwd=cwd,
        env=cli.cli_env(**env),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        stdin=subprocess.DEVNULL,
        text=True,
    )
    guard = threading.Timer(120, process.kill)
    guard.daemon = True
    guard.start()
    return process


def read_until(process: subprocess.Popen[str], predicate: Callable[[str], bool]) -> list[str]:
    assert process.stdout is not None
    seen = []
    for line in process.stdout:
        seen.append(line)
        if predicate(line):
            return seen
    raise AssertionError("stream ended before the expected line:\n" + "".join(seen))


def interrupt(process: subprocess.Popen[str], seen: list[str]) -> str:
    """Ctrl-C, as a user would; the command must stop cleanly."""
    process.send_signal(signal.SIGINT)
    rest, _ = process.communicate(timeout=60)
    out = "".join(seen) + rest
    assert process.returncode == 0, out
    assert "Traceback" not in out, out
    return out


def fresh_view(cloudlet: Cloudlet) -> Cloudlet:
    """The same Cloudlet seen through a CLI config dir of its own (cli.json, no login)."""
    config = Path(tempfile.mkdtemp(prefix="fcc-cmds-"))
    shutil.copy(cloudlet.config_dir / "cli.json", config / "cli.json")
    return dataclasses.replace(cloudlet, config_dir=config)


def wait_for(predicate: Callable[[], Any], what: str, timeout: float = 180) -> Any:
    """Poll until `predicate` is truthy; the deadline only stops a hung test."""
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        last = predicate()
        if last:
            return last
        time.sleep(0.5)
    raise AssertionError(f"timed out waiting for {what}: {last!r}")


# --- fixtures ---------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def cli(cloudlet: Cloudlet) -> Iterator[Cloudlet]:
    """This module's own login (so test_cli.py's logout cannot end it), made with the agent
    flow: `auth login --json`, approval, `auth wait --json`."""
    view = fresh_view(cloudlet)
    started = run_json(view, "cloud", "auth", "login")["data"]
    assert started["verification_uri_complete"].endswith(started["user_code"])
    assert started["verification_uri_complete"].startswith(cloudlet.api)
    approve_device(view, started["user_code"])
    waited = run_json(view, "cloud", "auth", "wait", "--device-code", started["device_code"])
    assert waited["data"] == {"authenticated": True, "auth_mode": "user"}
    assert json.loads((view.config_dir / "auth.json").read_text())["expires_at"]
    try:
        yield view
    finally:
        shutil.rmtree(view.config_dir, ignore_errors=True)


@pytest.fixture(scope="module")
def team(cli: Cloudlet) -> dict[str, str]:
    teams = run_json(cli, "cloud", "teams", "list")["data"]["teams"]
    assert teams, "the admin has a team of their own"
    team: dict[str, str] = teams[0]
    return team


@dataclass
class Deployed:
    app: dict[str, Any]
    path: Path  # linked to the app
    deployment_id: str
    follow: list[dict[str, Any]]  # `deployments build-logs --follow --json` during the build


@pytest.fixture(scope="module")
def deployed(
    cli: Cloudlet, team: dict[str, str], tmp_path_factory: pytest.TempPathFactory
) -> Deployed:
    """The module's one build: `fastapi deploy --json` returns at once, then `deployments
    build-logs --follow --json` follows the live build, then `deployments get` sees success."""
    path = copy_app("bare", tmp_path_factory.mktemp("deployed"))
    data = run_json(
        cli,
        *("cloud", "apps", "create", "--name", "cmds-bare", "--team-id", team["id"]),
        *("--link", "--path", str(path)),
    )["data"]
    assert data["linked"] is True
    app = data["app"]
    assert (app["name"], app["team_id"], app["directory"]) == ("cmds-bare", team["id"], None)
    assert json.loads((path / ".fastapicloud" / "cloud.json").read_text()) == {
        "app_id": app["id"],
        "team_id": team["id"],
    }

    body = run_json(cli, "deploy", cwd=path)
    created = body["data"]
    assert created["app_id"] == app["id"]
    assert created["status"] in ("waiting_upload", "ready_for_build", "building", "extracting")
    assert created["dashboard_url"] in body["hint"]
    deployment_id = created["deployment_id"]

    logs = run(cli, "cloud", "deployments", "build-logs", deployment_id, "--follow", "--json")
    follow = ndjson(logs.stdout)
    assert follow[-1]["type"] == "complete", follow
    assert all(r["deployment_id"] == deployment_id for r in follow)
    assert any(r["type"] == "log" and "Build complete" in r["message"] for r in follow), follow

    def status() -> str | None:
        got = run_json(cli, "cloud", "deployments", "get", deployment_id, cwd=path)
        s: str = got["data"]["deployment"]["status"]
        assert "failed" not in s, got
        return s if s in ("success", "verifying_skipped") else None

    wait_for(status, "the deployment to succeed")
    assert cli.app_get(app["slug"]).json() == {"app": "bare"}
    return Deployed(app, path, deployment_id, follow)


@pytest.fixture
def aux_app(cli: Cloudlet, team: dict[str, str], request: pytest.FixtureRequest) -> dict[str, Any]:
    """An app of its own for tests that change app settings (no link, no deploy)."""
    name = "cmds-" + request.node.originalname.removeprefix("test_").replace("_", "-")[:40]
    app: dict[str, Any] = run_json(
        cli, "cloud", "apps", "create", "--name", name, "--team-id", team["id"], "--no-link"
    )["data"]["app"]
    return app


@pytest.fixture(scope="module", autouse=True)
def server_log_start(cloudlet: Cloudlet) -> int:
    """Where the platform's log stood when this module began (checked for tracebacks at the end)."""
    assert cloudlet.log_path is not None
    return cloudlet.log_path.stat().st_size


# --- local commands ---------------------------------------------------------------------------


@pytest.mark.parametrize("command", ["run", "dev"])
def test_run_and_dev_serve_the_app_locally(
    cloudlet: Cloudlet, tmp_path: Path, command: str
) -> None:
    path = copy_app("bare", tmp_path)
    port = free_port()
    process = spawn(
        cloudlet, command, "app.py", "--host", "127.0.0.1", "--port", str(port), cwd=path
    )
    try:

        def answers() -> Any:
            assert process.poll() is None, process.communicate()[0]
            try:
                return httpx.get(f"http://127.0.0.1:{port}/", timeout=5).json()
            except httpx.HTTPError:
                return None

        assert wait_for(answers, f"fastapi {command}", timeout=60) == {"app": "bare"}
        out = interrupt(process, [])
        assert f"http://127.0.0.1:{port}" in out
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()


def test_ci_print_workflow(cli: Cloudlet, tmp_path: Path) -> None:
    gh = gh_stub(tmp_path)
    human = run(cli, "cloud", "ci", "print-workflow", "--branch", "main", PATH=gh.path)
    assert "branches: [main]" in human.stdout
    assert "uv run fastapi deploy" in human.stdout
    data = run_json(cli, "cloud", "ci", "print-workflow", "--branch", "main", PATH=gh.path)["data"]
    assert data["filename"] == "deploy.yml"
    assert data["content"].strip() == human.stdout.strip()
    assert gh.calls() == []  # --branch given: no need to ask GitHub


# --- login, whoami, logout --------------------------------------------------------------------


def test_whoami(cli: Cloudlet) -> None:
    assert "e2e@example.com" in run(cli, "cloud", "whoami").stdout
    data = run_json(cli, "cloud", "whoami")["data"]
    assert data == {"email": "e2e@example.com", "has_deploy_token": False}
    data = run_json(cli, "cloud", "whoami", FASTAPI_CLOUD_TOKEN="fcp_x")["data"]
    assert data["has_deploy_token"] is True


@pytest.mark.parametrize(
    ("command", "logout"),
    [
        (("login", "--no-open"), ("cloud", "logout")),
        (("cloud", "login", "--no-open"), ("cloud", "logout", "--json")),
        (("cloud", "auth", "login", "--no-open"), None),
    ],
    ids=["login", "cloud-login", "cloud-auth-login"],
)
def test_interactive_login_and_logout(
    cloudlet: Cloudlet, command: tuple[str, ...], logout: tuple[str, ...] | None
) -> None:
    view = fresh_view(cloudlet)
    try:
        record(command)
        out = login(view, *command)
        assert "Traceback" not in out
        assert run_json(view, "cloud", "whoami")["data"]["email"] == "e2e@example.com"
        if logout is None:
            return
        token = json.loads((view.config_dir / "auth.json").read_text())["access_token"]
        if "--json" in logout:
            body = run_json(view, *logout[:-1])
            assert body["data"] == {"logged_out": True}
            assert "warnings" not in body  # revoked on the server, no token_not_revoked
        else:
            result = run(view, *logout)
            assert "logged out" in result.stdout
            assert "token_not_revoked" not in result.stdout + result.stderr
        assert not (view.config_dir / "auth.json").exists()
        me = httpx.get(f"{view.api}/api/v1/users/me", headers={"Authorization": f"Bearer {token}"})
        assert me.status_code == 401
        error = run_error(view, "cloud", "whoami")
        assert error["code"] == "not_logged_in"
        assert "No credentials found." in run(view, "cloud", "whoami", code=1).stdout
    finally:
        shutil.rmtree(view.config_dir, ignore_errors=True)


def test_auth_wait_human_and_declined(cloudlet: Cloudlet) -> None:
    view = fresh_view(cloudlet)
    try:
        # `login --json` and `cloud login --json` start the same agent flow as `auth login`.
        data = run_json(view, "login")["data"]
        assert data["verification_uri_complete"].endswith(data["user_code"])
        approve_device(view, data["user_code"])
        waited = run(view, "cloud", "auth", "wait", "--device-code", data["device_code"])
        assert "logged in" in waited.stdout
        assert (view.config_dir / "auth.json").exists()
        # A device code is good for one login only.
        again = run_error(view, "cloud", "auth", "wait", "--device-code", data["device_code"])
        assert again["code"] == "invalid_input"

        data = run_json(view, "cloud", "login")["data"]
        approve_device(view, data["user_code"], approve=False)
        declined = run_error(view, "cloud", "auth", "wait", "--device-code", data["device_code"])
        assert declined["code"] == "permission_denied"
        assert "declined" in declined["message"]
    finally:
        shutil.rmtree(view.config_dir, ignore_errors=True)


# --- teams and apps ---------------------------------------------------------------------------


def test_teams_list_and_get(cli: Cloudlet, team: dict[str, str]) -> None:
    listed = run(cli, "cloud", "teams", "list")
    assert team["name"] in listed.stdout and team["id"] in listed.stdout
    everything = run_json(cli, "cloud", "teams", "list")["data"]
    assert team in everything["teams"]
    total = everything["total_count"]
    assert total == len(everything["teams"])
    data = run_json(cli, "cloud", "teams", "list", "--limit", "1", "--offset", str(total))["data"]
    assert data["teams"] == [] and data["total_count"] == total  # count is the total (§13)

    got = run(cli, "cloud", "teams", "get", team["id"])
    assert team["name"] in got.stdout
    assert f"{cli.api}/{team['slug']}/apps" in got.stdout
    assert run_json(cli, "cloud", "teams", "get", team["id"])["data"]["team"] == team

    assert "Team not found." in run(cli, "cloud", "teams", "get", "nope", code=1).stdout
    assert run_error(cli, "cloud", "teams", "get", "nope")["code"] == "not_found"
    run(cli, "cloud", "teams", "get", code=2)  # usage error: no team id


def test_apps_create_list_get(cli: Cloudlet, team: dict[str, str], tmp_path: Path) -> None:
    path = tmp_path / "project"
    path.mkdir()
    created = run(
        cli,
        *("cloud", "apps", "create", "--name", "cmds-human", "--team-id", team["id"]),
        *("--path", str(path)),
    )
    assert "Created app cmds-human" in created.stdout
    app_id = json.loads((path / ".fastapicloud" / "cloud.json").read_text())["app_id"]
    assert (path / ".fastapicloud" / ".gitignore").read_text().strip() == "*"

    taken = run_error(
        cli, "cloud", "apps", "create", "--name", "cmds-human", "--team-id", team["id"]
    )
    assert (taken["code"], taken["message"]) == ("invalid_input", "App name already taken")
    human = run(
        *(cli, "cloud", "apps", "create", "--name", "cmds-human", "--team-id", team["id"]),
        "--no-link",
        code=1,
    )
    assert "App name already taken" in human.stdout

    listed = run(cli, "cloud", "apps", "list", "--team-id", team["id"])
    assert "cmds-human" in listed.stdout and app_id in listed.stdout
    data = run_json(cli, "cloud", "apps", "list", "--team-id", team["id"])["data"]
    assert app_id in [a["id"] for a in data["apps"]]
    assert data["total_count"] == len(data["apps"])
    page = run_json(
        cli, "cloud", "apps", "list", "--team-id", team["id"], "--limit", "1", "--offset", "0"
    )["data"]
    assert len(page["apps"]) == 1 and page["total_count"] == data["total_count"]
    assert run_error(cli, "cloud", "apps", "list")["code"] == "missing_required_input"

    got = run(cli, "cloud", "apps", "get", app_id)
    assert "cmds-human" in got.stdout
    assert f"http://cmds-human.localhost:{cli.router_port}" in got.stdout
    assert f"{cli.api}/{team['slug']}/apps/cmds-human" in got.stdout
    app = run_json(cli, "cloud", "apps", "get", cwd=path)["data"]["app"]  # from cloud.json
    assert (app["id"], app["name"], app["team_id"], app["directory"]) == (
        app_id,
        "cmds-human",
        team["id"],
        None,
    )
    assert "App not found." in run(cli, "cloud", "apps", "get", "nope", code=1).stdout
    assert run_error(cli, "cloud", "apps", "get", "nope")["code"] == "not_found"


def test_apps_update_directory(cli: Cloudlet, aux_app: dict[str, Any]) -> None:
    updated = run(cli, "cloud", "apps", "update", aux_app["id"], "--directory", "backend")
    assert "Directory: backend" in updated.stdout
    app = run_json(cli, "cloud", "apps", "get", aux_app["id"])["data"]["app"]
    assert app["directory"] == "backend"
    app = run_json(cli, "cloud", "apps", "update", aux_app["id"], "--directory", "src/api")
    assert app["data"]["app"]["directory"] == "src/api"
    app = run_json(cli, "cloud", "apps", "update", aux_app["id"], "--directory", "")
    assert app["data"]["app"]["directory"] is None
    assert run_json(cli, "cloud", "apps", "get", aux_app["id"])["data"]["app"]["directory"] is None
    bad = run_error(cli, "cloud", "apps", "update", aux_app["id"], "--directory", "../x")
    assert bad["code"] == "invalid_input"
    missing = run_error(cli, "cloud", "apps", "update", "nope", "--directory", "x")
    assert missing["code"] == "not_found"


@pytest.mark.parametrize("group", [("cloud",), ("cloud", "apps")], ids=["cloud", "cloud-apps"])
def test_link_and_unlink(
    cli: Cloudlet, deployed: Deployed, tmp_path: Path, group: tuple[str, ...]
) -> None:
    app_id, team_id = deployed.app["id"], deployed.app["team_id"]
    path = tmp_path / "checkout"
    path.mkdir()
    config = path / ".fastapicloud" / "cloud.json"

    linked = run(cli, *group, "link", app_id, "--path", str(path))
    assert "Linked" in linked.stdout and "cmds-bare" in linked.stdout
    assert json.loads(config.read_text()) == {"app_id": app_id, "team_id": team_id}
    again = run_error(cli, *group, "link", app_id, "--path", str(path))
    assert again["code"] == "already_linked"
    forced = run_json(cli, *group, "link", "--app-id", app_id, "--path", str(path), "--force")
    assert forced["data"]["app_id"] == app_id and forced["data"]["team_id"] == team_id
    assert run_error(cli, *group, "link", "nope", "--path", str(tmp_path))["code"] == "not_found"
    assert (
        "App not found." in run(cli, *group, "link", "nope", "--path", str(tmp_path), code=1).stdout
    )

    assert "Removed app link" in run(cli, *group, "unlink", "--path", str(path)).stdout
    assert not config.exists()
    assert run_error(cli, *group, "unlink", "--path", str(path))["code"] == "not_linked"
    run_json(cli, *group, "link", app_id, "--path", str(path))
    assert run_json(cli, *group, "unlink", "--path", str(path))["data"]["unlinked"] is True
    assert not config.exists()


# --- deploy and deployments -------------------------------------------------------------------


def test_deploy_errors_without_building(
    cloudlet: Cloudlet, cli: Cloudlet, deployed: Deployed, aux_app: dict[str, Any], tmp_path: Path
) -> None:
    app_id = deployed.app["id"]
    # A deploy token of another app cannot deploy this one (nor even see it).
    token_file = tmp_path / "token"
    run(
        *(cli, "cloud", "tokens", "create", "--app-id", aux_app["id"], "--name", "other"),
        *("--output-file", str(token_file)),
    )
    other = token_file.read_text().strip()
    error = run_error(
        cli, "deploy", "--app-id", app_id, cwd=deployed.path, CI="1", FASTAPI_CLOUD_TOKEN=other
    )
    assert error["code"] == "not_found"
    assert "App not found" in error["message"]
    out = run(
        cli,
        "cloud",
        "deploy",
        "--app-id",
        app_id,
        code=1,
        cwd=deployed.path,
        CI="1",
        FASTAPI_CLOUD_TOKEN=other,
    ).stdout
    assert "App not found" in out
    # An invalid deploy token says so and does not log the user out.
    error = run_error(
        cli, "cloud", "deploy", "--app-id", app_id, cwd=deployed.path, FASTAPI_CLOUD_TOKEN="fcp_x"
    )
    assert error["code"] == "invalid_token"
    assert error["hint"] == "Make sure FASTAPI_CLOUD_TOKEN contains a valid token."
    assert (cli.config_dir / "auth.json").exists()
    # An unknown app, with the user's own login.
    unlinked = copy_app("bare", tmp_path)
    out = run(cli, "deploy", "--app-id", "nope", code=1, cwd=unlinked).stdout
    assert "App not found. Make sure you're logged in the correct account." in out
    # Not logged in at all.
    view = fresh_view(cloudlet)
    try:
        error = run_error(view, "cloud", "deploy", "--app-id", app_id, cwd=deployed.path)
        assert error["code"] == "not_logged_in"
    finally:
        shutil.rmtree(view.config_dir, ignore_errors=True)
    # None of that created a deployment.
    listed = run_json(cli, "cloud", "deployments", "list", "--app-id", app_id)["data"]
    assert [d["id"] for d in listed["deployments"]] == [deployed.deployment_id]


def test_deployments_list_and_get(cli: Cloudlet, deployed: Deployed) -> None:
    dep_id, app_id = deployed.deployment_id, deployed.app["id"]
    listed = run(cli, "cloud", "deployments", "list", cwd=deployed.path)
    assert dep_id in listed.stdout and "success" in listed.stdout
    data = run_json(cli, "cloud", "deployments", "list", "--app-id", app_id)["data"]
    assert data["total_count"] == 1
    (deployment,) = data["deployments"]
    assert deployment["id"] == dep_id and deployment["app_id"] == app_id
    assert deployment["status"] == "success"
    assert deployment["url"] == f"http://cmds-bare.localhost:{cli.router_port}"
    assert deployment["dashboard_url"].startswith(cli.api)
    empty = run_json(cli, "cloud", "deployments", "list", "--app-id", app_id, "--offset", "1")
    assert empty["data"]["deployments"] == [] and empty["data"]["total_count"] == 1

    got = run(cli, "cloud", "deployments", "get", dep_id, "--app-id", app_id)
    assert "success" in got.stdout and deployment["dashboard_url"] in got.stdout
    got_json = run_json(cli, "cloud", "deployments", "get", dep_id, cwd=deployed.path)
    assert got_json["data"]["deployment"] == deployment
    missing = run_error(cli, "cloud", "deployments", "get", "nope", "--app-id", app_id)
    assert (missing["code"], missing["message"]) == ("not_found", "Deployment not found.")
    out = run(cli, "cloud", "deployments", "get", "nope", "--app-id", app_id, code=1).stdout
    assert "Deployment not found." in out


def test_deployments_build_logs(cli: Cloudlet, deployed: Deployed) -> None:
    dep_id = deployed.deployment_id
    messages = [r["message"] for r in deployed.follow if r["type"] == "log"]

    human = run(cli, "cloud", "deployments", "build-logs", dep_id, "--no-follow")
    assert "Build complete" in human.stdout and "Extracting upload" in human.stdout
    data = run_json(cli, "cloud", "deployments", "build-logs", dep_id, "--no-follow")["data"]
    assert data["deployment_id"] == dep_id and data["failed"] is False
    assert [line["message"] for line in data["logs"]] == messages  # same lines as live
    assert all(isinstance(line["id"], str) for line in data["logs"])

    followed = run(cli, "cloud", "deployments", "build-logs", dep_id, "--follow")
    assert "Build complete" in followed.stdout
    records = ndjson(run(cli, "cloud", "deployments", "build-logs", dep_id, "--json").stdout)
    assert records[-1]["type"] == "complete"
    assert [r["message"] for r in records if r["type"] == "log"] == messages

    missing = run_error(cli, "cloud", "deployments", "build-logs", "nope")
    assert missing["code"] == "not_found"
    out = run(cli, "cloud", "deployments", "build-logs", "nope", "--no-follow", code=1).stdout
    assert "Deployment not found" in out


def test_logs(cli: Cloudlet, deployed: Deployed) -> None:
    app_id = deployed.app["id"]
    started = "Application startup complete."

    human = run(cli, "cloud", "logs", "--no-follow", "--since", "1h", cwd=deployed.path)
    assert started in human.stdout
    data = run_json(cli, "cloud", "logs", "--no-follow", "--since", "1h", "--app-id", app_id)
    assert data["data"]["app_id"] == app_id
    assert started in [e["message"] for e in data["data"]["logs"]]
    one = run_json(
        cli,
        "cloud",
        "apps",
        "logs",
        "--no-follow",
        "--since",
        "1h",
        "--tail",
        "1",
        "--app-id",
        app_id,
    )
    assert len(one["data"]["logs"]) == 1
    human = run(cli, "cloud", "apps", "logs", "--no-follow", "--since", "1h", cwd=deployed.path)
    assert started in human.stdout
    old = run_error(cli, "cloud", "logs", "--no-follow", "--since", "30d", "--app-id", app_id)
    assert old["code"] == "invalid_input" and "shorter time range" in old["hint"]
    missing = run_error(cli, "cloud", "logs", "--no-follow", "--app-id", "nope")
    assert missing["code"] == "not_found"

    # Follow: the backlog arrives, the stream stays open, Ctrl-C ends it cleanly.
    for args in (("cloud", "logs"), ("cloud", "apps", "logs")):
        process = spawn(cli, *args, "--since", "1h", "--json", cwd=deployed.path)
        seen = read_until(process, lambda line: started in line)
        entry = json.loads(seen[-1])
        assert entry["type"] == "log" and entry["app_id"] == app_id
        interrupt(process, seen)
        process = spawn(cli, *args, "--since", "1h", "--follow", cwd=deployed.path)
        interrupt(process, read_until(process, lambda line: started in line))


# --- environment variables, tokens, domains ---------------------------------------------------


def test_env(cli: Cloudlet, deployed: Deployed) -> None:
    app_id, cwd = deployed.app["id"], deployed.path
    assert "FOO" in run(cli, "cloud", "env", "set", "FOO", "bar", "--no-redeploy", cwd=cwd).stdout
    secret = run_json(
        cli,
        "cloud",
        "env",
        "set",
        "TOKEN",
        "s3cr3t",
        "--secret",
        "--no-redeploy",
        "--app-id",
        app_id,
    )
    assert secret["data"] == {"app_id": app_id, "name": "TOKEN", "is_secret": True}
    run(
        cli,
        "cloud",
        "env",
        "set",
        "MULTI",
        "--value-stdin",
        "--no-redeploy",
        "--app-id",
        app_id,
        input="line 1\nline 2\r\n",
    )

    listed = run(cli, "cloud", "env", "list", cwd=cwd).stdout
    assert "FOO" in listed and "bar" in listed and "[secret]" in listed
    assert "s3cr3t" not in listed
    variables = {
        v["name"]: v for v in run_json(cli, "cloud", "env", "list", cwd=cwd)["data"]["variables"]
    }
    assert variables["FOO"]["value"] == "bar" and variables["FOO"]["is_secret"] is False
    assert variables["TOKEN"]["value"] is None and variables["TOKEN"]["is_secret"] is True
    assert variables["MULTI"]["value"] == "line 1\nline 2"

    assert "bar" in run(cli, "cloud", "env", "get", "FOO", cwd=cwd).stdout
    got = run_json(cli, "cloud", "env", "get", "FOO", "--app-id", app_id)["data"]
    assert got["variable"]["value"] == "bar"
    # Updating keeps the secret flag; the value stays write-only.
    run(cli, "cloud", "env", "set", "TOKEN", "other", "--no-redeploy", cwd=cwd)
    got = run_json(cli, "cloud", "env", "get", "TOKEN", cwd=cwd)["data"]["variable"]
    assert got["is_secret"] is True and got["value"] is None
    assert "not found" in run(cli, "cloud", "env", "get", "NOPE", code=1, cwd=cwd).stdout
    assert run_error(cli, "cloud", "env", "get", "NOPE", cwd=cwd)["code"] == "not_found"
    bad = run_error(cli, "cloud", "env", "set", "1BAD", "x", "--no-redeploy", cwd=cwd)
    assert bad["code"] == "invalid_input" and "1BAD" in bad["message"]

    out = run(cli, "cloud", "env", "delete", "FOO", "--yes", "--no-redeploy", cwd=cwd).stdout
    assert "FOO deleted" in out
    deleted = run_json(cli, "cloud", "env", "delete", "MULTI", "-y", "--no-redeploy", cwd=cwd)
    assert deleted["data"] == {"app_id": app_id, "name": "MULTI", "deleted": True}
    names = [v["name"] for v in run_json(cli, "cloud", "env", "list", cwd=cwd)["data"]["variables"]]
    assert names == ["TOKEN"]
    run(cli, "cloud", "env", "delete", "TOKEN", "-y", "--no-redeploy", cwd=cwd)
    # No redeploys were asked for, so none happened.
    listed = run_json(cli, "cloud", "deployments", "list", "--app-id", app_id)["data"]
    assert listed["total_count"] == 1


def test_tokens(cli: Cloudlet, deployed: Deployed, tmp_path: Path) -> None:
    app_id, cwd = deployed.app["id"], deployed.path
    first, second = tmp_path / "first", tmp_path / "second"
    out = run(
        cli, "cloud", "tokens", "create", "--name", "t1", "--output-file", str(first), cwd=cwd
    )
    assert "Created deploy token t1" in out.stdout
    assert first.read_text().strip().startswith("fcp_")
    assert stat.S_IMODE(first.stat().st_mode) == 0o600
    created = run_json(
        cli,
        "cloud",
        "tokens",
        "create",
        "--app-id",
        app_id,
        "--name",
        "t2",
        "--expires-in-days",
        "7",
        "--output-file",
        str(second),
    )["data"]["token"]
    assert created["name"] == "t2" and created["expired_at"][:4].isdigit()
    too_long = run_error(
        cli,
        "cloud",
        "tokens",
        "create",
        "--app-id",
        app_id,
        "--name",
        "t3",
        "--expires-in-days",
        "1000",
        "--output-file",
        str(tmp_path / "third"),
    )
    assert too_long["code"] == "invalid_input"

    listed = run(cli, "cloud", "tokens", "list", cwd=cwd).stdout
    assert "t1" in listed and created["id"] in listed and created["expired_at"][:10] in listed
    tokens = run_json(cli, "cloud", "tokens", "list", "--app-id", app_id)["data"]["tokens"]
    by_name = {t["name"]: t for t in tokens}
    assert {"t1", "t2"} <= set(by_name)
    assert by_name["t2"]["id"] == created["id"]

    deleted = run(cli, "cloud", "tokens", "delete", by_name["t1"]["id"], cwd=cwd)
    assert "Deleted deploy token" in deleted.stdout
    gone = run_json(cli, "cloud", "tokens", "delete", created["id"], "--app-id", app_id)["data"]
    assert gone == {"token_id": created["id"], "deleted": True}
    tokens = run_json(cli, "cloud", "tokens", "list", cwd=cwd)["data"]["tokens"]
    assert not {"t1", "t2"} & {t["name"] for t in tokens}

    assert (
        "Deploy token not found."
        in run(cli, "cloud", "tokens", "delete", "nope", code=1, cwd=cwd).stdout
    )
    missing = run_error(cli, "cloud", "tokens", "delete", "nope", cwd=cwd)
    assert (missing["code"], missing["message"]) == ("not_found", "Deploy token nope not found.")


def test_domains(cli: Cloudlet, deployed: Deployed) -> None:
    app_id, cwd = deployed.app["id"], deployed.path
    shop, api = "shop.cmds.example.com", "api.cmds.example.com"
    added = run(cli, "cloud", "domains", "add", shop, "--standard", cwd=cwd).stdout
    assert f"Added {shop}" in added and f"_fc-dcv.{shop}" in added
    domain = run_json(cli, "cloud", "domains", "add", api, "--zero-downtime", "--app-id", app_id)[
        "data"
    ]["domain"]
    assert (domain["name"], domain["is_using_pre_validation"]) == (api, True)
    assert domain["app_id"] == app_id and domain["setup_successful"] is False

    listed = run(cli, "cloud", "domains", "list", cwd=cwd).stdout
    assert shop in listed and api in listed
    data = run_json(cli, "cloud", "domains", "list", "--app-id", app_id)["data"]
    assert sorted(d["name"] for d in data["domains"]) == [api, shop]
    assert data["total_count"] == 2

    assert shop in run(cli, "cloud", "domains", "get", shop, cwd=cwd).stdout
    got = run_json(cli, "cloud", "domains", "get", "API.cmds.example.com.", cwd=cwd)
    assert got["data"]["domain"]["id"] == domain["id"]
    missing = run_error(cli, "cloud", "domains", "get", "nope.example.com", cwd=cwd)
    assert missing["code"] == "not_found"

    assert run_error(cli, "cloud", "domains", "add", api, "--standard", cwd=cwd)["code"] == (
        "invalid_input"  # 409: already added
    )
    invalid = run_error(cli, "cloud", "domains", "add", "bad..name", "--standard", cwd=cwd)
    assert invalid["code"] == "invalid_input"
    own = run_error(cli, "cloud", "domains", "add", "x.localhost", "--standard", cwd=cwd)
    assert own["code"] == "invalid_input" and "own domain" in own["message"]

    assert (
        f"Restarted verification for {shop}"
        in run(cli, "cloud", "domains", "restart", shop, cwd=cwd).stdout
    )
    restarted = run_json(cli, "cloud", "domains", "restart", api, cwd=cwd)["data"]["domain"]
    assert restarted["id"] == domain["id"] and restarted["setup_failed"] is False

    assert (
        f"Removed {shop}" in run(cli, "cloud", "domains", "remove", shop, "--yes", cwd=cwd).stdout
    )
    removed = run_json(cli, "cloud", "domains", "remove", api, "-y", "--app-id", app_id)["data"]
    assert removed == {"app_id": app_id, "domain_id": domain["id"], "name": api, "removed": True}
    assert "No custom domains" in run(cli, "cloud", "domains", "list", cwd=cwd).stdout
    assert run_json(cli, "cloud", "domains", "list", cwd=cwd)["data"]["total_count"] == 0


# --- integrations -----------------------------------------------------------------------------


def add_connected_resource(cloudlet: Cloudlet, app_id: str, name: str, managed: list[str]) -> str:
    """Cloudlet connects no provider yet and the CLI can only open the dashboard for it, so the
    test writes the row the dashboard would, and marks `managed` variables as the resource's."""
    from cloudlet.store.db import create_engine, sessionmaker
    from cloudlet.store.models import ConnectedResource, EnvironmentVariable

    url = cloudlet.database_url or f"sqlite+aiosqlite:///{cloudlet.data_dir / 'cloudlet.db'}"

    async def write() -> str:
        engine = create_engine(url)
        try:
            async with sessionmaker(engine)() as session:
                resource = ConnectedResource(
                    app_id=app_id,
                    name=name,
                    provider="neon",
                    provider_metadata={"database_name": name},
                    console_url=f"https://console.neon.tech/app/projects/{name}",
                )
                session.add(resource)
                await session.flush()
                await session.execute(
                    update(EnvironmentVariable)
                    .where(EnvironmentVariable.app_id == app_id)
                    .where(EnvironmentVariable.name.in_(managed))
                    .values(managed_by=resource.id)
                )
                await session.commit()
                return resource.id
        finally:
            await engine.dispose()

    return asyncio.run(write())


def test_integrations(
    cloudlet: Cloudlet, cli: Cloudlet, deployed: Deployed, team: dict[str, str]
) -> None:
    app_id, cwd = deployed.app["id"], deployed.path
    providers = run(cli, "cloud", "integrations", "providers", "list", cwd=cwd).stdout
    assert "PostgreSQL" in providers
    data = run_json(cli, "cloud", "integrations", "providers", "list", "--team-id", team["id"])
    assert data["data"]["team_id"] == team["id"]
    assert all(
        p["status"] in ("available", "coming_soon", "connected") for p in data["data"]["providers"]
    )
    assert (
        run_error(cli, "cloud", "integrations", "providers", "list", "--team-id", "nope")["code"]
        == "not_found"
    )

    connect = run(cli, "cloud", "integrations", "resources", "connect", "--no-open", cwd=cwd)
    url = f"{cli.api}/{team['slug']}/apps/cmds-bare/integrations/connect"
    assert url in connect.stdout
    data = run_json(
        cli, "cloud", "integrations", "resources", "connect", "--no-open", "--app-id", app_id
    )
    assert data["data"] == {"app_id": app_id, "connect_url": url}

    assert (
        "No connected resources"
        in run(cli, "cloud", "integrations", "resources", "list", cwd=cwd).stdout
    )
    empty = run_json(cli, "cloud", "integrations", "resources", "list", "--app-id", app_id)
    assert empty["data"] == {"app_id": app_id, "resources": []}

    run(cli, "cloud", "env", "set", "DATABASE_URL", "postgres://orders", "--no-redeploy", cwd=cwd)
    run(cli, "cloud", "env", "set", "OWN", "mine", "--no-redeploy", cwd=cwd)
    orders = add_connected_resource(cloudlet, app_id, "orders", ["DATABASE_URL"])
    audit = add_connected_resource(cloudlet, app_id, "audit", [])

    listed = run(cli, "cloud", "integrations", "resources", "list", cwd=cwd).stdout
    assert "orders" in listed and "Neon" in listed and orders in listed
    resources = run_json(cli, "cloud", "integrations", "resources", "list", cwd=cwd)["data"][
        "resources"
    ]
    assert sorted((r["id"], r["name"], r["provider"]) for r in resources) == sorted(
        [(orders, "orders", "neon"), (audit, "audit", "neon")]
    )
    got = run(cli, "cloud", "integrations", "resources", "get", orders, cwd=cwd).stdout
    assert "DATABASE_URL" in got and "console.neon.tech" in got
    resource = run_json(
        cli, "cloud", "integrations", "resources", "get", orders, "--app-id", app_id
    )
    assert resource["data"]["resource"]["environment_variables"] == ["DATABASE_URL"]
    assert resource["data"]["resource"]["database_name"] == "orders"
    assert (
        "Connected resource not found."
        in run(cli, "cloud", "integrations", "resources", "get", "nope", code=1, cwd=cwd).stdout
    )
    assert (
        run_error(cli, "cloud", "integrations", "resources", "get", "nope", cwd=cwd)["code"]
        == "not_found"
    )

    # The integration owns its variables.
    managed = run_error(cli, "cloud", "env", "set", "DATABASE_URL", "x", "--no-redeploy", cwd=cwd)
    assert managed["code"] == "invalid_input" and "integration" in managed["message"]

    out = run(cli, "cloud", "integrations", "resources", "disconnect", orders, "-y", cwd=cwd).stdout
    assert "Disconnected orders" in out and "DATABASE_URL" in out
    names = [v["name"] for v in run_json(cli, "cloud", "env", "list", cwd=cwd)["data"]["variables"]]
    assert "DATABASE_URL" not in names and "OWN" in names
    gone = run_json(
        cli, "cloud", "integrations", "resources", "disconnect", audit, "--yes", cwd=cwd
    )
    assert gone["data"]["app_id"] == app_id
    assert (
        run_error(cli, "cloud", "integrations", "resources", "disconnect", audit, "-y", cwd=cwd)[
            "code"
        ]
        == "not_found"
    )
    assert (
        run_json(cli, "cloud", "integrations", "resources", "list", cwd=cwd)["data"]["resources"]
        == []
    )
    run(cli, "cloud", "env", "delete", "OWN", "-y", "--no-redeploy", cwd=cwd)


# --- CI -------------------------------------------------------------------------------------


@dataclass
class GhStub:
    path: str  # PATH with the stub first
    log: Path

    def calls(self) -> list[str]:
        return self.log.read_text().splitlines() if self.log.exists() else []


def gh_stub(tmp_path: Path) -> GhStub:
    """A `gh` that records its arguments and fails, as if not logged in to GitHub."""
    bin_dir = tmp_path / "stub-bin"
    bin_dir.mkdir()
    log = tmp_path / "gh.log"
    gh = bin_dir / "gh"
    gh.write_text(f'#!/bin/sh\necho "$*" >> {log}\necho "gh: not logged in" >&2\nexit 1\n')
    gh.chmod(0o755)
    return GhStub(f"{bin_dir}{os.pathsep}{os.environ.get('PATH', '')}", log)


def test_setup_ci(cli: Cloudlet, deployed: Deployed, tmp_path: Path) -> None:
    app_id = deployed.app["id"]
    repo = tmp_path / "repo"
    repo.mkdir()
    git = shutil.which("git")
    assert git
    subprocess.run([git, "init", "-q", str(repo)], check=True)
    subprocess.run(
        [git, "-C", str(repo), "remote", "add", "origin", "https://github.com/example/cmds.git"],
        check=True,
    )
    run(cli, "cloud", "link", app_id, "--path", str(repo))
    gh = gh_stub(tmp_path)
    tokens_before = run_json(cli, "cloud", "tokens", "list", "--app-id", app_id)["data"]["tokens"]

    dry = run(cli, "cloud", "setup-ci", "--dry-run", "--branch", "main", cwd=repo, PATH=gh.path)
    assert "dry run" in dry.stdout and "example/cmds (branch: main)" in dry.stdout
    for args in (("cloud", "setup-ci"), ("cloud", "ci", "setup")):
        data = run_json(cli, *args, "--dry-run", "--branch", "main", cwd=repo, PATH=gh.path)["data"]
        assert data == {
            "app_id": app_id,
            "repo": "example/cmds",
            "branch": "main",
            "workflow_path": ".github/workflows/deploy.yml",
            "created_token": False,
            "set_github_secrets": False,
            "wrote_workflow": False,
            "token_expired_at": None,
        }
    run(cli, "cloud", "ci", "setup", "--dry-run", "--branch", "main", cwd=repo, PATH=gh.path)
    assert not (repo / ".github").exists()
    assert set(gh.calls()) == {"repo view --json url -q .url"}  # then git's origin
    tokens = run_json(cli, "cloud", "tokens", "list", "--app-id", app_id)["data"]["tokens"]
    assert tokens == tokens_before

    # For real: the token is created, then `gh secret set` fails and the command says so.
    failed = run_error(cli, "cloud", "setup-ci", "--branch", "main", cwd=repo, PATH=gh.path)
    assert (failed["code"], failed["message"]) == (
        "api_error",
        "Failed to set GitHub secrets via gh CLI.",
    )
    assert any(call.startswith("secret set FASTAPI_CLOUD_TOKEN") for call in gh.calls())
    names = [
        t["name"]
        for t in run_json(cli, "cloud", "tokens", "list", "--app-id", app_id)["data"]["tokens"]
    ]
    assert any(n.startswith("GitHub Actions — example/cmds (") for n in names), names

    wrote = run_json(
        cli, "cloud", "ci", "setup", "--workflow-only", "--branch", "main", cwd=repo, PATH=gh.path
    )
    assert wrote["data"]["wrote_workflow"] is True
    printed = run(cli, "cloud", "ci", "print-workflow", "--branch", "main", cwd=repo, PATH=gh.path)
    assert (
        repo / ".github" / "workflows" / "deploy.yml"
    ).read_text().strip() == printed.stdout.strip()


# --- last: everything ran, and the platform stayed healthy ------------------------------------


def test_every_leaf_command_ran_in_every_mode(
    request: pytest.FixtureRequest, cloudlet: Cloudlet, server_log_start: int
) -> None:
    here = Path(__file__)
    selected = {
        getattr(item, "originalname", item.name)
        for item in request.session.items
        if item.path == here
    }
    defined = {name for name in globals() if name.startswith("test_")}
    if selected != defined:
        pytest.skip("only part of this module ran")
    assert len(LEAVES) == 45, sorted(LEAVES)
    missing = sorted(
        f"{leaf} ({mode})"
        for leaf, has_json in LEAVES.items()
        for mode in (("human", "json") if has_json else ("human",))
        if (leaf, mode) not in INVOKED
    )
    assert not missing, missing
    assert cloudlet.log_path is not None
    with open(cloudlet.log_path, "rb") as log:
        log.seek(server_log_start)
        server_log = log.read().decode(errors="replace")
    assert "Traceback" not in server_log, server_log[-6000:]
