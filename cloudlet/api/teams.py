"""Teams (contract §4.2) and their integration providers (§4.2 #7)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Query
from sqlalchemy import func, select

from cloudlet.api.auth import SessionDep, UserDep, team_for_user
from cloudlet.api.serialize import team_json
from cloudlet.store.models import Team, TeamMember

router = APIRouter()

# Providers a team could connect. Cloudlet runs none yet, and says so rather than pretending.
PROVIDERS = [
    {
        "id": "postgres",
        "name": "PostgreSQL",
        "status": "coming_soon",
        "connected_integration": None,
    },
]


@router.get("/teams/")
async def list_teams(
    user: UserDep,
    session: SessionDep,
    limit: int | None = Query(default=None, ge=1, le=1000),
    skip: int = Query(default=0, ge=0),
) -> dict[str, Any]:
    query = (
        select(Team)
        .join(TeamMember, TeamMember.team_id == Team.id)
        .where(TeamMember.user_id == user.id)
        .order_by(func.lower(Team.name), Team.id)
    )
    total = await session.scalar(select(func.count()).select_from(query.subquery()))
    if limit is not None:  # pickers send no limit and expect every team (§4.2)
        query = query.limit(limit)
    teams = (await session.scalars(query.offset(skip))).all()
    return {"data": [team_json(t) for t in teams], "count": total or 0}


@router.get("/teams/{team_id}")
async def get_team(team_id: str, user: UserDep, session: SessionDep) -> dict[str, Any]:
    return team_json(await team_for_user(session, user, team_id))


@router.get("/teams/{team_id}/integrations")
async def list_integrations(team_id: str, user: UserDep, session: SessionDep) -> dict[str, Any]:
    await team_for_user(session, user, team_id)
    return {"data": PROVIDERS}
