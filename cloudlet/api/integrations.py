"""Connected resources of an app (contract §4.9)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Response
from sqlalchemy import delete, select

from cloudlet.api.auth import SessionDep, UserDep, app_for_user
from cloudlet.api.errors import not_found
from cloudlet.api.serialize import iso
from cloudlet.store.models import ConnectedResource, EnvironmentVariable

router = APIRouter()


def resource_json(resource: ConnectedResource, variables: list[str]) -> dict[str, Any]:
    return {
        "id": resource.id,
        "name": resource.name,
        "provider_metadata": {"type": resource.provider, **resource.provider_metadata},
        "console_url": resource.console_url,
        "environment_variables": [{"name": n} for n in variables],
        "created_at": iso(resource.created_at),
        "updated_at": iso(resource.updated_at),
    }


@router.get("/apps/{app_id}/connected-resources")
async def list_resources(app_id: str, user: UserDep, session: SessionDep) -> dict[str, Any]:
    app = await app_for_user(session, user, app_id)
    rows = await session.scalars(
        select(ConnectedResource).where(ConnectedResource.app_id == app.id)
    )
    return {"data": [resource_json(r, []) for r in rows.all()]}


async def _resource(session: Any, app_id: str, resource_id: str) -> ConnectedResource:
    resource = await session.get(ConnectedResource, resource_id)
    if resource is None or resource.app_id != app_id:
        raise not_found("Connected resource")
    assert isinstance(resource, ConnectedResource)
    return resource


@router.get("/apps/{app_id}/connected-resources/{resource_id}")
async def get_resource(
    app_id: str, resource_id: str, user: UserDep, session: SessionDep
) -> dict[str, Any]:
    app = await app_for_user(session, user, app_id)
    resource = await _resource(session, app.id, resource_id)
    names = await session.scalars(
        select(EnvironmentVariable.name).where(
            EnvironmentVariable.app_id == app.id, EnvironmentVariable.managed_by == resource.id
        )
    )
    return resource_json(resource, list(names.all()))


@router.delete("/apps/{app_id}/connected-resources/{resource_id}", status_code=204)
async def disconnect_resource(
    app_id: str, resource_id: str, user: UserDep, session: SessionDep
) -> Response:
    """Removes the variables the integration manages; the provider's resource itself stays."""
    app = await app_for_user(session, user, app_id)
    resource = await _resource(session, app.id, resource_id)
    await session.execute(
        delete(EnvironmentVariable).where(EnvironmentVariable.managed_by == resource.id)
    )
    await session.delete(resource)
    await session.commit()
    return Response(status_code=204)
