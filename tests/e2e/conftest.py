"""A real `cloudlet up` in a temporary data dir, driven by the real `fastapi` CLI."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import re
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest

from ..conftest import POSTGRES_URL, create_database, drop_database

APPS = Path(__file__).resolve().parent.parent / "apps"
BIN = Path(sys.executable).parent
ADMIN_EMAIL = "e2e@example.com"
ADMIN_TOKEN = "clt_e2e_admin_token_0123456789abcdef"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class Cloudlet:
    data_dir: Path
    api_port: int
    router_port: int
    database_url: str | None = None
    process: subprocess.Popen[bytes] | None = None
    log_path: Path | None = None
    config_dir: Path = field(default_factory=lambda: Path(tempfile.mkdtemp(prefix="fcc-")))

    @property
    def api(self) -> str:
        return f"http://127.0.0.1:{self.api_port}"

    def start(self, extra_env: dict[str, str] | None = None) -> None:
        env = {
            **os.environ,
            "CLOUDLET_DATA_DIR": str(self.data_dir),
            "CLOUDLET_API_PORT": str(self.api_port),
            "CLOUDLET_ROUTER_PORT": str(self.router_port),
            "CLOUDLET_ADMIN_EMAIL": ADMIN_EMAIL,
            "CLOUDLET_ADMIN_TOKEN": ADMIN_TOKEN,
            "CLOUDLET_DRAIN_S": "5",
            # Custom-domain checks ask a dead loopback resolver: tests stay on 127.0.0.1.
            "CLOUDLET_DNS_NAMESERVERS": '["127.0.0.1:9"]',
            **({"CLOUDLET_DATABASE_URL": self.database_url} if self.database_url else {}),
            # Builds share one uv cache across test runs, as they would across deploys.
            "CLOUDLET_UV_CACHE": str(Path.home() / ".cache" / "cloudlet-tests" / "uv"),
            **(extra_env or {}),
        }
        self.log_path = self.data_dir.parent / "cloudlet.log"
        log = open(self.log_path, "ab")  # noqa: SIM115
        self.process = subprocess.Popen(
            [str(BIN / "cloudlet"), "up"], env=env, stdout=log, stderr=subprocess.STDOUT
        )
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            assert self.process.poll() is None, self.output()
            try:
                r = httpx.get(f"{self.api}/api/v1/users/me", headers=self.admin, timeout=2)
                if r.status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            time.sleep(0.2)
        else:
            raise AssertionError("cloudlet up did not answer:\n" + self.output())
        (self.config_dir / "cli.json").write_text(
            json.dumps({"base_api_url": f"{self.api}/api/v1", "dashboard_base_url": self.api})
        )

    def stop(self, sig: int = signal.SIGINT) -> None:
        if self.process and self.process.poll() is None:
            self.process.send_signal(sig)
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()

    def output(self) -> str:
        return self.log_path.read_text(errors="replace")[-6000:] if self.log_path else ""

    @property
    def admin(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {ADMIN_TOKEN}"}

    def cli_env(self, **extra: str) -> dict[str, str]:
        # The CLI's own environment only: no update check, its outbound HTTPS to a dead proxy.
        env = {
            k: v for k, v in os.environ.items() if not k.startswith(("FASTAPI_CLOUD", "CLOUDLET_"))
        }
        env.update(
            FASTAPI_CLOUD_CLI_CONFIG_DIR=str(self.config_dir),
            FASTAPI_CLOUD_DISABLE_VERSION_CHECK="1",
            HTTPS_PROXY="http://127.0.0.1:9",
            HTTP_PROXY="http://127.0.0.1:9",
            NO_PROXY="127.0.0.1,localhost,.localhost",
            COLUMNS="200",
            TERM="dumb",
            NO_COLOR="1",
        )
        env.update(extra)
        return env

    def fastapi(
        self,
        *args: str,
        cwd: Path | None = None,
        timeout: float = 600,
        input: str | None = None,
        **env: str,
    ) -> subprocess.CompletedProcess[str]:
        """Run the CLI; stdin is empty unless `input` is given."""
        return subprocess.run(
            [str(BIN / "fastapi"), *args],
            cwd=cwd,
            env=self.cli_env(**env),
            capture_output=True,
            text=True,
            timeout=timeout,
            input=input,
            stdin=subprocess.DEVNULL if input is None else None,
        )

    def app_get(self, slug: str, path: str = "/", **kw: Any) -> httpx.Response:
        return httpx.get(
            f"http://127.0.0.1:{self.router_port}{path}",
            headers={"Host": f"{slug}.localhost:{self.router_port}"},
            timeout=30,
            **kw,
        )

    def new_app(self, name: str) -> tuple[dict[str, str], str]:
        """An app and a deploy token for it, made through the API as an admin would."""
        api = f"{self.api}/api/v1"
        app = httpx.post(
            f"{api}/apps/", json={"name": name, "team_id": self.team_id()}, headers=self.admin
        ).json()
        token = httpx.post(
            f"{api}/apps/{app['id']}/tokens",
            json={"name": "ci", "expires_in_days": 1},
            headers=self.admin,
        ).json()["value"]
        return app, token

    def team_id(self) -> str:
        r = httpx.get(f"{self.api}/api/v1/teams/", headers=self.admin)
        return str(r.json()["data"][0]["id"])


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Modules marked `store_independent` test the CLI contract, builds and the runtime, not the
    store: they run on SQLite only, which keeps the suite inside its time budget."""
    keep, drop = [], []
    for item in items:
        callspec = getattr(item, "callspec", None)
        on_postgres = callspec is not None and callspec.params.get("store_kind") == "postgres"
        if on_postgres and item.get_closest_marker("store_independent"):
            drop.append(item)
        else:
            keep.append(item)
    if drop:
        config.hook.pytest_deselected(items=drop)
        items[:] = keep


