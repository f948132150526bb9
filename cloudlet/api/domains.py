"""Custom domains (contract §4.8): verified by a DNS TXT record, then served by the router."""

from __future__ import annotations

import re
import secrets
from datetime import UTC, datetime
from typing import Any

from fastapi import APIRouter, Response
from pydantic import BaseModel, field_validator
from sqlalchemy import func, select

from cloudlet.api.auth import PlatformDep, SessionDep, UserDep, app_for_user
from cloudlet.api.errors import conflict, not_found, unprocessable
from cloudlet.api.serialize import domain_json
from cloudlet.store.models import CustomDomain

router = APIRouter()

LABEL = re.compile(r"^(?!-)[a-z0-9-]{1,63}(?<!-)$")


def normalize_domain(name: str) -> str:
    name = name.strip().strip(".").lower()
    labels = name.split(".")
    if len(name) > 253 or len(labels) < 2 or not all(LABEL.match(part) for part in labels):
        raise ValueError(f"{name!r} is not a valid domain name")
    return name


class DomainCreate(BaseModel):
    name: str
    is_using_pre_validation: bool = False

    @field_validator("name")
    @classmethod
    def _name(cls, value: str) -> str:
        return normalize_domain(value)


@router.get("/apps/{app_id}/custom-domains")
async def list_domains(
    app_id: str, platform: PlatformDep, user: UserDep, session: SessionDep
) -> dict[str, Any]:
    app = await app_for_user(session, user, app_id)
    rows = (
        await session.scalars(
            select(CustomDomain).where(CustomDomain.app_id == app.id).order_by(CustomDomain.name)
        )
    ).all()
    return {"data": [domain_json(d, platform.settings, app) for d in rows], "count": len(rows)}


@router.post("/apps/{app_id}/custom-domains", status_code=201)
async def add_domain(
    app_id: str, body: DomainCreate, platform: PlatformDep, user: UserDep, session: SessionDep
) -> dict[str, Any]:
    app = await app_for_user(session, user, app_id)
    if body.name == platform.settings.domain or body.name.endswith("." + platform.settings.domain):
        raise unprocessable(
            f"{body.name} is under this Cloudlet's own domain; apps get it already."
        )
    if await session.scalar(select(func.count()).where(CustomDomain.name == body.name)):
        raise conflict(f"{body.name} is already added to an app.")
    now = datetime.now(UTC)
    domain = CustomDomain(
        app_id=app.id,
        name=body.name,
        is_using_pre_validation=body.is_using_pre_validation,
        verification_token=secrets.token_hex(16),
        setup_started_at=now,
    )
    session.add(domain)
    await session.commit()
    platform.domains.check_soon(domain.id)
    return domain_json(domain, platform.settings, app)


async def _domain(session: Any, app_id: str, domain_id: str) -> CustomDomain:
    domain = await session.get(CustomDomain, domain_id)
    if domain is None or domain.app_id != app_id:
        raise not_found("Custom domain")
    assert isinstance(domain, CustomDomain)
    return domain


@router.delete("/apps/{app_id}/custom-domains/{domain_id}", status_code=204)
async def remove_domain(
    app_id: str, domain_id: str, platform: PlatformDep, user: UserDep, session: SessionDep
) -> Response:
    app = await app_for_user(session, user, app_id)
    domain = await _domain(session, app.id, domain_id)
    await session.delete(domain)
    await session.commit()
    await platform.publish_routes()
    return Response(status_code=204)


@router.post("/apps/{app_id}/custom-domains/{domain_id}/restart-setup")
async def restart_domain_setup(
    app_id: str, domain_id: str, platform: PlatformDep, user: UserDep, session: SessionDep
) -> dict[str, Any]:
    app = await app_for_user(session, user, app_id)
    domain = await _domain(session, app.id, domain_id)
    if domain.status != "origin_setup_success":
        domain.status = "internal_dcv_pending"
        domain.setup_started_at = datetime.now(UTC)
        domain.last_error = None
        await session.commit()
    platform.domains.check_soon(domain.id)
    return domain_json(domain, platform.settings, app)
