"""Apps (contract §4.3)."""

from __future__ import annotations

import re
from pathlib import PurePosixPath
from typing import Any

from fastapi import APIRouter, Query
from pydantic import BaseModel, Field, field_validator
from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError

from cloudlet.api.auth import (
    CallerDep,
    PlatformDep,
    SessionDep,
    UserDep,
    app_for_caller,
    app_for_user,
    team_for_user,
)
from cloudlet.api.errors import conflict
from cloudlet.api.serialize import app_json
from cloudlet.store.models import App, TeamMember
from cloudlet.store.names import unique_slug

router = APIRouter()

DIRECTORY_CHARS = re.compile(r"^[A-Za-z0-9._/ -]*$")


def clean_directory(value: str | None) -> str | None:
    """The CLI's own rules for `directory` (§4.3), enforced again on the server."""
    if value is None:
        return None
    value = value.strip()
    if not value:
        return None
    if value.startswith(("/", "~")) or not DIRECTORY_CHARS.match(value):
        raise ValueError("directory must be a relative path of letters, digits, '.', '_', '-', '/'")
    parts = PurePosixPath(value).parts
    if ".." in parts:
        raise ValueError("directory must not contain '..'")
    normal = str(PurePosixPath(*[p for p in parts if p != "."])) if parts else ""
    return None if normal in ("", ".") else normal


class AppCreate(BaseModel):
    name: str = Field(min_length=1, max_length=200)
    team_id: str
    directory: str | None = None

    @field_validator("name")
    @classmethod
    def _name(cls, value: str) -> str:
        value = value.strip()
        if not value:
            raise ValueError("App name must not be empty")
        return value

    @field_validator("directory")
    @classmethod
    def _directory(cls, value: str | None) -> str | None:
        return clean_directory(value)


class AppUpdate(BaseModel):
    directory: str | None = None

    @field_validator("directory")
    @classmethod
    def _directory(cls, value: str | None) -> str | None:
        return clean_directory(value)


@router.get("/apps/")
async def list_apps(
    platform: PlatformDep,
    user: UserDep,
    session: SessionDep,
    team_id: str | None = None,
    limit: int | None = Query(default=None, ge=1, le=1000),
    skip: int = Query(default=0, ge=0),
) -> dict[str, Any]:
    query = select(App).join(TeamMember, TeamMember.team_id == App.team_id)
    query = query.where(TeamMember.user_id == user.id).order_by(App.slug)
    if team_id is not None:
        await team_for_user(session, user, team_id)
        query = query.where(App.team_id == team_id)
    total = await session.scalar(select(func.count()).select_from(query.subquery()))
    if limit is not None:
        query = query.limit(limit)
    apps = (await session.scalars(query.offset(skip))).all()
    return {"data": [app_json(a, platform.settings) for a in apps], "count": total or 0}


@router.post("/apps/", status_code=201)
async def create_app(
    body: AppCreate, platform: PlatformDep, user: UserDep, session: SessionDep
) -> dict[str, Any]:
    await team_for_user(session, user, body.team_id)
    taken = await session.scalar(
        select(App.id).where(App.team_id == body.team_id, App.name == body.name)
    )
    if taken is not None:
        raise conflict("App name already taken")
    app = App(
        team_id=body.team_id,
        name=body.name,
        slug=await unique_slug(session, body.name),
        directory=body.directory,
    )
    session.add(app)
    try:
        await session.commit()
    except IntegrityError as exc:  # a concurrent create won the race for the name
        raise conflict("App name already taken") from exc
    return app_json(app, platform.settings)


@router.get("/apps/{app_id}")
async def get_app(
    app_id: str, platform: PlatformDep, caller: CallerDep, session: SessionDep
) -> dict[str, Any]:
    return app_json(await app_for_caller(session, caller, app_id), platform.settings)


@router.patch("/apps/{app_id}")
async def update_app(
    app_id: str, body: AppUpdate, platform: PlatformDep, user: UserDep, session: SessionDep
) -> dict[str, Any]:
    app = await app_for_user(session, user, app_id)
    if "directory" in body.model_fields_set:
        app.directory = body.directory
    await session.commit()
    return app_json(app, platform.settings)
