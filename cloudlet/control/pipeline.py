"""From an uploaded archive to a serving revision: build, start, verify, switch, drain.

Knative-style split: the pipeline decides *what* runs; the runtime backend runs it; the router
only learns the result through the route feed. A failed build or start never touches the
revision that is serving.
"""

from __future__ import annotations

import asyncio
import logging
import secrets
import shutil
import time
from dataclasses import asdict
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sqlalchemy import select

from cloudlet.build.archive import ArchiveLimits
from cloudlet.build.builder import BuildResult, build_revision
from cloudlet.build.errors import BuildError
from cloudlet.control.analysis import analyze_source, log_summary
from cloudlet.runtime.base import RevisionSpec, StartError
from cloudlet.statuses import IN_BUILD, IN_ROLLOUT, TERMINAL
from cloudlet.store.models import App, Deployment, EnvironmentVariable

if TYPE_CHECKING:
    from cloudlet.control.platform import Platform

log = logging.getLogger("cloudlet.pipeline")

IMPORT_HINT = (
    "Fix the error shown above. If the app needs configuration, set it with "
    "`fastapi cloud env set NAME VALUE` and deploy again."
)
START_HINT = (
    "The app imported but did not start serving. Check its startup code (lifespan / "
    "on_event handlers) and `fastapi cloud logs`."
)
OOM_HINT = "The app used more memory than its limit; reduce memory use at start-up."


