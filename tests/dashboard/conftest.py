"""A real control plane (Platform + create_app) driven like a browser: cookies and forms."""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable, Iterator, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeVar

import pytest
from fastapi.testclient import TestClient

from cloudlet.api.app import create_app
from cloudlet.api.login import issue_user_token
from cloudlet.control.platform import Platform, ensure_personal_team
from cloudlet.store.models import BuildLogLine, Deployment, User

from ..conftest import ADMIN_EMAIL, ADMIN_TOKEN, test_settings

BASE = "http://127.0.0.1:8000"
T = TypeVar("T")

__all__ = ["ADMIN_EMAIL", "ADMIN_TOKEN", "BASE", "Browser"]


class Browser:
    """A TestClient used the way a browser uses the dashboard: cookies, forms, redirects."""

    def __init__(self, client: TestClient, platform: Platform) -> None:
        self.client = client
        self.platform = platform

    def run(self, fn: Callable[[], Awaitable[T]]) -> T:
        assert self.client.portal is not None
        return self.client.portal.call(fn)

    def api(self, method: str, path: str, token: str = ADMIN_TOKEN, **kw: Any) -> Any:
        headers = {"Authorization": f"Bearer {token}"}
        return self.client.request(method, f"/api/v1{path}", headers=headers, **kw)

    def sign_in(self, token: str = ADMIN_TOKEN, next_url: str = "/") -> Any:
        form = self.client.get("/login", params={"next": next_url})
        assert form.status_code == 200, form.text
        return self.client.post(
            "/login",
            data={"token": token, "next": next_url, "csrf": hidden(form.text, "csrf")},
            follow_redirects=False,
        )

    def team_slug(self, token: str = ADMIN_TOKEN) -> str:
        return str(self.api("GET", "/teams/", token=token).json()["data"][0]["slug"])

    def create_app(self, name: str = "shop", token: str = ADMIN_TOKEN) -> dict[str, Any]:
        team_id = self.api("GET", "/teams/", token=token).json()["data"][0]["id"]
        response = self.api("POST", "/apps/", token=token, json={"name": name, "team_id": team_id})
        assert response.status_code == 201, response.text
        return dict(response.json())

    def add_deployment(
        self,
        app_id: str,
        status: str,
        lines: Sequence[str] = (),
        **failure: str,
    ) -> str:
        async def add() -> str:
            async with self.platform.sessions() as session:
                deployment = Deployment(app_id=app_id, slug="d", status=status, **failure)
                session.add(deployment)
                await session.flush()
                for seq, message in enumerate(lines, start=1):
                    session.add(BuildLogLine(deployment_id=deployment.id, seq=seq, message=message))
                await session.commit()
                return deployment.id

        return self.run(add)

    def new_user(self, email: str) -> str:
        """A user with a personal team of their own; returns a user token."""

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


def hidden(html: str, name: str) -> str:
    """The value of a hidden form field."""
    match = re.search(rf'<input type="hidden" name="{name}" value="([^"]*)"', html)
    assert match, f"no hidden field {name!r} in page"
    return match.group(1)


def now() -> datetime:
    return datetime.now(UTC)


@pytest.fixture
def platform(database_url: str, short_tmp: Path) -> Platform:
    settings = test_settings(short_tmp, database_url)
    return Platform(settings)


@pytest.fixture
def client(platform: Platform) -> Iterator[TestClient]:
    with TestClient(create_app(platform), base_url=BASE) as client:
        yield client


@pytest.fixture
def browser(client: TestClient, platform: Platform) -> Browser:
    return Browser(client, platform)