@pytest.fixture(scope="session", params=["sqlite", "postgres"])
def store_kind(request: pytest.FixtureRequest) -> str:
    """Every end-to-end test runs once on SQLite (the default) and once on PostgreSQL."""
    if request.param == "postgres" and not POSTGRES_URL:
        pytest.skip("CLOUDLET_TEST_POSTGRES_URL is not set (CI always sets it)")
    return str(request.param)


@contextlib.contextmanager
def fresh_store(kind: str) -> Iterator[str | None]:
    """A database URL of its own for one platform (None: SQLite in its data dir)."""
    if kind == "sqlite":
        yield None
        return
    assert POSTGRES_URL
    name = f"cloudlet_e2e_{secrets.token_hex(6)}"
    asyncio.run(create_database(POSTGRES_URL, name))
    try:
        yield f"{POSTGRES_URL.rsplit('/', 1)[0]}/{name}"
    finally:
        asyncio.run(drop_database(POSTGRES_URL, name))


@contextlib.contextmanager
def running_cloudlet(kind: str, prefix: str) -> Iterator[Cloudlet]:
    root = Path(tempfile.mkdtemp(prefix=prefix, dir="/tmp"))
    with fresh_store(kind) as url:
        instance = Cloudlet(root / "data", free_port(), free_port(), database_url=url)
        instance.start()
        try:
            yield instance
        finally:
            instance.stop()
            shutil.rmtree(root, ignore_errors=True)
            shutil.rmtree(instance.config_dir, ignore_errors=True)


@pytest.fixture(scope="session")
def cloudlet(store_kind: str) -> Iterator[Cloudlet]:
    with running_cloudlet(store_kind, "cle2e-") as instance:
        yield instance


def approve_device(cloudlet: Cloudlet, user_code: str, approve: bool = True) -> None:
    """Answer a device login as the admin would in the dashboard, through the API."""
    r = httpx.post(
        f"{cloudlet.api}/api/v1/login/device/approve",
        json={"user_code": user_code, "approve": approve},
        headers=cloudlet.admin,
    )
    assert r.status_code == 200, r.text


def login(cloudlet: Cloudlet, *command: str) -> str:
    """Interactive device login (`fastapi login --no-open` unless `command` says otherwise),
    approved as the admin; returns the CLI's output."""
    process = subprocess.Popen(
        [str(BIN / "fastapi"), *(command or ("login", "--no-open"))],
        env=cloudlet.cli_env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    assert process.stdout is not None
    code = None
    seen = []
    for line in process.stdout:
        seen.append(line)
        match = re.search(r"/device\?code=([A-Z]{4}-[A-Z]{4})", line)
        if match:
            code = match.group(1)
            break
    assert code, "".join(seen)
    approve_device(cloudlet, code)
    rest, _ = process.communicate(timeout=60)
    assert process.returncode == 0, "".join(seen) + rest
    assert "logged in" in rest
    return "".join(seen) + rest


def copy_app(name: str, tmp_path: Path) -> Path:
    target = tmp_path / name
    shutil.copytree(APPS / name, target)
    return target
