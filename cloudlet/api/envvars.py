"""Environment variables: secrets encrypted at rest and never returned (contract §4.6)."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import Any

from fastapi import APIRouter, Response
from pydantic import BaseModel, Field
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from cloudlet.api.auth import PlatformDep, SessionDep, UserDep, app_for_user
from cloudlet.api.errors import not_found, unprocessable
from cloudlet.api.serialize import iso
from cloudlet.control.platform import Platform
from cloudlet.store.models import App, EnvironmentVariable

router = APIRouter()

NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
# The runtime sets these itself; letting users override them would break their instances.
RESERVED = frozenset({"PORT", "PATH", "HOME", "VIRTUAL_ENV", "PYTHONPATH"})
MAX_VALUE_BYTES = 64 * 1024
MAX_NAME = 256


class VariableValue(BaseModel):
    value: str
    is_secret: bool = False


class VariableBatch(BaseModel):
    upsert: dict[str, VariableValue] = Field(default_factory=dict)
    delete: list[str] = Field(default_factory=list)
    redeploy: bool = True


class VariableCreate(BaseModel):
    """The one-at-a-time form older CLIs (≤ 0.23) send (contract appendix A)."""

    name: str
    value: str
    is_secret: bool = False


def check_name(name: str) -> None:
    if len(name) > MAX_NAME or not NAME.match(name):
        raise unprocessable(
            f"Invalid environment variable name {name!r}: use letters, digits and underscores, "
            "not starting with a digit."
        )
    if name in RESERVED or name.startswith("CLOUDLET_"):
        raise unprocessable(f"{name} is set by the platform and cannot be changed.")


def variable_json(platform: Platform, row: EnvironmentVariable) -> dict[str, Any]:
    return {
        "name": row.name,
        "value": None if row.is_secret else platform.secrets.decrypt(row.value_encrypted),
        "is_secret": row.is_secret,
        "updated_at": iso(row.updated_at),
    }


async def _all(session: AsyncSession, platform: Platform, app: App) -> dict[str, Any]:
    rows = await session.scalars(
        select(EnvironmentVariable)
        .where(EnvironmentVariable.app_id == app.id)
        .order_by(EnvironmentVariable.name)
    )
    return {"data": [variable_json(platform, r) for r in rows.all()]}


async def apply_batch(
    session: AsyncSession, platform: Platform, app: App, batch: VariableBatch
) -> None:
    for name, item in batch.upsert.items():
        check_name(name)
        if len(item.value.encode()) > MAX_VALUE_BYTES:
            raise unprocessable(f"The value of {name} is larger than 64 KB.")
    for name in batch.delete:
        if name in batch.upsert:
            raise unprocessable(f"{name} is both set and deleted in one request.")
    existing = {
        row.name: row
        for row in (
            await session.scalars(
                select(EnvironmentVariable).where(EnvironmentVariable.app_id == app.id)
            )
        ).all()
    }
    touched = [existing[n] for n in [*batch.upsert, *batch.delete] if n in existing]
    for row in touched:
        if row.managed_by:
            raise unprocessable(
                f"{row.name} is managed by an integration; change it through that integration."
            )
    now = datetime.now(UTC)
    for name, item in batch.upsert.items():
        current = existing.get(name)
        encrypted = platform.secrets.encrypt(item.value)
        if current is None:
            session.add(
                EnvironmentVariable(
                    app_id=app.id, name=name, value_encrypted=encrypted, is_secret=item.is_secret
                )
            )
        else:  # an existing variable keeps its secret status (contract §4.6)
            current.value_encrypted = encrypted
            current.updated_at = now
    for name in batch.delete:
        if name in existing:
            await session.delete(existing[name])
    await session.commit()


@router.get("/apps/{app_id}/environment-variables/")
async def list_variables(
    app_id: str, platform: PlatformDep, user: UserDep, session: SessionDep
) -> dict[str, Any]:
    app = await app_for_user(session, user, app_id)
    return await _all(session, platform, app)


@router.put("/apps/{app_id}/environment-variables/")
async def update_variables(
    app_id: str, body: VariableBatch, platform: PlatformDep, user: UserDep, session: SessionDep
) -> dict[str, Any]:
    app = await app_for_user(session, user, app_id)
    await apply_batch(session, platform, app, body)
    result = await _all(session, platform, app)
    if body.redeploy and (body.upsert or body.delete):
        deployment_id = await platform.pipeline.redeploy(
            app.id, reason="environment variables changed"
        )
        result["redeployment_id"] = deployment_id
    return result


@router.post("/apps/{app_id}/environment-variables/", status_code=201)
async def create_variable(
    app_id: str, body: VariableCreate, platform: PlatformDep, user: UserDep, session: SessionDep
) -> dict[str, Any]:
    app = await app_for_user(session, user, app_id)
    batch = VariableBatch(
        upsert={body.name: VariableValue(value=body.value, is_secret=body.is_secret)}
    )
    await apply_batch(session, platform, app, batch)
    row = await session.scalar(
        select(EnvironmentVariable).where(
            EnvironmentVariable.app_id == app.id, EnvironmentVariable.name == body.name
        )
    )
    assert row is not None
    return variable_json(platform, row)


@router.delete("/apps/{app_id}/environment-variables/{name}", status_code=204)
async def delete_variable(
    app_id: str, name: str, platform: PlatformDep, user: UserDep, session: SessionDep
) -> Response:
    app = await app_for_user(session, user, app_id)
    row = await session.scalar(
        select(EnvironmentVariable).where(
            EnvironmentVariable.app_id == app.id, EnvironmentVariable.name == name
        )
    )
    if row is None:
        raise not_found("Environment variable")
    await apply_batch(session, platform, app, VariableBatch(delete=[name]))
    return Response(status_code=204)
