"""One instance of a revision: its in-flight count and its pool of keep-alive connections."""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from typing import TYPE_CHECKING

from cloudlet.router.upstream import UpstreamProtocol

if TYPE_CHECKING:
    from cloudlet.router.client import ClientProtocol
    from cloudlet.router.table import Revision, Router

log = logging.getLogger("cloudlet.router")

# After a failed connect an instance is avoided this long while others are available.
DOWN_FOR = 1.0


class Instance:
    __slots__ = (
        "down_until",
        "id",
        "idle",
        "inflight",
        "path",
        "retired",
        "revision",
        "router",
        "waiting",
    )

    def __init__(self, router: Router, revision: Revision, instance_id: str, path: str) -> None:
        self.router = router
        self.revision = revision
        self.id = instance_id
        self.path = path
        self.inflight = 0
        # LIFO: the most recently used connection is the least likely to have timed out.
        self.idle: list[UpstreamProtocol] = []
        self.retired = False
        self.down_until = 0.0
        # Clients waiting for a connection to come free (open files at the limit).
        self.waiting: deque[ClientProtocol] = deque()

    def __repr__(self) -> str:
        return f"<Instance {self.revision.id}/{self.id} {self.path}>"

    def acquire(self, now: float) -> UpstreamProtocol | None:
        """An idle pooled connection, or None when a new one must be opened."""
        idle = self.idle
        limit = now - self.router.config.upstream_idle_timeout
        while idle:
            up = idle.pop()
            if up.idle_since >= limit and not up.closed:
                up.reused = True
                return up
            up.close()
        return None

    def release(self, up: UpstreamProtocol, now: float) -> None:
        if self.retired or up.closed:
            up.close()
            return
        waiting = self.waiting
        while waiting:
            client = waiting.popleft()
            if client.wants(self):  # straight to a request that waits for one
                up.reused = True
                client.connected(up)
                return
        if len(self.idle) >= self.router.config.pool_max_idle:
            up.close()
            return
        up.idle_since = now
        # Read while idle, so a close by the instance is noticed and the connection dropped.
        up.resume_reading()
        self.idle.append(up)

    def forget(self, up: UpstreamProtocol) -> None:
        """An idle connection was closed (by the instance, usually its keep-alive timeout)."""
        if up in self.idle:
            self.idle.remove(up)

    def retire(self) -> None:
        """The instance left the table: close idle connections; busy ones close on release."""
        self.retired = True
        idle, self.idle = self.idle, []
        for up in idle:
            up.close()

    def sweep(self, now: float) -> None:
        limit = now - self.router.config.upstream_idle_timeout
        idle = self.idle
        # Oldest first: the list is ordered by release time.
        stale = 0
        while stale < len(idle) and idle[stale].idle_since < limit:
            stale += 1
        if stale:
            old = idle[:stale]
            del idle[:stale]
            for up in old:
                up.close()

    async def connect(self, client: ClientProtocol) -> None:
        """Open a new connection and hand it to ``client`` (or to the pool if it left).

        Only through ``Router.open_for``, which counts the descriptor before this runs."""
        router = self.router
        loop = router.loop
        try:
            async with asyncio.timeout(router.config.connect_timeout):
                _, up = await loop.create_unix_connection(lambda: UpstreamProtocol(self), self.path)
        except (OSError, TimeoutError) as exc:
            router.upstream_closed()
            now = loop.time()
            if self.down_until <= now:  # once per outage, not once per request
                log.warning("cannot connect to %r: %s", self, exc or "timeout")
            self.down_until = now + DOWN_FOR
            client.connect_failed(self)
            return
        client.connected(up)
