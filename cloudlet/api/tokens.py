"""Deploy tokens: scoped to one app, hashed at rest, shown once (contract §2.5, §4.10)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from fastapi import APIRouter, Response
from pydantic import BaseModel, Field
from sqlalchemy import select

from cloudlet.api.auth import SessionDep, UserDep, app_for_user
from cloudlet.api.errors import not_found
from cloudlet.api.serialize import iso
from cloudlet.store.crypto import hash_token, new_token
from cloudlet.store.models import DeployToken

router = APIRouter()


class TokenCreate(BaseModel):
    name: str = Field(min_length=1, max_length=200)
    expires_in_days: int = Field(default=365, ge=1, le=365)


@router.get("/apps/{app_id}/tokens")
async def list_tokens(app_id: str, user: UserDep, session: SessionDep) -> dict[str, Any]:
    app = await app_for_user(session, user, app_id)
    rows = await session.scalars(
        select(DeployToken).where(DeployToken.app_id == app.id).order_by(DeployToken.created_at)
    )
    now = datetime.now(UTC)
    return {
        "data": [
            {
                "id": t.id,
                "name": t.name,
                "created_at": iso(t.created_at),
                "expired_at": iso(t.expires_at),
                "last_used_at": iso(t.last_used_at),
                "status": "active" if t.expires_at > now else "expired",
            }
            for t in rows.all()
        ]
    }


@router.post("/apps/{app_id}/tokens", status_code=201)
async def create_token(
    app_id: str, body: TokenCreate, user: UserDep, session: SessionDep
) -> dict[str, Any]:
    app = await app_for_user(session, user, app_id)
    value = new_token("fcp_")
    token = DeployToken(
        app_id=app.id,
        name=body.name,
        token_hash=hash_token(value),
        expires_at=datetime.now(UTC) + timedelta(days=body.expires_in_days),
    )
    session.add(token)
    await session.commit()
    return {
        "id": token.id,
        "name": token.name,
        "created_at": iso(token.created_at),
        "expired_at": iso(token.expires_at),
        "value": value,
    }


@router.delete("/apps/{app_id}/tokens/{token_id}", status_code=204)
async def delete_token(app_id: str, token_id: str, user: UserDep, session: SessionDep) -> Response:
    app = await app_for_user(session, user, app_id)
    token = await session.get(DeployToken, token_id)
    if token is None or token.app_id != app.id:
        raise not_found("Deploy token")
    await session.delete(token)
    await session.commit()
    return Response(status_code=204)
