"""The live routing state: hosts → revisions → instances, and the counts reported upstream.

A new table from the feed replaces the host map in one assignment, so every request that
starts afterwards sees it whole. Revision and instance objects that survive the switch are
kept (with their counts and pooled connections); ones that leave are *retired*: their idle
connections close at once, their busy ones when their exchange ends, and a retired
revision is reported until its in-flight count reaches zero.

Activator: a request for a revision with no ready instance waits in the revision's
bounded queue (``waiters``) while the control plane is asked for an instance
(``on_demand``); the table that brings one releases the queue. Admission: a revision with
``limit`` requests in flight gets 429 for more.
"""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from collections.abc import Callable, Coroutine
from typing import TYPE_CHECKING, Any

from cloudlet.router.config import RouterConfig
from cloudlet.router.feed import NO_SCALE, Counts, RouteTable
from cloudlet.router.heads import table_key
from cloudlet.router.pool import Instance

if TYPE_CHECKING:
    from cloudlet.router.client import ClientProtocol

log = logging.getLogger("cloudlet.router")

# Added to the load of an instance whose last connect failed, so it is picked last.
_DOWN_PENALTY = 1 << 30


# While requests wait, the demand for an instance is repeated this often (a control plane
# that restarted, or missed the first one).
DEMAND_EVERY = 1.0


class Revision:
    __slots__ = (
        "app",
        "demanded_at",
        "hold",
        "id",
        "inflight",
        "instances",
        "limit",
        "queue",
        "rejected",
        "requests",
        "retired",
        "rr",
        "waiters",
    )

    def __init__(self, revision_id: str, app: str) -> None:
        self.id = revision_id
        self.app = app
        self.instances: list[Instance] = []
        self.inflight = 0
        self.requests = 0
        self.rejected = 0
        self.rr = 0
        self.retired = False
        self.limit = 0  # 429 at this many in flight; 0: no limit
        self.hold = 0.0  # how long a request may wait for an instance; 0: 503 at once
        self.queue = 0  # how many may wait
        self.waiters: deque[ClientProtocol] = deque()
        self.demanded_at = float("-inf")

    def __repr__(self) -> str:
        return f"<Revision {self.id} app={self.app} instances={len(self.instances)}>"

    def pick(self, now: float, exclude: list[Instance] | None = None) -> Instance | None:
        """The instance with the fewest requests in flight; ties go round-robin."""
        instances = self.instances
        n = len(instances)
        if n == 1 and exclude is None:
            return instances[0]
        start = self.rr
        self.rr = start + 1 if start + 1 < n else 0
        best = None
        best_load = 0
        for k in range(n):
            i = start + k
            inst = instances[i - n if i >= n else i]
            if exclude is not None and inst in exclude:
                continue
            load = inst.inflight
            if inst.down_until > now:
                load += _DOWN_PENALTY
            if best is None or load < best_load:
                best = inst
                best_load = load
        return best


