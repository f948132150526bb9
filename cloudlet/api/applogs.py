"""The app's runtime log stream (contract §5.2)."""

from __future__ import annotations

import asyncio
import json
import re
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

from fastapi import APIRouter, HTTPException, Query
from fastapi.responses import StreamingResponse

from cloudlet.api.auth import PlatformDep, SessionDep, UserDep, app_for_user
from cloudlet.control.platform import Platform
from cloudlet.store.applogs import AppLogEntry

router = APIRouter()

SINCE = re.compile(r"^(\d+)([smhd])$")
UNITS = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days"}
# The CLI's read timeout is 30 s without follow and 120 s with it (§5.2).
HEARTBEAT_S = 20.0


def parse_since(value: str, retention_days: int) -> datetime:
    match = SINCE.match(value)
    if match is None:
        raise HTTPException(422, "since must look like 30s, 5m, 2h or 1d.")
    delta = timedelta(**{UNITS[match[2]]: int(match[1])})
    if delta > timedelta(days=retention_days):
        raise HTTPException(400, f"Cannot fetch logs older than {retention_days} days")
    return datetime.now(UTC) - delta


def _line(entry: AppLogEntry) -> bytes:
    return (json.dumps(entry.to_json(), ensure_ascii=False) + "\n").encode()


@router.get("/apps/{app_id}/logs/stream")
async def stream_logs(
    app_id: str,
    platform: PlatformDep,
    user: UserDep,
    session: SessionDep,
    tail: int = Query(default=100, ge=1, le=1000),
    since: str = "5m",
    follow: bool = True,
) -> StreamingResponse:
    app = await app_for_user(session, user, app_id)
    start = parse_since(since, platform.settings.log_retention_days)
    return StreamingResponse(
        _stream(platform, app.id, start, tail, follow), media_type="application/x-ndjson"
    )


async def _stream(
    platform: Platform, app_id: str, since: datetime, tail: int, follow: bool
) -> AsyncIterator[bytes]:
    # Subscribe before reading the backlog so no line falls between the two.
    queue = platform.applogs.subscribe(app_id) if follow else None
    try:
        backlog = await asyncio.to_thread(platform.applogs.read, app_id, since=since, tail=tail)
        last = backlog[-1].timestamp if backlog else since
        for entry in backlog:
            yield _line(entry)
        if queue is None:
            return
        while True:
            try:
                entry = await asyncio.wait_for(queue.get(), HEARTBEAT_S)
            except TimeoutError:
                yield b'{"type":"heartbeat"}\n'
                continue
            if entry.timestamp > last:
                yield _line(entry)
    finally:
        if queue is not None:
            platform.applogs.unsubscribe(app_id, queue)
