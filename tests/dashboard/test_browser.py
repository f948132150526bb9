"""The dashboard in a real Chromium: device approval, and live build logs through htmx."""

from __future__ import annotations

import asyncio
import socket
import threading
import time
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import httpx
import pytest
import uvicorn
from sqlalchemy import update

from cloudlet.api.app import create_app
from cloudlet.control.platform import Platform
from cloudlet.settings import Settings
from cloudlet.store.models import BuildLogLine, Deployment

from .conftest import ADMIN_EMAIL, ADMIN_TOKEN

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
GRANT = "urn:ietf:params:oauth:grant-type:device_code"
T = TypeVar("T")

pytestmark = pytest.mark.skipif(
    not CHROMIUM.exists(), reason="no /usr/bin/chromium (apt-get install -y chromium)"
)


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


@pytest.fixture
def server(short_tmp: Path) -> Iterator[Server]:
    settings = Settings(
        data_dir=short_tmp,
        admin_email=ADMIN_EMAIL,
        admin_token=ADMIN_TOKEN,
        build_workers=0,
        api_host="127.0.0.1",
    )
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


@pytest.fixture
def console_errors() -> list[str]:
    return []


@pytest.fixture
def page(console_errors: list[str]) -> Iterator[Any]:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        context = browser.new_context(viewport={"width": 1100, "height": 800})
        page = context.new_page()
        page.on("console", lambda m: console_errors.append(m.text) if m.type == "error" else None)
        page.on("pageerror", lambda e: console_errors.append(str(e)))
        try:
            yield page
        finally:
            context.close()
            browser.close()


def screenshot(page: Any, path: Path) -> None:
    """A full-page screenshot. Headless Chromium now and then has no frame to capture yet
    ("Unable to capture screenshot"): try again a few times before giving up."""
    from playwright.sync_api import Error

    for attempt in range(5):
        try:
            page.screenshot(path=str(path), full_page=True)
            return
        except Error as exc:
            if "Unable to capture screenshot" not in str(exc) or attempt == 4:
                raise
            page.wait_for_timeout(250)


def sign_in(page: Any) -> None:
    assert "/login" in page.url
    page.fill("#token", ADMIN_TOKEN)
    page.click("button[type=submit]:has-text('Sign in')")


def test_approve_device_login_in_a_browser(
    server: Server, page: Any, console_errors: list[str], tmp_path: Path
) -> None:
    from playwright.sync_api import expect

    auth = httpx.post(
        f"{server.base}/api/v1/login/device/authorization", data={"client_id": "fastapi-cli"}
    ).json()
    page.goto(auth["verification_uri_complete"])
    sign_in(page)

    # Back on the approval page, signed in.
    expect(page.locator(".user-code")).to_have_text(auth["user_code"])
    expect(page.get_by_text("fastapi-cli", exact=True)).to_be_visible()
    screenshot(page, tmp_path / "device-confirm.png")
    page.get_by_role("button", name="Approve").click()

    expect(page.get_by_text("You can go back to your terminal.")).to_be_visible()
    expect(page.locator("h1 .badge")).to_have_text("Approved")
    screenshot(page, tmp_path / "device-approved.png")

    token = httpx.post(
        f"{server.base}/api/v1/login/device/token",
        data={"device_code": auth["device_code"], "client_id": "fastapi-cli", "grant_type": GRANT},
    )
    assert token.status_code == 200 and token.json()["access_token"]
    assert console_errors == []  # CSP and htmx are happy: nothing blocked, no errors
    print(f"screenshots in {tmp_path}")


def test_build_log_updates_live(
    server: Server, page: Any, console_errors: list[str], tmp_path: Path
) -> None:
    from playwright.sync_api import expect

    headers = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
    team = httpx.get(f"{server.base}/api/v1/teams/", headers=headers).json()["data"][0]
    app = httpx.post(
        f"{server.base}/api/v1/apps/", headers=headers, json={"name": "shop", "team_id": team["id"]}
    ).json()

    async def add_deployment() -> str:
        async with server.platform.sessions() as session:
            deployment = Deployment(app_id=app["id"], slug="d", status="building")
            session.add(deployment)
            await session.flush()
            session.add(BuildLogLine(deployment_id=deployment.id, seq=1, message="Installing"))
            await session.commit()
            return deployment.id

    deployment_id = server.run(add_deployment)
    page.goto(f"{server.base}/{team['slug']}/apps/{app['slug']}/deployments/{deployment_id}")
    sign_in(page)
    expect(page.locator("#build-log .ln")).to_have_count(1)
    expect(page.locator("#deployment-status .badge")).to_have_text("Building")

    async def fail_build() -> None:
        async with server.platform.sessions() as session:
            session.add(
                BuildLogLine(
                    deployment_id=deployment_id, seq=2, message="\x1b[31merror\x1b[0m: no app"
                )
            )
            await session.execute(
                update(Deployment)
                .where(Deployment.id == deployment_id)
                .values(
                    status="building_image_failed",
                    failure_code="no_app",
                    failure_title="No FastAPI app found",
                    failure_message="Nothing creates FastAPI().",
                    failure_hint="Set [tool.fastapi] entrypoint.",
                )
            )
            await session.commit()

    server.run(fail_build)
    # htmx polls every 2 s: the new line and the failure appear without a reload.
    expect(page.locator("#build-log .ln")).to_have_count(2, timeout=30_000)
    expect(page.locator("#deployment-status .badge")).to_have_text("Build Failed")
    expect(page.get_by_text("No FastAPI app found")).to_be_visible()
    expect(page.locator("#build-log .a-fg1")).to_have_text("error")
    expect(page.locator("#deployment-poller[hx-get]")).to_have_count(0)  # polling stopped
    screenshot(page, tmp_path / "deployment-failed.png")
    assert console_errors == []