class Router:
    """Shared state of one router process."""

    def __init__(self, loop: asyncio.AbstractEventLoop, config: RouterConfig) -> None:
        self.loop = loop
        self.config = config
        self.hosts: dict[bytes, Revision] = {}
        self.revisions: dict[str, Revision] = {}
        # Left the table but still had requests in flight at the switch.
        self.retired: dict[str, Revision] = {}
        # Request totals of revisions no longer tracked, so totals never go backwards.
        self.totals: dict[str, int] = {}
        self.generation: int | None = None
        self.connections: set[ClientProtocol] = set()
        # The loop only keeps weak references to tasks.
        self._tasks: set[asyncio.Task[None]] = set()
        self.draining = False
        # Called when a retired revision's in-flight count reaches zero (the feed reports
        # it at once, so the control plane can stop the old instances sooner).
        self.on_drained: Callable[[], None] | None = None
        # Called with a revision id when a request waits for an instance of it.
        self.on_demand: Callable[[str], None] | None = None
        # Instance connections open (or being opened), and instances with requests waiting
        # for one because the process is at its open-files limit.
        self.upstream_open = 0
        self.starved: deque[Instance] = deque()

    # -- table -------------------------------------------------------------------------

    def apply(self, table: RouteTable) -> None:
        old = self.revisions
        revisions: dict[str, Revision] = {}
        for rid, spec in table.revisions.items():
            rev = old.get(rid) or self.retired.pop(rid, None)
            if rev is None:
                rev = Revision(rid, spec["app"])
                rev.requests = self.totals.pop(rid, 0)
            rev.retired = False
            rev.app = spec["app"]
            keep = {(i.id, i.path): i for i in rev.instances}
            instances = []
            for ispec in spec["instances"]:
                inst = keep.pop((ispec["id"], ispec["socket"]), None)
                if inst is None:
                    inst = Instance(self, rev, ispec["id"], ispec["socket"])
                inst.retired = False  # back in a table after a rollback
                instances.append(inst)
            for gone in keep.values():
                gone.retire()
            rev.instances = instances
            rev.rr = 0
            scale = spec.get("scale", NO_SCALE)
            rev.limit, rev.hold, rev.queue = scale["limit"], scale["hold"], scale["queue"]
            revisions[rid] = rev
        for rid, rev in old.items():
            if rid not in revisions:
                rev.retired = True
                for inst in rev.instances:
                    inst.retire()
                self.retired[rid] = rev
        hosts: dict[bytes, Revision] = {}
        for host, rid in table.hosts.items():
            rev = revisions.get(rid)
            if rev is None:
                log.warning("feed: host %s names unknown revision %s", host, rid)
                continue
            try:
                hosts[table_key(host)] = rev
            except UnicodeError:
                log.warning("feed: host %r is not a valid host name", host)
        self.revisions = revisions
        self.hosts = hosts
        self.generation = table.generation
        for rev in list(old.values()) + list(revisions.values()):
            if rev.waiters:
                self.release(rev)
        log.info(
            "applied table generation %s: %d hosts, %d revisions",
            table.generation,
            len(hosts),
            len(revisions),
        )

    # -- reporting ---------------------------------------------------------------------

    def stats(self) -> Counts:
        """Counts per revision, including retired ones still draining.

        A retired revision is reported once with 0 in flight and then forgotten.
        """
        counts: Counts = {"inflight": {}, "held": {}, "requests": {}, "rejected": {}}
        inflight, held = counts["inflight"], counts["held"]
        requests, rejected = counts["requests"], counts["rejected"]
        for rid, rev in self.revisions.items():
            inflight[rid] = rev.inflight
            requests[rid] = rev.requests
            if rev.waiters:
                held[rid] = len(rev.waiters)
            if rev.rejected:
                rejected[rid] = rev.rejected
        for rid, rev in list(self.retired.items()):
            inflight[rid] = rev.inflight
            requests[rid] = rev.requests
            if rev.inflight <= 0:
                del self.retired[rid]
                self.totals[rid] = rev.requests
        return counts

    # -- activator -----------------------------------------------------------------------

    def demand(self, rev: Revision) -> None:
        """Ask for an instance of ``rev`` (at most once per DEMAND_EVERY)."""
        now = self.loop.time()
        if now - rev.demanded_at >= DEMAND_EVERY and self.on_demand is not None:
            rev.demanded_at = now
            self.on_demand(rev.id)

    def release(self, rev: Revision) -> None:
        """Route the requests waiting on ``rev`` again (a new table arrived): to an
        instance, back into a queue if there is still none, or to an error page."""
        waiters = rev.waiters
        for _ in range(len(waiters)):
            waiters.popleft().unhold()

    # -- instance connections ----------------------------------------------------------

    def can_open(self) -> bool:
        limit = self.config.fd_limit
        used = len(self.connections) + self.upstream_open + self.config.fd_reserve
        return not limit or used < limit

    def open_for(self, inst: Instance, client: ClientProtocol) -> None:
        """Open a new connection to ``inst`` for ``client``, or, at the open-files limit,
        have it wait for one of ``inst``'s connections to come free."""
        if self.can_open():
            # Counted now, not when the task runs: a burst of requests arrives in one turn.
            self.upstream_open += 1
            self.spawn(inst.connect(client))
            return
        if not inst.waiting:
            self.starved.append(inst)
        inst.waiting.append(client)

    def upstream_closed(self) -> None:
        self.upstream_open -= 1
        if self.starved:
            self.serve_starved()

    def serve_starved(self) -> None:
        """Descriptors came free: open connections for requests that wait for one."""
        starved = self.starved
        while starved and self.can_open():
            inst = starved[0]
            waiting = inst.waiting
            client = None
            while waiting:
                candidate = waiting.popleft()
                if candidate.wants(inst):
                    client = candidate
                    break
            if not waiting:
                starved.popleft()
            if client is not None:
                self.upstream_open += 1
                self.spawn(inst.connect(client))

    def spawn(self, coro: Coroutine[Any, Any, None]) -> None:
        """Run ``coro`` as a task (only to open instance connections: never per request
        on a pooled connection)."""
        task = self.loop.create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def drained(self, rev: Revision) -> None:
        if self.on_drained is not None:
            self.on_drained()

    # -- housekeeping ------------------------------------------------------------------

    def tick(self) -> None:
        """Once a second: close idle clients and expired pooled connections."""
        now = self.loop.time()
        for rev in self.revisions.values():
            for inst in rev.instances:
                if inst.idle:
                    inst.sweep(now)
            if rev.waiters:
                self.demand(rev)
        limit = now - self.config.keepalive_timeout
        for conn in [c for c in self.connections if c.idle_since(limit)]:
            conn.expire()

    def close_idle(self) -> None:
        """On shutdown: close client connections with no exchange in progress."""
        for conn in list(self.connections):
            conn.close_if_idle()
