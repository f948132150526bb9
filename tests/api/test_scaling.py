"""Per-app scaling settings and team limits: the API, its rules, and the store migration."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from typing import Any

import pytest
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import bindparam, text
from sqlalchemy.engine import Connection

from cloudlet.control.platform import Platform
from cloudlet.scaling import DEFAULT, Scaling, TeamLimits, limits_of, scaling_of
from cloudlet.store.db import alembic_config, create_engine, migrate
from cloudlet.store.models import App, Base, Team, UTCDateTime

from .conftest import Api

DEFAULT_BODY = {
    "min_instances": 0,
    "max_instances": 4,
    "target_concurrency": 100,
    "scale_to_zero_after_s": 300,
    "capacity_share": 1.0,
    "admission_limit": 400,
    "instances": 0,
    "state": "not_deployed",
}


@pytest.fixture
def changed(platform: Platform, monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The app ids `Platform.scaling_changed` was told about, in order."""
    calls: list[str] = []

    async def record(app_id: str) -> None:
        calls.append(app_id)

    monkeypatch.setattr(platform, "scaling_changed", record)
    return calls


def call(api: Api, coro_fn: Any) -> Any:
    assert api.client.portal is not None
    return api.client.portal.call(coro_fn)


# -- the shared vocabulary -------------------------------------------------------------------


def test_admission_limit() -> None:
    assert DEFAULT.admission_limit == 400
    beta = Scaling(
        min_instances=0,
        max_instances=4,
        target_concurrency=100,
        scale_to_zero_after_s=300,
        capacity_share=0.7,
    )
    assert beta.admission_limit == 280
    # Float noise does not cost a request (0.29 * 100 is 28.999... in binary floating point).
    assert Scaling(0, 1, 100, 300, 0.29).admission_limit == 29
    # Floored, and never below one request.
    assert Scaling(0, 1, 3, 300, 0.5).admission_limit == 1
    assert Scaling(0, 1, 1, 300, 0.01).admission_limit == 1


def test_scaling_of_a_new_row_has_the_defaults() -> None:
    assert scaling_of(App(team_id="t", slug="s", name="n")) == DEFAULT
    assert limits_of(Team(slug="t", name="t")) == TeamLimits(None, None)


# -- app scaling -----------------------------------------------------------------------------


def test_get_defaults(api: Api) -> None:
    app = api.create_app()
    response = api.get(f"/apps/{app['id']}/scaling")
    assert response.status_code == 200, response.text
    assert response.json() == {"app_id": app["id"], **DEFAULT_BODY}


def test_patch_partial(api: Api, changed: list[str]) -> None:
    app = api.create_app()
    path = f"/apps/{app['id']}/scaling"
    response = api.patch(path, json={"capacity_share": 0.7})
    assert response.status_code == 200, response.text
    assert response.json() == {
        "app_id": app["id"],
        **DEFAULT_BODY,
        "capacity_share": 0.7,
        "admission_limit": 280,
    }
    assert changed == [app["id"]]
    response = api.patch(
        path, json={"min_instances": 1, "max_instances": 10, "scale_to_zero_after_s": 60}
    )
    body = response.json()
    assert response.status_code == 200, response.text
    assert (body["min_instances"], body["max_instances"], body["scale_to_zero_after_s"]) == (
        1,
        10,
        60,
    )
    assert body["capacity_share"] == 0.7 and body["target_concurrency"] == 100
    assert body["admission_limit"] == 700
    assert api.get(path).json() == body
    # An empty PATCH changes nothing; an integral capacity_share is fine.
    assert api.patch(path, json={}).json() == body
    assert api.patch(path, json={"capacity_share": 1}).json()["capacity_share"] == 1.0
    assert changed == [app["id"]] * 4


def test_settings_are_stored(api: Api, platform: Platform) -> None:
    app = api.create_app()
    api.patch(f"/apps/{app['id']}/scaling", json={"target_concurrency": 8, "max_instances": 2})

    async def read() -> Scaling:
        async with platform.sessions() as session:
            row = await session.get(App, app["id"])
            assert row is not None
            return scaling_of(row)

    assert call(api, read) == Scaling(0, 2, 8, 300, 1.0)


