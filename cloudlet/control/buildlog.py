"""Build-log lines: stored with ordered ids so a client can resume with `last_id`."""

from __future__ import annotations

import asyncio
import contextlib
from collections import defaultdict

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from cloudlet.store.models import BuildLogLine

MAX_LINE = 8192


class BuildLogHub:
    def __init__(self, sessions: async_sessionmaker[AsyncSession]) -> None:
        self._sessions = sessions
        self._next_seq: dict[str, int] = {}
        self._locks: dict[str, asyncio.Lock] = defaultdict(asyncio.Lock)
        self._events: dict[str, asyncio.Event] = defaultdict(asyncio.Event)

    async def append(self, deployment_id: str, message: str) -> None:
        async with self._locks[deployment_id], self._sessions() as session:
            seq = self._next_seq.get(deployment_id)
            if seq is None:
                last = await session.scalar(
                    select(func.max(BuildLogLine.seq)).where(
                        BuildLogLine.deployment_id == deployment_id
                    )
                )
                seq = (last or 0) + 1
            session.add(
                BuildLogLine(deployment_id=deployment_id, seq=seq, message=message[:MAX_LINE])
            )
            await session.commit()
            self._next_seq[deployment_id] = seq + 1
        self.notify(deployment_id)

    def notify(self, deployment_id: str) -> None:
        """Wake the streams of a deployment (a new line, or a status change)."""
        event = self._events.pop(deployment_id, None)
        if event is not None:
            event.set()

    async def wait(self, deployment_id: str, at_most_s: float) -> None:
        # Streams also poll the store, so a missed wake-up costs at most `at_most_s`.
        event = self._events[deployment_id]
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(event.wait(), at_most_s)

    def forget(self, deployment_id: str) -> None:
        self._next_seq.pop(deployment_id, None)
        self._locks.pop(deployment_id, None)
