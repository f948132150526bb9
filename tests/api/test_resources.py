"""Teams, apps, env vars, tokens, domains, integrations: shapes and rules from the contract."""

from __future__ import annotations

from pathlib import Path

import pytest

from .conftest import Api


def test_teams_list_and_get(api: Api) -> None:
    body = api.get("/teams/", params={"limit": 100, "skip": 0}).json()
    assert body["count"] == 1 and len(body["data"]) == 1
    team = body["data"][0]
    assert isinstance(team["id"], str) and team["slug"] and team["name"]
    assert api.get(f"/teams/{team['id']}").json()["id"] == team["id"]
    assert api.get("/teams/nope").status_code == 404
    providers = api.get(f"/teams/{team['id']}/integrations").json()["data"]
    assert all(p["status"] in ("available", "coming_soon", "connected") for p in providers)


def test_app_create_list_get_update(api: Api) -> None:
    app = api.create_app("My Shop")
    assert app["slug"] == "my-shop" and app["directory"] is None
    assert app["url"] == "http://my-shop.localhost:8080"
    dup = api.post("/apps/", json={"name": "My Shop", "team_id": app["team_id"]})
    assert dup.status_code == 409 and dup.json()["detail"] == "App name already taken"
    listed = api.get("/apps/", params={"team_id": app["team_id"], "limit": 100, "skip": 0}).json()
    assert listed["count"] == 1 and listed["data"][0]["id"] == app["id"]
    updated = api.patch(f"/apps/{app['id']}", json={"directory": "backend/"})
    assert updated.json()["directory"] == "backend"
    bad = api.patch(f"/apps/{app['id']}", json={"directory": "../etc"})
    assert bad.status_code == 422 and isinstance(bad.json()["detail"][0]["msg"], str)


def test_paging_keeps_count_total(api: Api) -> None:
    for n in range(3):
        api.create_app(f"app{n}")
    page = api.get("/apps/", params={"limit": 1, "skip": 1}).json()
    assert page["count"] == 3 and len(page["data"]) == 1


def test_no_redirects_on_slashes(api: Api) -> None:
    response = api.client.get("/api/v1/apps", headers=api.headers(), follow_redirects=False)
    assert response.status_code == 404  # never a 307 the CLI would choke on


def test_env_vars_secrets_never_returned(api: Api, platform: object) -> None:
    app = api.create_app()
    body = {
        "upsert": {
            "DEBUG": {"value": "1", "is_secret": False},
            "API_KEY": {"value": "s3cr3t", "is_secret": True},
        },
        "delete": [],
        "redeploy": False,
    }
    response = api.put(f"/apps/{app['id']}/environment-variables/", json=body)
    assert response.status_code == 200, response.text
    data = {v["name"]: v for v in response.json()["data"]}
    assert data["API_KEY"]["value"] is None and data["API_KEY"]["is_secret"] is True
    assert data["DEBUG"]["value"] == "1"
    assert "s3cr3t" not in api.get(f"/apps/{app['id']}/environment-variables/").text
    # An update keeps the secret status; deleting a missing name is fine.
    api.put(
        f"/apps/{app['id']}/environment-variables/",
        json={
            "upsert": {"API_KEY": {"value": "new", "is_secret": False}},
            "delete": ["NOPE"],
            "redeploy": False,
        },
    )
    listed = {
        v["name"]: v for v in api.get(f"/apps/{app['id']}/environment-variables/").json()["data"]
    }
    assert listed["API_KEY"]["is_secret"] is True


def test_env_vars_encrypted_at_rest(api: Api, platform: object) -> None:
    from cloudlet.control.platform import Platform

    assert isinstance(platform, Platform)
    app = api.create_app()
    api.put(
        f"/apps/{app['id']}/environment-variables/",
        json={
            "upsert": {"TOKEN": {"value": "plain-text-canary", "is_secret": True}},
            "redeploy": False,
        },
    )
    db = platform.settings.resolved_database_url
    if db.startswith("sqlite"):
        raw = Path(db.split("///", 1)[1]).read_bytes()
        wal = platform.settings.data_dir / "cloudlet.db-wal"
        raw += wal.read_bytes() if wal.exists() else b""
        assert b"plain-text-canary" not in raw


@pytest.mark.parametrize("name", ["1BAD", "with-dash", "PORT", "CLOUDLET_X", ""])
def test_env_var_names_validated(api: Api, name: str) -> None:
    app = api.create_app()
    response = api.put(
        f"/apps/{app['id']}/environment-variables/",
        json={"upsert": {name: {"value": "x"}}, "delete": [], "redeploy": False},
    )
    assert response.status_code == 422
    detail = response.json()["detail"]
    assert isinstance(detail, str) or isinstance(detail[0]["msg"], str)


