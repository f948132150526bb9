"""Cloudlet's own additions: an app's scaling settings and its team's limits.

- `GET/PATCH /apps/{app_id}/scaling`: user tokens of the app's team, and deploy tokens of
  that one app (another team's app is not found, like everywhere else).
- `GET /teams/{team_id}/limits`: the team's members and administrators;
  `PATCH /teams/{team_id}/limits`: administrators only.
"""

from __future__ import annotations

import dataclasses
from typing import Annotated, Any

from fastapi import APIRouter
from fastapi.exceptions import RequestValidationError
from pydantic import BaseModel, ConfigDict, Field, field_validator
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from cloudlet.api.auth import (
    CallerDep,
    PlatformDep,
    SessionDep,
    UserDep,
    app_for_caller,
    team_for_user,
)
from cloudlet.api.errors import forbidden, not_found
from cloudlet.control.platform import Platform
from cloudlet.scaling import (
    CAPACITY_SHARE_MAX,
    CAPACITY_SHARE_MIN_EXCLUSIVE,
    FIELDS,
    MAX_INSTANCES_MAX,
    MAX_INSTANCES_MIN,
    MIN_INSTANCES_MIN,
    SCALE_TO_ZERO_AFTER_S_MAX,
    SCALE_TO_ZERO_AFTER_S_MIN,
    TARGET_CONCURRENCY_MAX,
    TARGET_CONCURRENCY_MIN,
    limits_of,
    problems,
    scaling_of,
)
from cloudlet.store.models import App, Team, User

router = APIRouter()

# Strict: `true`, `"3"` or `2.5` for a count is a mistake, not something to coerce.
MinInstances = Annotated[int, Field(strict=True, ge=MIN_INSTANCES_MIN, le=MAX_INSTANCES_MAX)]
MaxInstances = Annotated[int, Field(strict=True, ge=MAX_INSTANCES_MIN, le=MAX_INSTANCES_MAX)]
TargetConcurrency = Annotated[
    int, Field(strict=True, ge=TARGET_CONCURRENCY_MIN, le=TARGET_CONCURRENCY_MAX)
]
ScaleToZeroAfter = Annotated[
    int, Field(strict=True, ge=SCALE_TO_ZERO_AFTER_S_MIN, le=SCALE_TO_ZERO_AFTER_S_MAX)
]
CapacityShare = Annotated[
    float,
    Field(strict=True, gt=CAPACITY_SHARE_MIN_EXCLUSIVE, le=CAPACITY_SHARE_MAX, allow_inf_nan=False),
]
# A team cap: a positive count, or null for no cap. PostgreSQL's INTEGER bounds it.
TeamCap = Annotated[int, Field(strict=True, ge=1, le=2**31 - 1)]


class ScalingUpdate(BaseModel):
    """Any subset of the settings; a field left out keeps its value."""

    model_config = ConfigDict(extra="forbid")

    min_instances: MinInstances | None = None
    max_instances: MaxInstances | None = None
    target_concurrency: TargetConcurrency | None = None
    scale_to_zero_after_s: ScaleToZeroAfter | None = None
    capacity_share: CapacityShare | None = None

    @field_validator("*", mode="before")
    @classmethod
    def _not_null(cls, value: object) -> object:
        # Defaults are not validated, so this sees only values the caller sent.
        if value is None:
            raise ValueError("must not be null (leave the field out to keep its value)")
        return value


class LimitsUpdate(BaseModel):
    """Any subset of the caps; null removes a cap."""

    model_config = ConfigDict(extra="forbid")

    max_instances: TeamCap | None = None
    max_memory_mb: TeamCap | None = None


def scaling_json(app: App, platform: Platform) -> dict[str, Any]:
    scaling = scaling_of(app)
    if app.live_deployment_id is None:
        instances, state = 0, "not_deployed"
    else:
        live = app.live_deployment_id
        instances = len(platform.runtime.instances(live))
        # At zero the zygote usually stays (the app imported, one fork from serving);
        # "stopped": it went too (CLOUDLET_ZYGOTE_IDLE_S), the next request imports anew.
        if instances:
            state = "running"
        elif platform.runtime.is_prepared(live):
            state = "scaled_to_zero"
        else:
            state = "stopped"
    return {
        "app_id": app.id,
        **dataclasses.asdict(scaling),
        "admission_limit": scaling.admission_limit,
        "instances": instances,
        "state": state,
    }


def limits_json(team: Team) -> dict[str, Any]:
    return {"team_id": team.id, **dataclasses.asdict(limits_of(team))}


@router.get("/apps/{app_id}/scaling")
async def get_scaling(
    app_id: str, platform: PlatformDep, caller: CallerDep, session: SessionDep
) -> dict[str, Any]:
    return scaling_json(await app_for_caller(session, caller, app_id), platform)


@router.patch("/apps/{app_id}/scaling")
async def update_scaling(
    app_id: str,
    body: ScalingUpdate,
    platform: PlatformDep,
    caller: CallerDep,
    session: SessionDep,
) -> dict[str, Any]:
    app = await app_for_caller(session, caller, app_id)
    # Lock the row (PostgreSQL) so that two concurrent updates cannot together break
    # min <= max; SQLite serialises writers anyway.
    await session.refresh(app, with_for_update=True)
    changes = {name: getattr(body, name) for name in FIELDS if name in body.model_fields_set}
    merged = dataclasses.replace(scaling_of(app), **changes)
    wrong = problems(merged)
    if wrong:
        raise RequestValidationError(
            [
                {"loc": ("body", field), "msg": message, "type": "value_error", "input": None}
                for field, message in wrong
            ]
        )
    for name, value in changes.items():
        setattr(app, name, value)
    await session.commit()
    await platform.scaling_changed(app.id)
    return scaling_json(app, platform)


async def _team_for_reader(session: AsyncSession, user: User, team_id: str) -> Team:
    if user.is_admin:
        team = await session.get(Team, team_id)
        if team is None:
            raise not_found("Team")
        return team
    return await team_for_user(session, user, team_id)


@router.get("/teams/{team_id}/limits")
async def get_limits(team_id: str, user: UserDep, session: SessionDep) -> dict[str, Any]:
    return limits_json(await _team_for_reader(session, user, team_id))


@router.patch("/teams/{team_id}/limits")
async def update_limits(
    team_id: str,
    body: LimitsUpdate,
    platform: PlatformDep,
    user: UserDep,
    session: SessionDep,
) -> dict[str, Any]:
    if not user.is_admin:
        raise forbidden("Only administrators can change a team's limits.")
    team = await _team_for_reader(session, user, team_id)
    if "max_instances" in body.model_fields_set:
        team.max_instances = body.max_instances
    if "max_memory_mb" in body.model_fields_set:
        team.max_memory_mb = body.max_memory_mb
    await session.commit()
    app_ids = (await session.scalars(select(App.id).where(App.team_id == team.id))).all()
    for app_id in app_ids:
        await platform.scaling_changed(app_id)
    return limits_json(team)