@pytest.mark.parametrize(
    "body",
    [
        {"min_instances": -1},
        {"min_instances": 101},
        {"max_instances": 0},
        {"max_instances": 101},
        {"target_concurrency": 0},
        {"target_concurrency": 10_001},
        {"scale_to_zero_after_s": 0},
        {"scale_to_zero_after_s": 86_401},
        {"capacity_share": 0},
        {"capacity_share": -0.5},
        {"capacity_share": 1.01},
        # wrong types: nothing is coerced
        {"max_instances": "5"},
        {"max_instances": 2.5},
        {"max_instances": True},
        {"capacity_share": "0.5"},
        {"capacity_share": True},
        {"min_instances": None},
        {"min": 1},
    ],
)
def test_patch_rejects(api: Api, changed: list[str], body: dict[str, Any]) -> None:
    app = api.create_app()
    response = api.patch(f"/apps/{app['id']}/scaling", json=body)
    assert response.status_code == 422, response.text
    detail = response.json()["detail"]
    # The contract's list form: the CLI shows detail[0].msg, which names the field.
    assert isinstance(detail, list) and isinstance(detail[0]["msg"], str)
    assert detail[0]["msg"].startswith(next(iter(body))), detail
    assert api.get(f"/apps/{app['id']}/scaling").json()["max_instances"] == 4
    assert changed == []


@pytest.mark.parametrize("body", [[], "x", None])
def test_patch_rejects_a_body_that_is_not_an_object(api: Api, body: Any) -> None:
    app = api.create_app()
    response = api.patch(f"/apps/{app['id']}/scaling", json=body)
    assert response.status_code == 422, response.text
    assert isinstance(response.json()["detail"][0]["msg"], str)


def test_min_above_max_after_merge(api: Api, changed: list[str]) -> None:
    app = api.create_app()
    path = f"/apps/{app['id']}/scaling"
    # max is 4 by default: 5 is within min's own bounds but not below the stored max.
    response = api.patch(path, json={"min_instances": 5})
    assert response.status_code == 422, response.text
    msg = response.json()["detail"][0]["msg"]
    assert msg.startswith("min_instances:") and "max_instances" in msg
    assert api.patch(path, json={"min_instances": 5, "max_instances": 5}).status_code == 200
    response = api.patch(path, json={"max_instances": 3})
    assert response.status_code == 422 and "max_instances" in response.json()["detail"][0]["msg"]
    response = api.patch(path, json={"min_instances": 7, "max_instances": 6})
    assert response.status_code == 422
    body = api.get(path).json()
    assert (body["min_instances"], body["max_instances"]) == (5, 5)
    assert changed == [app["id"]]


def test_state_and_instances(api: Api, platform: Platform, monkeypatch: pytest.MonkeyPatch) -> None:
    app = api.create_app()
    ready: dict[str, list[object]] = {}
    prepared: set[str] = {"rev1"}
    monkeypatch.setattr(platform.runtime, "instances", lambda rev: ready.get(rev, []))
    monkeypatch.setattr(platform.runtime, "is_prepared", lambda rev: rev in prepared)

    async def go_live() -> None:
        async with platform.sessions() as session:
            row = await session.get(App, app["id"])
            assert row is not None
            row.live_deployment_id = "rev1"
            await session.commit()

    call(api, go_live)
    body = api.get(f"/apps/{app['id']}/scaling").json()
    assert (body["state"], body["instances"]) == ("scaled_to_zero", 0)
    prepared.clear()  # the zygote went too
    body = api.get(f"/apps/{app['id']}/scaling").json()
    assert (body["state"], body["instances"]) == ("stopped", 0)
    ready["rev1"] = [object(), object()]  # only counted
    body = api.get(f"/apps/{app['id']}/scaling").json()
    assert (body["state"], body["instances"]) == ("running", 2)


