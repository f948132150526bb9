"""Device-code login, logout and the current user (contract §2.2, §2.4, §4.1)."""

from __future__ import annotations

import secrets
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any

from fastapi import APIRouter, Form, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from cloudlet.api.auth import CallerDep, PlatformDep, SessionDep, UserDep
from cloudlet.api.errors import bad_request, not_found
from cloudlet.store.crypto import hash_token, new_token
from cloudlet.store.models import DeviceAuthorization, User, UserToken

router = APIRouter()

# No vowels or look-alikes: codes are read off a screen and typed.
USER_CODE_ALPHABET = "BCDFGHJKLMNPQRSTVWXZ"
POLL_INTERVAL_S = 1


def new_user_code() -> str:
    chars = [secrets.choice(USER_CODE_ALPHABET) for _ in range(8)]
    return "".join(chars[:4]) + "-" + "".join(chars[4:])


def public_base(request: Request, configured: str | None) -> str:
    """The address the caller reached us on, so links work through tunnels and proxies."""
    if configured:
        return configured.rstrip("/")
    return str(request.base_url).rstrip("/")


@router.post("/login/device/authorization")
async def device_authorization(
    request: Request,
    platform: PlatformDep,
    session: SessionDep,
    client_id: Annotated[str, Form()] = "fastapi-cli",
) -> dict[str, Any]:
    # The Authorization header is ignored here on purpose: the CLI sends stale tokens (§0.5).
    device_code = secrets.token_urlsafe(32)
    user_code = new_user_code()
    ttl = platform.settings.device_code_ttl_s
    session.add(
        DeviceAuthorization(
            device_code_hash=hash_token(device_code),
            user_code=user_code,
            client_id=client_id[:100],
            expires_at=datetime.now(UTC) + timedelta(seconds=ttl),
        )
    )
    await session.commit()
    base = public_base(request, platform.settings.public_api_url)
    return {
        "device_code": device_code,
        "user_code": user_code,
        "verification_uri": f"{base}/device",
        "verification_uri_complete": f"{base}/device?code={user_code}",
        "interval": POLL_INTERVAL_S,
        "expires_in": ttl,
    }


def _oauth_error(error: str, detail: str | None = None) -> JSONResponse:
    body = {"error": error}
    if detail:
        body["detail"] = detail
    return JSONResponse(body, status_code=400)


async def issue_user_token(
    session: AsyncSession, user: User, name: str, ttl_days: int
) -> tuple[str, UserToken]:
    value = new_token("clt_")
    row = UserToken(
        user_id=user.id,
        token_hash=hash_token(value),
        name=name,
        expires_at=datetime.now(UTC) + timedelta(days=ttl_days),
    )
    session.add(row)
    return value, row


@router.post("/login/device/token")
async def device_token(
    platform: PlatformDep,
    session: SessionDep,
    device_code: Annotated[str, Form()],
    client_id: Annotated[str, Form()] = "fastapi-cli",
    grant_type: Annotated[str, Form()] = "urn:ietf:params:oauth:grant-type:device_code",
) -> Any:
    auth = await session.scalar(
        select(DeviceAuthorization)
        .where(DeviceAuthorization.device_code_hash == hash_token(device_code))
        .with_for_update()
    )
    if auth is None or auth.status == "consumed":
        return _oauth_error("invalid_grant", "Unknown login request. Run `fastapi login` again.")
    if auth.status == "denied":
        return _oauth_error("access_denied")
    if auth.expires_at <= datetime.now(UTC):
        return _oauth_error(
            "expired_token", "The login request expired. Run `fastapi login` again."
        )
    if auth.status != "approved" or auth.user_id is None:
        return _oauth_error("authorization_pending")
    user = await session.get(User, auth.user_id)
    if user is None or not user.is_active:
        return _oauth_error("access_denied")
    ttl_days = platform.settings.user_token_ttl_days
    value, _ = await issue_user_token(session, user, f"CLI login ({auth.client_id})", ttl_days)
    auth.status = "consumed"
    await session.commit()
    return {"access_token": value, "token_type": "bearer", "expires_in": ttl_days * 86400}


class DeviceApproval(BaseModel):
    user_code: str
    approve: bool = True


async def decide_device_login(
    session: AsyncSession, user: User, user_code: str, approve: bool
) -> DeviceAuthorization:
    code = user_code.strip().upper()
    if len(code) == 8:
        code = code[:4] + "-" + code[4:]
    auth = await session.scalar(
        select(DeviceAuthorization).where(DeviceAuthorization.user_code == code).with_for_update()
    )
    if auth is None or auth.expires_at <= datetime.now(UTC):
        raise not_found("Login request")
    if auth.status != "pending":
        raise bad_request("This login request was already answered.")
    auth.status = "approved" if approve else "denied"
    auth.user_id = user.id
    await session.commit()
    return auth


@router.post("/login/device/approve")
async def approve_device_login(
    body: DeviceApproval, user: UserDep, session: SessionDep
) -> dict[str, str]:
    """Cloudlet's addition: approve a device login as the calling user (automation, tests)."""
    auth = await decide_device_login(session, user, body.user_code, body.approve)
    return {"status": auth.status}


@router.post("/logout")
async def logout(caller: CallerDep, session: SessionDep) -> dict[str, str]:
    if caller.user_token is not None:
        caller.user_token.revoked_at = datetime.now(UTC)
        await session.commit()
    return {"status": "logged_out"}


@router.get("/users/me")
async def me(user: UserDep) -> dict[str, Any]:
    return {"id": user.id, "email": user.email, "full_name": user.full_name}
