"""Who is calling: a user token, or a deploy token scoped to one app (contract §2.1)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Annotated

from fastapi import Depends, HTTPException, Request
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from cloudlet.api.errors import forbidden, not_found
from cloudlet.control.platform import Platform
from cloudlet.store.crypto import hash_token
from cloudlet.store.models import App, DeployToken, Team, TeamMember, User, UserToken

# Touching last_used_at on every request would turn reads into writes; once a minute is plenty.
LAST_USED_GRANULARITY = timedelta(minutes=1)


def get_platform(request: Request) -> Platform:
    platform: Platform = request.app.state.platform
    return platform


async def get_session(platform: Annotated[Platform, Depends(get_platform)]):  # type: ignore[no-untyped-def]
    async with platform.sessions() as session:
        yield session


PlatformDep = Annotated[Platform, Depends(get_platform)]
SessionDep = Annotated[AsyncSession, Depends(get_session)]


@dataclass
class Caller:
    user: User | None
    user_token: UserToken | None
    deploy_token: DeployToken | None


def bearer_token(request: Request) -> str | None:
    header = request.headers.get("authorization", "")
    scheme, _, value = header.partition(" ")
    if scheme.lower() != "bearer" or not value.strip():
        return None
    return value.strip()


def _invalid_token() -> HTTPException:
    return HTTPException(
        401, "The token is not valid or has expired.", headers={"WWW-Authenticate": "Bearer"}
    )


async def resolve_token(session: AsyncSession, token: str) -> Caller | None:
    now = datetime.now(UTC)
    digest = hash_token(token)
    if token.startswith("fcp_"):
        deploy = await session.scalar(select(DeployToken).where(DeployToken.token_hash == digest))
        if deploy is None or deploy.expires_at <= now:
            return None
        if deploy.last_used_at is None or now - deploy.last_used_at > LAST_USED_GRANULARITY:
            deploy.last_used_at = now
            await session.commit()
        return Caller(user=None, user_token=None, deploy_token=deploy)
    row = await session.scalar(select(UserToken).where(UserToken.token_hash == digest))
    if row is None or row.revoked_at is not None:
        return None
    if row.expires_at is not None and row.expires_at <= now:
        return None
    user = await session.get(User, row.user_id)
    if user is None or not user.is_active:
        return None
    if row.last_used_at is None or now - row.last_used_at > LAST_USED_GRANULARITY:
        row.last_used_at = now
        await session.commit()
    return Caller(user=user, user_token=row, deploy_token=None)


async def get_caller(request: Request, session: SessionDep) -> Caller:
    token = bearer_token(request)
    if token is None:
        raise HTTPException(401, "Not authenticated.", headers={"WWW-Authenticate": "Bearer"})
    caller = await resolve_token(session, token)
    if caller is None:
        raise _invalid_token()
    return caller


CallerDep = Annotated[Caller, Depends(get_caller)]


async def get_user(caller: CallerDep) -> User:
    if caller.user is None:
        raise forbidden(
            "Deploy tokens can only deploy their app. Log in with `fastapi login` for this command."
        )
    return caller.user


UserDep = Annotated[User, Depends(get_user)]


async def team_for_user(session: AsyncSession, user: User, team_id: str) -> Team:
    team = await session.scalar(
        select(Team)
        .join(TeamMember, TeamMember.team_id == Team.id)
        .where(Team.id == team_id, TeamMember.user_id == user.id)
    )
    if team is None:
        raise not_found("Team")
    return team


async def app_for_caller(session: AsyncSession, caller: Caller, app_id: str) -> App:
    """The app if the caller may see it; another team's app is simply not found."""
    app = await session.get(App, app_id)
    if app is None:
        raise not_found("App")
    if caller.deploy_token is not None:
        if caller.deploy_token.app_id != app.id:
            raise not_found("App")
        return app
    assert caller.user is not None
    member = await session.get(TeamMember, (app.team_id, caller.user.id))
    if member is None:
        raise not_found("App")
    return app


async def app_for_user(session: AsyncSession, user: User, app_id: str) -> App:
    return await app_for_caller(
        session, Caller(user=user, user_token=None, deploy_token=None), app_id
    )