def test_other_teams_app_is_not_found(api: Api, other_api: Api, changed: list[str]) -> None:
    app = api.create_app()
    path = f"/apps/{app['id']}/scaling"
    assert other_api.get(path).status_code == 404
    response = other_api.patch(path, json={"max_instances": 1})
    assert response.status_code == 404 and response.json() == {"detail": "App not found."}
    assert api.get("/apps/nope/scaling").status_code == 404
    assert api.patch("/apps/nope/scaling", json={}).status_code == 404
    assert api.get(path).json()["max_instances"] == 4
    assert changed == []


def test_deploy_tokens(api: Api, changed: list[str]) -> None:
    app = api.create_app()
    other = api.create_app("other")
    created = api.post(f"/apps/{app['id']}/tokens", json={"name": "ci", "expires_in_days": 30})
    token = created.json()["value"]
    # Its own app: read and change.
    assert api.get(f"/apps/{app['id']}/scaling", token=token).status_code == 200
    response = api.patch(f"/apps/{app['id']}/scaling", json={"max_instances": 2}, token=token)
    assert response.status_code == 200 and response.json()["max_instances"] == 2
    # Any other app, even of the same team, is not found (like GET /apps/{id}).
    assert api.get(f"/apps/{other['id']}", token=token).status_code == 404
    assert api.get(f"/apps/{other['id']}/scaling", token=token).status_code == 404
    response = api.patch(f"/apps/{other['id']}/scaling", json={"max_instances": 2}, token=token)
    assert response.status_code == 404
    # Team limits are for users.
    response = api.get(f"/teams/{app['team_id']}/limits", token=token)
    assert response.status_code == 403 and isinstance(response.json()["detail"], str)
    assert changed == [app["id"]]


def test_unauthenticated(api: Api) -> None:
    app = api.create_app()
    assert api.client.get(f"/api/v1/apps/{app['id']}/scaling").status_code == 401
    assert api.get(f"/apps/{app['id']}/scaling", token="clt_wrong").status_code == 401


def test_no_redirect_on_trailing_slash(api: Api) -> None:
    app = api.create_app()
    response = api.client.get(
        f"/api/v1/apps/{app['id']}/scaling/", headers=api.headers(), follow_redirects=False
    )
    assert response.status_code == 404


# -- team limits -----------------------------------------------------------------------------


def test_team_limits_admin(api: Api, other_api: Api, changed: list[str]) -> None:
    first, second = api.create_app("one"), api.create_app("two")
    team_id = first["team_id"]
    path = f"/teams/{team_id}/limits"
    assert api.get(path).json() == {
        "team_id": team_id,
        "max_instances": None,
        "max_memory_mb": None,
    }
    response = api.patch(path, json={"max_instances": 6, "max_memory_mb": 2048})
    assert response.status_code == 200, response.text
    assert response.json() == {"team_id": team_id, "max_instances": 6, "max_memory_mb": 2048}
    assert sorted(changed) == sorted([first["id"], second["id"]])
    # Partial: null removes one cap, the other stays.
    response = api.patch(path, json={"max_memory_mb": None})
    assert response.json() == {"team_id": team_id, "max_instances": 6, "max_memory_mb": None}
    assert api.get(path).json() == response.json()
    # An administrator may set the limits of a team they are not a member of.
    other_team = other_api.team_id()
    response = api.patch(f"/teams/{other_team}/limits", json={"max_instances": 1})
    assert response.status_code == 200 and response.json()["max_instances"] == 1
    assert other_api.get(f"/teams/{other_team}/limits").json()["max_instances"] == 1
    assert api.patch("/teams/nope/limits", json={}).status_code == 404


@pytest.mark.parametrize(
    "body",
    [
        {"max_instances": 0},
        {"max_memory_mb": -1},
        {"max_instances": "2"},
        {"max_memory_mb": 1.5},
        {"max_instances": 2**31},
        {"cpu": 1},
    ],
)
def test_team_limits_rejects(api: Api, body: dict[str, Any]) -> None:
    response = api.patch(f"/teams/{api.team_id()}/limits", json=body)
    assert response.status_code == 422, response.text
    assert response.json()["detail"][0]["msg"].startswith(next(iter(body)))


