"""The autoscaler: how many instances each live revision runs, from what the routers see.

Reactive, after Knative's KPA (shared/reference/autoscaling.md): the observed concurrency
of a revision is what its requests in flight plus the requests held for it add up to
across routers. Scaling up follows the current value at once; scaling down follows the
average over a stable window and at most halves per tick, so a short lull does not throw
away warm instances. A revision that saw no request for its app's
``scale_to_zero_after_s`` goes to zero instances but keeps its zygote (the app stays
imported), so the next request starts an instance with one fork; with the ``zygote_idle_s`` setting
the zygote goes too after that much more idle time, and the next request starts from
nothing (a new zygote imports the app).

From zero, the router holds the first request and pokes (``demand``): an instance is
started at once, not at the next tick. Scale-down drains: the instance leaves the routing
table first (and the routers confirm), then gets SIGTERM, and uvicorn finishes what it has
in flight.

Team limits cap how many instances (and how much memory, at the per-instance limit) all
of a team's apps may run together; a revision that cannot start an instance for that (or
whose start just failed) gets ``hold = 0`` in the table, so routers answer 503 at once
instead of holding requests that cannot be served.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import deque
from collections.abc import Coroutine
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from sqlalchemy import select

from cloudlet.autoscale.kpa import STABLE_WINDOW_S, UNLIMITED, desired_instances, team_room
from cloudlet.router.feed import ScaleSpec
from cloudlet.runtime.base import RevisionSpec, StartError
from cloudlet.scaling import Scaling, TeamLimits, limits_of, scaling_of
from cloudlet.store.applogs import AppLogEntry
from cloudlet.store.models import App, Deployment, Team

if TYPE_CHECKING:
    from cloudlet.control.platform import Platform

log = logging.getLogger("cloudlet.autoscaler")

# A request may wait for an instance max(HOLD_MIN_S, HOLD_FACTOR * measured start time)
# (Cloud Run's documented pending limit).
HOLD_MIN_S = 10.0
HOLD_FACTOR = 3.5
# After a failed start, requests are refused at once for this long instead of held.
FAILED_START_BACKOFF_S = 5.0
# Live apps are read from the store at most this often (and at once on a change).
REFRESH_S = 5.0


@dataclass
class _Revision:
    revision_id: str
    app_id: str
    app_slug: str
    team_id: str
    scaling: Scaling
    last_busy: float = field(default_factory=time.monotonic)
    samples: deque[tuple[float, int]] = field(default_factory=deque)
    starting: int = 0
    start_s: float | None = None  # moving average of instance start times
    blocked_until: float = 0.0  # refuse (hold 0) until then
    blocked_reason: str = ""
    logged_reason: str = ""
    stopping: set[str] = field(default_factory=set)
    retiring_zygote: bool = False
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)


class Autoscaler:
    def __init__(self, platform: Platform) -> None:
        self.platform = platform
        self._revisions: dict[str, _Revision] = {}
        self._teams: dict[str, TeamLimits] = {}
        self._refreshed = float("-inf")
        self._task: asyncio.Task[None] | None = None
        self._tasks: set[asyncio.Task[None]] = set()

    # -- interface for the platform and the router feed ---------------------------------

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="autoscaler")

    async def stop(self) -> None:
        tasks = [t for t in (self._task, *self._tasks) if t is not None]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    def changed(self) -> None:
        """Live apps or their settings changed: read them again at the next decision."""
        self._refreshed = float("-inf")

    def demand(self, revision_id: str) -> None:
        """A router holds a request for ``revision_id``: start an instance now if it has none."""
        rev = self._revisions.get(revision_id)
        if rev is None:
            # Not known yet (just switched): decide at once with fresh data.
            self._spawn(self._demand_unknown(revision_id))
            return
        rev.last_busy = time.monotonic()
        if self._current(rev) == 0 and time.monotonic() >= rev.blocked_until:
            self._scale_to(rev, 1)

    def draining(self, revision_id: str) -> set[str]:
        """Instances of ``revision_id`` on their way out: not to be routed to."""
        rev = self._revisions.get(revision_id)
        return rev.stopping if rev is not None else set()

    def scale_spec(self, revision_id: str) -> ScaleSpec:
        """What routers need to know: admission limit, hold time, queue size."""
        rev = self._revisions.get(revision_id)
        queue = self.platform.settings.hold_queue
        if rev is None:
            return {"limit": 0, "hold": HOLD_MIN_S, "queue": queue}
        hold = HOLD_MIN_S if rev.start_s is None else max(HOLD_MIN_S, HOLD_FACTOR * rev.start_s)
        if time.monotonic() < rev.blocked_until:
            hold = 0.0
        return {"limit": rev.scaling.admission_limit, "hold": hold, "queue": queue}

    # -- the loop ------------------------------------------------------------------------

    async def _run(self) -> None:
        tick = self.platform.settings.autoscale_tick_s
        while True:
            try:
                await self.decide()
            except Exception:
                log.exception("autoscaler: decision failed")
            await asyncio.sleep(tick)

    async def decide(self) -> None:
        """One decision for every live revision."""
        now = time.monotonic()
        if now - self._refreshed >= REFRESH_S:
            await self._refresh()
            self._refreshed = now
        feed = self.platform.feed
        inflight, held = feed.inflight(), feed.held()
        republish = False
        zygote_idle_s = self.platform.settings.zygote_idle_s
        for rev in list(self._revisions.values()):
            observed = inflight.get(rev.revision_id, 0) + held.get(rev.revision_id, 0)
            self._scale_to(rev, self._desired(rev, observed, now))
            if (
                zygote_idle_s > 0
                and self._current(rev) == 0
                and not rev.retiring_zygote
                and now - rev.last_busy >= rev.scaling.scale_to_zero_after_s + zygote_idle_s
                and self.platform.runtime.is_prepared(rev.revision_id)
            ):
                rev.retiring_zygote = True
                self._spawn(self._retire_zygote(rev))
            if rev.blocked_until and now >= rev.blocked_until:
                rev.blocked_until = 0.0  # routers may hold requests again
                republish = True
        if republish:
            await self.platform.publish_routes()

    def _desired(self, rev: _Revision, observed: int, now: float) -> int:
        samples = rev.samples
        samples.append((now, observed))
        while samples and samples[0][0] < now - STABLE_WINDOW_S:
            samples.popleft()
        if observed > 0:
            rev.last_busy = now
        return desired_instances(
            rev.scaling,
            observed=observed,
            average=sum(n for _, n in samples) / len(samples),
            current=self._current(rev),
            idle_s=now - rev.last_busy,
        )

    def _current(self, rev: _Revision) -> int:
        ready = self.platform.runtime.instances(rev.revision_id)
        return len([i for i in ready if i.id not in rev.stopping]) + rev.starting

    def _scale_to(self, rev: _Revision, desired: int) -> None:
        current = self._current(rev)
        if desired > current:
            allowed = self._team_room(rev)
            if allowed < desired - current:
                self._block(rev, "team_limit")
            for _ in range(min(desired - current, allowed)):
                rev.starting += 1
                self._spawn(self._start(rev))
        elif desired < current and rev.starting == 0:
            ready = [
                i
                for i in self.platform.runtime.instances(rev.revision_id)
                if i.id not in rev.stopping
            ]
            # The newest go first: the oldest have the warmest caches and pooled connections.
            for inst in ready[desired:]:
                rev.stopping.add(inst.id)
                self._spawn(self._stop(rev, inst.id))

    def _team_room(self, rev: _Revision) -> int:
        """How many more instances the revision's team may start now."""
        limits = self._teams.get(rev.team_id)
        if limits is None:
            return UNLIMITED
        used = sum(self._current(r) for r in self._revisions.values() if r.team_id == rev.team_id)
        return team_room(limits, used, self.platform.settings.memory_limit_mb)

    # -- acting --------------------------------------------------------------------------

    async def _start(self, rev: _Revision) -> None:
        """Start one instance (``rev.starting`` was counted up for it by the caller)."""
        platform = self.platform
        started = time.monotonic()
        try:
            async with rev.lock:
                if not platform.runtime.is_prepared(rev.revision_id):
                    # From nothing: the zygote was stopped after a long idle time.
                    spec = await self._spec(rev.revision_id)
                    if spec is None:
                        raise StartError("the deployment's build is gone; deploy again")
                    await platform.runtime.prepare(spec)
            await platform.runtime.start_instance(rev.revision_id)
        except StartError as exc:
            if self._revisions.get(rev.revision_id) is not rev:
                return  # replaced by a new deployment meanwhile: its pipeline stops it
            log.warning("autoscaler: could not start %s: %s", rev.revision_id, exc.message)
            self._block(rev, "failed", exc.message)
            return
        finally:
            rev.starting -= 1
        took = time.monotonic() - started
        rev.start_s = took if rev.start_s is None else 0.7 * rev.start_s + 0.3 * took
        await platform.publish_routes()

    async def _stop(self, rev: _Revision, instance_id: str) -> None:
        platform = self.platform
        try:
            # Out of every router's table first, so no new request goes there; what is in
            # flight finishes (uvicorn's graceful shutdown waits for it).
            await platform.publish_routes(wait=True)
            await platform.runtime.stop_instance(
                rev.revision_id, instance_id, drain_s=platform.settings.drain_s
            )
        finally:
            rev.stopping.discard(instance_id)

    async def _retire_zygote(self, rev: _Revision) -> None:
        try:
            async with rev.lock:  # not while an instance start prepares it again
                if self._current(rev) == 0:
                    log.info("autoscaler: %s idle, stopping its zygote", rev.revision_id)
                    await self.platform.runtime.stop_revision(rev.revision_id, drain_s=0)
        finally:
            rev.retiring_zygote = False

    def _block(self, rev: _Revision, kind: str, detail: str = "") -> None:
        """Refuse requests at once for a while, and say why in the app's log (once)."""
        first = time.monotonic() >= rev.blocked_until
        rev.blocked_until = time.monotonic() + FAILED_START_BACKOFF_S
        if kind == "team_limit":
            limits = self._teams.get(rev.team_id)
            reason = (
                "Not starting another instance: the team's limit "
                f"({_describe(limits)}) is reached. Requests get 503 until capacity frees up."
            )
        else:
            reason = f"An instance could not be started: {detail}"
        if reason != rev.logged_reason:
            rev.logged_reason = reason
            entry = AppLogEntry(datetime.now(UTC), "error", reason)
            self.platform.applogs.append(rev.app_id, entry)
        if first:
            self._spawn(self.platform.publish_routes())

    def _spawn(self, coro: Coroutine[Any, Any, None]) -> None:
        task = asyncio.create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    # -- store ---------------------------------------------------------------------------

    async def _refresh(self) -> None:
        async with self.platform.sessions() as session:
            rows = (
                await session.execute(
                    select(App, Deployment.status)
                    .join(Deployment, Deployment.id == App.live_deployment_id)
                    .where(App.live_deployment_id.is_not(None))
                )
            ).all()
            teams = (await session.scalars(select(Team))).all()
        self._teams = {t.id: limits_of(t) for t in teams}
        live: dict[str, _Revision] = {}
        for app, status in rows:
            rid = app.live_deployment_id
            # "verifying": switched to, not yet marked success. A degraded revision (its
            # supervisor gave up) is not started again until it is deployed again.
            if rid is None or status not in ("success", "verifying"):
                continue
            rev = self._revisions.get(rid)
            if rev is None:
                rev = _Revision(rid, app.id, app.slug, app.team_id, scaling_of(app))
            rev.scaling = scaling_of(app)
            rev.team_id = app.team_id
            live[rid] = rev
        self._revisions = live

    async def _demand_unknown(self, revision_id: str) -> None:
        await self._refresh()
        self._refreshed = time.monotonic()
        if revision_id in self._revisions:
            self.demand(revision_id)

    async def _spec(self, revision_id: str) -> RevisionSpec | None:
        platform = self.platform
        async with platform.sessions() as session:
            deployment = await session.get(Deployment, revision_id)
        if deployment is None or deployment.build_result is None:
            return None
        env = await platform.pipeline.app_env(deployment.app_id)
        return platform.pipeline.spec_for(deployment, deployment.build_result, env)


def _describe(limits: TeamLimits | None) -> str:
    if limits is None:
        return "none"
    parts = []
    if limits.max_instances is not None:
        parts.append(f"{limits.max_instances} instances")
    if limits.max_memory_mb is not None:
        parts.append(f"{limits.max_memory_mb} MB")
    return ", ".join(parts) or "none"