class Pipeline:
    def __init__(self, platform: Platform, workers: int = 2) -> None:
        self.platform = platform
        self._queue: asyncio.Queue[str] = asyncio.Queue()
        self._workers = workers
        self._tasks: list[asyncio.Task[None]] = []
        # One rollout per app at a time: two deploys of one app must not race for the switch.
        self._app_locks: dict[str, asyncio.Lock] = {}

    # -- lifecycle -----------------------------------------------------------------------

    def start(self) -> None:
        for n in range(self._workers):
            self._tasks.append(asyncio.create_task(self._worker(), name=f"build-worker-{n}"))

    async def stop(self) -> None:
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        self._tasks.clear()

    def enqueue(self, deployment_id: str) -> None:
        self._queue.put_nowait(deployment_id)

    async def _worker(self) -> None:
        while True:
            deployment_id = await self._queue.get()
            try:
                await self.process(deployment_id)
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # a bug here must not take the worker down
                log.exception("deployment %s failed unexpectedly", deployment_id)
                await self._fail(
                    deployment_id, "failed", "internal_error", "Internal error", repr(exc), ""
                )

    # -- helpers ---------------------------------------------------------------------------

    async def _set_status(self, deployment_id: str, status: str, **fields: Any) -> None:
        async with self.platform.sessions() as session:
            deployment = await session.get(Deployment, deployment_id)
            if deployment is None:
                return
            deployment.status = status
            for key, value in fields.items():
                setattr(deployment, key, value)
            await session.commit()
        self.platform.buildlogs.notify(deployment_id)

    async def _log(self, deployment_id: str, message: str) -> None:
        await self.platform.buildlogs.append(deployment_id, message)

    async def _fail(
        self, deployment_id: str, status: str, code: str, title: str, message: str, hint: str
    ) -> None:
        await self._set_status(
            deployment_id,
            status,
            failure_code=code,
            failure_title=title,
            failure_message=message,
            failure_hint=hint,
        )

    def _lock(self, app_id: str) -> asyncio.Lock:
        return self._app_locks.setdefault(app_id, asyncio.Lock())

    async def app_env(self, app_id: str) -> dict[str, str]:
        async with self.platform.sessions() as session:
            rows = await session.scalars(
                select(EnvironmentVariable).where(EnvironmentVariable.app_id == app_id)
            )
            return {r.name: self.platform.secrets.decrypt(r.value_encrypted) for r in rows.all()}

    def spec_for(
        self, deployment: Deployment, result: dict[str, Any], env: dict[str, str]
    ) -> RevisionSpec:
        return RevisionSpec(
            revision_id=deployment.id,
            app_id=deployment.app_id,
            python=Path(result["python"]),
            project_dir=Path(result["project_dir"]),
            import_root=Path(result["import_root"]),
            entrypoint=result["entrypoint"],
            env=env,
            memory_limit_mb=self.platform.settings.memory_limit_mb,
        )

    # -- the pipeline ------------------------------------------------------------------------

    async def process(self, deployment_id: str) -> None:
        async with self.platform.sessions() as session:
            deployment = await session.get(Deployment, deployment_id)
            if deployment is None or deployment.status in TERMINAL:
                return
            app = await session.get(App, deployment.app_id)
            if app is None:
                return
            newer = await session.scalar(
                select(Deployment.id).where(
                    Deployment.app_id == app.id,
                    Deployment.status == "ready_for_build",
                    Deployment.created_at > deployment.created_at,
                )
            )
            resume = deployment.build_result is not None and deployment.status in IN_ROLLOUT
        if newer is not None and not resume:
            await self._log(
                deployment_id, "A newer deployment of this app is queued: skipping this one."
            )
            await self._set_status(deployment_id, "build_skipped_superseded")
            return
        async with self._lock(app.id):
            if resume:
                assert deployment.build_result is not None
                result = deployment.build_result
                await self._log(deployment_id, "Resuming the rollout after a restart.")
            else:
                built = await self._build(deployment, app)
                if built is None:
                    return
                result = built
            await self._start_and_switch(deployment_id, app.id, result, prepared=not resume)

    async def _build(self, deployment: Deployment, app: App) -> dict[str, Any] | None:
        settings = self.platform.settings
        revision_dir = self.platform.revision_dir(deployment.id)
        if revision_dir.exists():  # left over from an attempt cut short by a crash
            await asyncio.to_thread(shutil.rmtree, revision_dir)
        archive = self.platform.archive_path(deployment.source_deployment_id or deployment.id)
        if not archive.exists():
            await self._log(deployment.id, "The uploaded source is missing; deploy again.")
            await self._fail(
                deployment.id,
                "failed",
                "archive_missing",
                "Upload missing",
                "The uploaded source of this deployment is no longer stored.",
                "Run `fastapi deploy` again.",
            )
            return None
        await self._set_status(deployment.id, "building")
        await self._log(deployment.id, f"Building {app.name} (deployment {deployment.slug})")
        started = time.monotonic()

        async def log_line(line: str) -> None:
            await self._log(deployment.id, line)

        try:
            built: BuildResult = await build_revision(
                archive,
                revision_dir,
                app_directory=app.directory,
                uv_cache=settings.uv_cache_dir,
                log=log_line,
                limits=ArchiveLimits(
                    max_files=settings.max_archive_files,
                    max_unpacked_bytes=settings.max_unpacked_bytes,
                    max_compressed_bytes=settings.max_archive_bytes,
                ),
                timeout_s=settings.build_timeout_s,
            )
        except BuildError as exc:
            await self._log(deployment.id, f"Build failed: {exc.title}. {exc.message}")
            if exc.hint:
                await self._log(deployment.id, f"Hint: {exc.hint}")
            await self._fail(
                deployment.id, exc.status, exc.error_code, exc.title, exc.message, exc.hint
            )
            await asyncio.to_thread(shutil.rmtree, revision_dir, True)
            return None
        result = {k: str(v) for k, v in asdict(built).items()}

        # Import the app once now, in the zygote the instances will be forked from: an import
        # error is a build failure the CLI can explain (contract §13), not a silent crash later.
        # The analyzer reads the source while the zygote imports the app.
        analysis = asyncio.create_task(analyze_source(built.project_dir))
        await self._log(deployment.id, f"Importing {built.entrypoint}…")
        env = await self.app_env(app.id)
        spec = self.spec_for(deployment, result, env)
        try:
            await self.platform.runtime.prepare(spec)
        except StartError as exc:
            analysis.cancel()
            for line in exc.detail.splitlines()[-60:]:
                await self._log(deployment.id, line)
            status = "building_image_failed"
            title = (
                "Out of memory while importing the app" if exc.oom else "The app failed to import"
            )
            await self._fail(
                deployment.id,
                status,
                "app_oom" if exc.oom else "app_import_failed",
                title,
                exc.detail[-4000:] or exc.message,
                OOM_HINT if exc.oom else IMPORT_HINT,
            )
            await self.platform.runtime.stop_revision(deployment.id, drain_s=0)
            return None
        report = await analysis
        await log_summary(report, log_line)
        elapsed = time.monotonic() - started
        await self._log(deployment.id, f"Build complete in {elapsed:.1f}s.")
        await self._set_status(deployment.id, "deploying", build_result=result, analysis=report)
        return result

    async def _start_and_switch(
        self, deployment_id: str, app_id: str, result: dict[str, Any], *, prepared: bool
    ) -> None:
        platform = self.platform
        async with platform.sessions() as session:
            deployment = await session.get(Deployment, deployment_id)
            assert deployment is not None
            app = await session.get(App, app_id)
            initial = platform.initial_instances(app)
        runtime = platform.runtime
        if not prepared:
            env = await self.app_env(app_id)
            try:
                await runtime.prepare(self.spec_for(deployment, result, env))
            except StartError as exc:
                await self._fail(
                    deployment_id,
                    "verifying_failed",
                    "app_import_failed",
                    "The app failed to import",
                    exc.detail[-4000:] or exc.message,
                    IMPORT_HINT,
                )
                await runtime.stop_revision(deployment_id, drain_s=0)
                return
        await self._set_status(deployment_id, "verifying")
        try:
            for _ in range(initial):
                await runtime.start_instance(deployment_id)
        except StartError as exc:
            await self._fail(
                deployment_id,
                "verification_failed_oom" if exc.oom else "verifying_failed",
                "app_oom" if exc.oom else "app_start_failed",
                "Out of memory at start-up" if exc.oom else "The app did not start",
                exc.detail[-4000:] or exc.message,
                OOM_HINT if exc.oom else START_HINT,
            )
            await runtime.stop_revision(deployment_id, drain_s=0)
            return
        await self.switch(app_id, deployment_id)
        await self._set_status(deployment_id, "success", failure_code=None)

    async def switch(self, app_id: str, deployment_id: str) -> None:
        """Point the app's traffic at a ready revision, then drain and stop the old one."""
        platform = self.platform
        async with platform.sessions() as session:
            app = await session.get(App, app_id)
            assert app is not None
            previous = app.live_deployment_id
            app.live_deployment_id = deployment_id
            await session.commit()
        platform.autoscaler.changed()
        await platform.publish_routes(wait=True)
        if previous and previous != deployment_id:
            platform.spawn(platform.retire(previous), f"retire-{previous}")

    async def redeploy(self, app_id: str, reason: str) -> str | None:
        """A new deployment of the app's current code (e.g. after an env change)."""
        async with self.platform.sessions() as session:
            app = await session.get(App, app_id)
            if app is None:
                return None
            source = app.live_deployment_id
            if source is None:
                source = await session.scalar(
                    select(Deployment.id)
                    .where(Deployment.app_id == app_id, Deployment.uploaded.is_(True))
                    .order_by(Deployment.created_at.desc())
                )
            if source is None:
                return None
            origin = await session.get(Deployment, source)
            assert origin is not None
            root = origin.source_deployment_id or origin.id
            if not self.platform.archive_path(root).exists():
                return None
            deployment = Deployment(
                app_id=app_id,
                slug=f"{app.slug}-{secrets.token_hex(3)}",
                status="ready_for_build",
                uploaded=True,
                archive_size_bytes=origin.archive_size_bytes,
                source_deployment_id=root,
            )
            session.add(deployment)
            await session.commit()
        await self._log(deployment.id, f"Redeploying: {reason}.")
        self.enqueue(deployment.id)
        return deployment.id

    async def recover(self) -> None:
        """After a restart: pick up builds cut short, fail what cannot be resumed cleanly."""
        async with self.platform.sessions() as session:
            rows = (
                await session.scalars(
                    select(Deployment)
                    .where(Deployment.status.in_(IN_BUILD | IN_ROLLOUT))
                    .order_by(Deployment.created_at)
                )
            ).all()
        for deployment in rows:
            if deployment.status in IN_BUILD:
                await self._log(
                    deployment.id, "Cloudlet restarted during this build: building again."
                )
                await self._set_status(deployment.id, "ready_for_build")
            self.enqueue(deployment.id)