def test_deploy_tokens(api: Api) -> None:
    app = api.create_app()
    created = api.post(f"/apps/{app['id']}/tokens", json={"name": "ci", "expires_in_days": 30})
    assert created.status_code == 201
    token = created.json()
    assert token["value"].startswith("fcp_") and token["expired_at"][:4].isdigit()
    listed = api.get(f"/apps/{app['id']}/tokens").json()["data"]
    assert [t["id"] for t in listed] == [token["id"]] and "value" not in listed[0]
    # What a deploy token may do (§2.1), and what it may not.
    assert api.get(f"/apps/{app['id']}", token=token["value"]).status_code == 200
    assert (
        api.post(
            f"/apps/{app['id']}/deployments/", json={"archive_size_bytes": 10}, token=token["value"]
        ).status_code
        == 201
    )
    assert api.get("/users/me", token=token["value"]).status_code == 403
    assert (
        api.get(f"/apps/{app['id']}/environment-variables/", token=token["value"]).status_code
        == 403
    )
    other = api.create_app("other")
    assert api.get(f"/apps/{other['id']}", token=token["value"]).status_code == 404
    assert api.delete(f"/apps/{app['id']}/tokens/{token['id']}").status_code == 204
    assert api.delete(f"/apps/{app['id']}/tokens/{token['id']}").status_code == 404
    assert api.get(f"/apps/{app['id']}", token=token["value"]).status_code == 401


def test_custom_domains(api: Api) -> None:
    app = api.create_app()
    created = api.post(
        f"/apps/{app['id']}/custom-domains",
        json={"name": "api.example.com", "is_using_pre_validation": False},
    )
    assert created.status_code == 201, created.text
    domain = created.json()
    keys = {
        "id",
        "name",
        "status",
        "setup_in_progress",
        "setup_failed",
        "setup_successful",
        "is_using_pre_validation",
        "dns_records",
        "created_at",
        "updated_at",
        "setup_started_at",
        "setup_checked_at",
        "app_id",
    }
    assert keys <= set(domain)
    assert any(r["type"] == "TXT" and "_fc-dcv" in r["name"] for r in domain["dns_records"])
    listed = api.get(f"/apps/{app['id']}/custom-domains").json()
    assert listed["count"] == 1
    again = api.post(f"/apps/{app['id']}/custom-domains", json={"name": "API.example.com."})
    assert again.status_code == 409
    restarted = api.post(f"/apps/{app['id']}/custom-domains/{domain['id']}/restart-setup")
    assert restarted.status_code == 200
    assert api.delete(f"/apps/{app['id']}/custom-domains/{domain['id']}").status_code == 204
    assert api.delete(f"/apps/{app['id']}/custom-domains/{domain['id']}").status_code == 404


def test_connected_resources_empty_and_404(api: Api) -> None:
    app = api.create_app()
    assert api.get(f"/apps/{app['id']}/connected-resources").json() == {"data": []}
    assert api.get(f"/apps/{app['id']}/connected-resources/x").status_code == 404


def test_cross_team_access_is_404_everywhere(api: Api, other_api: Api) -> None:
    app = api.create_app()
    team_id = app["team_id"]
    deployment = api.post(f"/apps/{app['id']}/deployments/", json={"archive_size_bytes": 1}).json()
    a, d = app["id"], deployment["id"]
    paths = [
        ("get", f"/teams/{team_id}"),
        ("get", f"/teams/{team_id}/integrations"),
        ("get", f"/apps/?team_id={team_id}"),
        ("get", f"/apps/{a}"),
        ("patch", f"/apps/{a}"),
        ("get", f"/apps/{a}/deployments/"),
        ("post", f"/apps/{a}/deployments/"),
        ("get", f"/deployments/{d}"),
        ("post", f"/deployments/{d}/upload"),
        ("post", f"/deployments/{d}/upload-complete"),
        ("post", f"/deployments/{d}/upload-cancelled"),
        ("get", f"/deployments/{d}/build-logs"),
        ("get", f"/apps/{a}/logs/stream?follow=false"),
        ("get", f"/apps/{a}/environment-variables/"),
        ("put", f"/apps/{a}/environment-variables/"),
        ("get", f"/apps/{a}/tokens"),
        ("post", f"/apps/{a}/tokens"),
        ("delete", f"/apps/{a}/tokens/x"),
        ("get", f"/apps/{a}/custom-domains"),
        ("post", f"/apps/{a}/custom-domains"),
        ("get", f"/apps/{a}/connected-resources"),
    ]
    bodies = {
        "patch": {"directory": None},
        "post": {"name": "x.example.com", "archive_size_bytes": 1, "expires_in_days": 1},
        "put": {"upsert": {}},
    }
    for method, path in paths:
        kwargs = {"json": bodies[method]} if method in bodies else {}
        response = getattr(other_api, method)(path, **kwargs)
        assert response.status_code == 404, (method, path, response.status_code, response.text)
    listed = other_api.get("/apps/").json()
    assert listed["count"] == 0
