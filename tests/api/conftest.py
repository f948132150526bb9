from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from cloudlet.api.app import create_app
from cloudlet.api.login import issue_user_token
from cloudlet.control.platform import Platform, ensure_personal_team
from cloudlet.store.models import User

from ..conftest import ADMIN_TOKEN, test_settings


class Api:
    """A TestClient bound to one user's token, with the contract's paths as helpers."""

    def __init__(self, client: TestClient, token: str) -> None:
        self.client = client
        self.token = token

    def headers(self, token: str | None = None) -> dict[str, str]:
        return {"Authorization": f"Bearer {token or self.token}"}

    def get(self, path: str, **kw: Any) -> Any:
        return self.client.get(f"/api/v1{path}", headers=self.headers(kw.pop("token", None)), **kw)

    def post(self, path: str, **kw: Any) -> Any:
        return self.client.post(f"/api/v1{path}", headers=self.headers(kw.pop("token", None)), **kw)

    def put(self, path: str, **kw: Any) -> Any:
        return self.client.put(f"/api/v1{path}", headers=self.headers(kw.pop("token", None)), **kw)

    def patch(self, path: str, **kw: Any) -> Any:
        return self.client.patch(
            f"/api/v1{path}", headers=self.headers(kw.pop("token", None)), **kw
        )

    def delete(self, path: str, **kw: Any) -> Any:
        return self.client.delete(
            f"/api/v1{path}", headers=self.headers(kw.pop("token", None)), **kw
        )

    def team_id(self) -> str:
        return str(self.get("/teams/").json()["data"][0]["id"])

    def create_app(self, name: str = "shop") -> dict[str, Any]:
        response = self.post(
            "/apps/", json={"name": name, "team_id": self.team_id(), "directory": None}
        )
        assert response.status_code == 201, response.text
        return dict(response.json())


@pytest.fixture
def platform(tmp_path: Path, database_url: str, short_tmp: Path) -> Platform:
    settings = test_settings(short_tmp, database_url)
    return Platform(settings)


@pytest.fixture
def client(platform: Platform) -> Iterator[TestClient]:
    with TestClient(create_app(platform), base_url="http://127.0.0.1:8000") as client:
        yield client


@pytest.fixture
def api(client: TestClient) -> Api:
    return Api(client, ADMIN_TOKEN)


@pytest.fixture
def other_api(client: TestClient, platform: Platform) -> Api:
    """A second user in a team of their own."""

    async def make() -> str:
        async with platform.sessions() as session:
            user = User(email="eve@example.com")
            session.add(user)
            await session.flush()
            await ensure_personal_team(session, user)
            value, _ = await issue_user_token(session, user, "test", 1)
            await session.commit()
            return value

    assert client.portal is not None
    return Api(client, client.portal.call(make))