def test_team_limits_non_admin(api: Api, other_api: Api, changed: list[str]) -> None:
    own = other_api.team_id()
    other_api.create_app("mine")
    # Members read their team's limits; they may not change them, not even their own team's.
    assert other_api.get(f"/teams/{own}/limits").status_code == 200
    response = other_api.patch(f"/teams/{own}/limits", json={"max_instances": 100})
    assert response.status_code == 403
    assert response.json() == {"detail": "Only administrators can change a team's limits."}
    assert other_api.get(f"/teams/{own}/limits").json()["max_instances"] is None
    # Another team is not found for reading, and forbidden for changing.
    assert other_api.get(f"/teams/{api.team_id()}/limits").status_code == 404
    response = other_api.patch(f"/teams/{api.team_id()}/limits", json={"max_instances": 1})
    assert response.status_code == 403
    assert changed == []


# -- the store -------------------------------------------------------------------------------


def test_migration_from_0001_gives_existing_rows_the_defaults(database_url: str) -> None:
    async def run() -> None:
        engine = create_engine(database_url)
        try:

            def to(revision: str) -> Any:
                def step(connection: Connection) -> None:
                    config = alembic_config()
                    config.attributes["connection"] = connection
                    if revision == "0001" and connection.dialect.has_table(connection, "apps"):
                        command.downgrade(config, revision)
                    else:
                        command.upgrade(config, revision)

                return step

            async with engine.begin() as connection:
                await connection.run_sync(to("0001"))
                now = datetime(2026, 11, 25, 12, tzinfo=UTC)
                await connection.execute(
                    text(
                        "INSERT INTO teams (id, slug, name, is_personal, created_at) "
                        "VALUES ('t1', 'team', 'Team', false, :now)"
                    ).bindparams(bindparam("now", now, type_=UTCDateTime))
                )
                await connection.execute(
                    text(
                        "INSERT INTO apps (id, team_id, slug, name, created_at, updated_at) "
                        "VALUES ('a1', 't1', 'shop', 'Shop', :now, :now)"
                    ).bindparams(bindparam("now", now, type_=UTCDateTime))
                )
                await connection.execute(
                    text(
                        "INSERT INTO deployments (id, app_id, slug, status, archive_size_bytes,"
                        " uploaded, created_at, updated_at) "
                        "VALUES ('d1', 'a1', 'd1', 'success', 0, true, :now, :now)"
                    ).bindparams(bindparam("now", now, type_=UTCDateTime))
                )
            await migrate(engine)
            async with engine.connect() as connection:
                app = (
                    await connection.execute(
                        text(
                            "SELECT min_instances, max_instances, target_concurrency, "
                            "scale_to_zero_after_s, capacity_share FROM apps WHERE id = 'a1'"
                        )
                    )
                ).one()
                assert tuple(app) == (0, 4, 100, 300, 1.0)
                team = (
                    await connection.execute(
                        text("SELECT max_instances, max_memory_mb FROM teams WHERE id = 't1'")
                    )
                ).one()
                assert tuple(team) == (None, None)
                # Adding columns rebuilt nothing: the app's deployments are still there.
                count = await connection.scalar(text("SELECT count(*) FROM deployments"))
                assert count == 1

                # The models and the migrations describe the same schema.
                def diff(sync: Connection) -> list[Any]:
                    context = MigrationContext.configure(
                        sync, opts={"compare_type": True, "compare_server_default": True}
                    )
                    return list(compare_metadata(context, Base.metadata))

                assert await connection.run_sync(diff) == []
            # Down to 0001 and up again keeps the rows.
            async with engine.begin() as connection:
                await connection.run_sync(to("0001"))
            await migrate(engine)
            async with engine.connect() as connection:
                assert await connection.scalar(text("SELECT count(*) FROM deployments")) == 1
                assert await connection.scalar(text("SELECT max_instances FROM apps")) == 4
        finally:
            await engine.dispose()

    asyncio.run(run())
