"""Everything one control-plane process runs, wired together."""

from __future__ import annotations

import asyncio
import logging
import re
import time
from collections.abc import Coroutine
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from cloudlet.autoscale.autoscaler import Autoscaler
from cloudlet.control.buildlog import BuildLogHub
from cloudlet.control.domains import DomainVerifier
from cloudlet.control.pipeline import Pipeline
from cloudlet.router.feed import FeedPublisher, RouteTable
from cloudlet.router.feed import RevisionSpec as RoutedRevision
from cloudlet.runtime.base import ZYGOTE, Backend, LogRecord, RuntimeEvent, StartError
from cloudlet.runtime.local import LocalRuntime
from cloudlet.scaling import scaling_of
from cloudlet.settings import Settings
from cloudlet.store.applogs import AppLogEntry, AppLogStore
from cloudlet.store.crypto import SecretBox, hash_token
from cloudlet.store.db import create_engine, migrate, sessionmaker
from cloudlet.store.models import App, CustomDomain, Deployment, Team, TeamMember, User, UserToken

log = logging.getLogger("cloudlet")


class Platform:
    def __init__(self, settings: Settings, runtime: Backend | None = None) -> None:
        self.settings = settings
        settings.data_dir.mkdir(parents=True, exist_ok=True)
        for folder in (settings.blobs_dir, settings.builds_dir, settings.run_dir):
            folder.mkdir(parents=True, exist_ok=True)
        self.engine = create_engine(settings.resolved_database_url)
        self.sessions = sessionmaker(self.engine)
        self.secrets = SecretBox.from_data_dir(settings.data_dir, settings.secret_key)
        self.applogs = AppLogStore(settings.logs_dir, settings.log_retention_days)
        self.buildlogs = BuildLogHub(self.sessions)
        self.runtime: Backend = runtime or LocalRuntime(
            settings.run_dir.resolve(),
            on_log=self._on_log,
            on_event=self._on_event,
            sched_batch=settings.sched_batch,
        )
        self.autoscaler = Autoscaler(self)
        self.feed = FeedPublisher(self.feed_socket, on_demand=self.autoscaler.demand)
        self.pipeline = Pipeline(self, workers=settings.build_workers)
        self.domains = DomainVerifier(self)
        self._routes_lock = asyncio.Lock()
        self._background: set[asyncio.Task[None]] = set()
        self._last_failure: dict[str, str] = {}

    @property
    def feed_socket(self) -> Path:
        return self.settings.run_dir.resolve() / "feed.sock"

    def archive_path(self, deployment_id: str) -> Path:
        return self.settings.blobs_dir / f"{deployment_id}.tar.zst"

    def revision_dir(self, deployment_id: str) -> Path:
        return self.settings.builds_dir.resolve() / deployment_id

    # -- lifecycle -------------------------------------------------------------------------

    async def start(self) -> None:
        await migrate(self.engine)
        await self.bootstrap_admin()
        await self.feed.start()
        self.pipeline.start()
        self.domains.start()
        await self.restore()
        await self.pipeline.recover()
        self.autoscaler.start()

    async def stop(self) -> None:
        await self.autoscaler.stop()
        await self.pipeline.stop()
        await self.domains.stop()
        for task in list(self._background):
            task.cancel()
        await asyncio.gather(*self._background, return_exceptions=True)
        await self.runtime.close()
        await self.feed.close()
        self.applogs.close()
        await self.engine.dispose()

    def spawn(self, coro: Coroutine[Any, Any, None], name: str) -> None:
        task = asyncio.create_task(coro, name=name)
        self._background.add(task)
        task.add_done_callback(self._background.discard)

    async def bootstrap_admin(self) -> None:
        """CLOUDLET_ADMIN_EMAIL + CLOUDLET_ADMIN_TOKEN: an admin with a personal team and token."""
        email, token = self.settings.admin_email, self.settings.admin_token
        if not email or not token:
            return
        async with self.sessions() as session:
            user = await session.scalar(select(User).where(User.email == email))
            if user is None:
                user = User(email=email, is_admin=True)
                session.add(user)
                await session.flush()
            user.is_active = True
            user.is_admin = True
            await ensure_personal_team(session, user)
            digest = hash_token(token)
            row = await session.scalar(select(UserToken).where(UserToken.token_hash == digest))
            if row is None:
                session.add(UserToken(user_id=user.id, token_hash=digest, name="bootstrap"))
            else:
                row.user_id, row.revoked_at, row.expires_at = user.id, None, None
            await session.commit()

    async def restore(self) -> None:
        """Bring back every app that was serving, from the store alone."""
        async with self.sessions() as session:
            rows = (
                (
                    await session.execute(
                        select(Deployment).join(App, App.live_deployment_id == Deployment.id)
                    )
                )
                .scalars()
                .all()
            )
        for deployment in rows:
            self.spawn(self._restore_one(deployment), f"restore-{deployment.id}")

    async def _restore_one(self, deployment: Deployment) -> None:
        if deployment.build_result is None:
            return
        env = await self.pipeline.app_env(deployment.app_id)
        spec = self.pipeline.spec_for(deployment, deployment.build_result, env)
        async with self.sessions() as session:
            initial = self.initial_instances(await session.get(App, deployment.app_id))
        try:
            await self.runtime.prepare(spec)
            for _ in range(initial):
                await self.runtime.start_instance(deployment.id)
        except StartError as exc:
            log.error("could not restore %s: %s", deployment.id, exc.message)
            await self.pipeline._fail(
                deployment.id,
                "degraded",
                "restore_failed",
                "The app did not come back",
                exc.detail[-4000:] or exc.message,
                "Deploy again, or check `fastapi cloud logs`.",
            )
            return
        await self.publish_routes()

    def initial_instances(self, app: App | None) -> int:
        """Instances a revision starts with before the autoscaler takes over: warm at once,
        so the first request after a deploy or a restart is not a cold start."""
        floor = 0 if app is None else scaling_of(app).min_instances
        return max(1, self.settings.instances_per_app, floor)

    # -- routing ---------------------------------------------------------------------------

    async def route_table(self) -> RouteTable:
        async with self.sessions() as session:
            apps = (
                await session.scalars(select(App).where(App.live_deployment_id.is_not(None)))
            ).all()
            domains = (
                await session.scalars(
                    select(CustomDomain).where(CustomDomain.status == "origin_setup_success")
                )
            ).all()
        hosts: dict[str, str] = {}
        revisions: dict[str, RoutedRevision] = {}
        live = {a.id: a for a in apps}
        for app in apps:
            assert app.live_deployment_id is not None
            rev = app.live_deployment_id
            hosts[f"{app.slug}.{self.settings.domain}"] = rev
            draining = self.autoscaler.draining(rev)
            revisions[rev] = {
                "app": app.slug,
                "instances": [
                    {"id": i.id, "socket": str(i.socket_path)}
                    for i in self.runtime.instances(rev)
                    if i.id not in draining
                ],
                "scale": self.autoscaler.scale_spec(rev),
            }
        for domain in domains:
            owner = live.get(domain.app_id)
            if owner is not None and owner.live_deployment_id:
                hosts[domain.name] = owner.live_deployment_id
        return RouteTable(hosts=hosts, revisions=revisions)

    async def publish_routes(self, wait: bool = False) -> None:
        async with self._routes_lock:
            table = await self.route_table()
            generation = self.feed.publish(table)
        if wait:
            await self.feed.wait_applied(generation, timeout=10.0)

    async def scaling_changed(self, app_id: str) -> None:
        """An app's scaling settings (or its team's limits) changed: act on them now."""
        self.autoscaler.changed()
        await self.autoscaler.decide()
        await self.publish_routes()

    async def retire(self, deployment_id: str) -> None:
        """Stop a revision that no longer gets traffic, once its in-flight requests are done."""
        deadline = time.monotonic() + self.settings.drain_s
        # The routers report in-flight counts about once a second; polling them is the interface.
        while time.monotonic() < deadline and self.feed.inflight().get(deployment_id, 0) > 0:  # noqa: ASYNC110
            await asyncio.sleep(0.1)
        await self.runtime.stop_revision(deployment_id, drain_s=self.settings.drain_s)

    # -- runtime callbacks -----------------------------------------------------------------

    def _on_log(self, record: LogRecord) -> None:
        entry = AppLogEntry(record.timestamp.astimezone(UTC), record.level, record.message)
        self.applogs.append(record.app_id, entry)

    def _on_event(self, event: RuntimeEvent) -> None:
        if event.kind in ("oom", "exited"):
            self._last_failure[event.revision_id] = event.kind
        self.spawn(self._handle_event(event), f"event-{event.revision_id}")

    async def _handle_event(self, event: RuntimeEvent) -> None:
        async with self.sessions() as session:
            deployment = await session.get(Deployment, event.revision_id)
            if deployment is None:
                return
            # Say it where the developer looks: `fastapi cloud logs`.
            message = EVENT_MESSAGES.get(event.kind)
            if message is not None:
                who = "The app" if event.instance_id == ZYGOTE else f"Instance {event.instance_id}"
                text = message.format(who=who, detail=event.detail.strip())
                level = "info" if event.kind == "restarted" else "error"
                self.applogs.append(deployment.app_id, AppLogEntry(datetime.now(UTC), level, text))
            if event.kind == "gave_up" and deployment.status == "success":
                oom = self._last_failure.get(event.revision_id) == "oom"
                deployment.status = "degraded_oom" if oom else "degraded"
                deployment.failure_code = "app_oom" if oom else "app_crashed"
                deployment.failure_title = (
                    "The app keeps running out of memory" if oom else "The app keeps crashing"
                )
                deployment.failure_message = event.detail
                deployment.failure_hint = "Check `fastapi cloud logs`, fix and deploy again."
                await session.commit()
        await self.publish_routes()


EVENT_MESSAGES = {
    "oom": "{who} went over its memory limit and was stopped: {detail}",
    "exited": "{who} exited unexpectedly: {detail}",
    "restarted": "{who} was restarted ({detail}).",
    "gave_up": "{who} could not be kept running: {detail}",
}


async def ensure_personal_team(session: AsyncSession, user: User) -> Team:
    team = await session.scalar(
        select(Team)
        .join(TeamMember, TeamMember.team_id == Team.id)
        .where(TeamMember.user_id == user.id, Team.is_personal.is_(True))
    )
    if team is not None:
        return team
    base = re.sub(r"[^a-z0-9]+", "-", user.email.split("@")[0].lower()).strip("-") or "team"
    slug = base
    n = 1
    while await session.scalar(select(Team.id).where(Team.slug == slug)) is not None:
        n += 1
        slug = f"{base}-{n}"
    team = Team(slug=slug, name=f"{user.email.split('@')[0]}'s team", is_personal=True)
    session.add(team)
    await session.flush()
    session.add(TeamMember(team_id=team.id, user_id=user.id, role="owner"))
    return team
