"""The local backend: revisions run as processes on this machine (Linux).

Per revision, a zygote imports the app once and forks uvicorn instances on demand; see
zygote.py for the process side and revision.py for supervision.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from pathlib import Path

from . import paths
from .base import Backend, Instance, LogRecord, RevisionSpec, RuntimeEvent, StartError
from .memory import MemoryWatchdog
from .revision import RevisionSupervisor

# close() is a shutdown of the whole platform: in-flight requests get this long.
CLOSE_DRAIN_S = 10.0


class LocalRuntime(Backend):
    def __init__(
        self,
        run_dir: Path,
        *,
        on_log: Callable[[LogRecord], None],
        on_event: Callable[[RuntimeEvent], None],
        ready_timeout_s: float = 60,
        sched_batch: bool = False,
    ) -> None:
        """run_dir holds the sockets and must be short (Unix socket paths: 107 bytes).

        sched_batch puts zygotes and instances in SCHED_BATCH (the CLOUDLET_SCHED_BATCH
        setting; see reference/dataplane.md for what it gains and what it costs neighbours).
        Callbacks run on the event loop and must not block.
        """
        self.run_dir = run_dir.absolute()
        paths.check_run_dir(self.run_dir)
        self._on_log = on_log
        self._on_event = on_event
        self._ready_timeout_s = ready_timeout_s
        self._sched_batch = sched_batch
        self._watchdog = MemoryWatchdog()
        self._revisions: dict[str, RevisionSupervisor] = {}

    async def prepare(self, spec: RevisionSpec) -> None:
        revision = self._revisions.get(spec.revision_id)
        if revision is not None and revision.gave_up:
            await self.stop_revision(spec.revision_id, drain_s=0)
            revision = None
        if revision is None:
            taken = {r.directory.name for r in self._revisions.values()}
            revision = RevisionSupervisor(
                spec,
                self.run_dir / paths.revision_key(spec.revision_id, taken),
                watchdog=self._watchdog,
                on_log=self._on_log,
                on_event=self._on_event,
                ready_timeout_s=self._ready_timeout_s,
                sched_batch=self._sched_batch,
            )
            self._revisions[spec.revision_id] = revision
        try:
            await revision.start()
        except BaseException:
            if self._revisions.get(spec.revision_id) is revision:
                del self._revisions[spec.revision_id]
            raise

    async def start_instance(self, revision_id: str) -> Instance:
        revision = self._revisions.get(revision_id)
        if revision is None:
            raise StartError(f"revision {revision_id} is not prepared")
        await revision.start()
        return await revision.start_instance()

    async def stop_instance(
        self, revision_id: str, instance_id: str, *, drain_s: float = 30
    ) -> None:
        revision = self._revisions.get(revision_id)
        if revision is not None:
            await revision.stop_instance(instance_id, drain_s)

    async def stop_revision(self, revision_id: str, *, drain_s: float = 30) -> None:
        revision = self._revisions.pop(revision_id, None)
        if revision is not None:
            await revision.stop(drain_s)

    def instances(self, revision_id: str) -> list[Instance]:
        revision = self._revisions.get(revision_id)
        return [] if revision is None else revision.ready_instances()

    def is_prepared(self, revision_id: str) -> bool:
        revision = self._revisions.get(revision_id)
        return revision is not None and not revision.gave_up

    async def close(self) -> None:
        revisions = list(self._revisions)
        await asyncio.gather(*(self.stop_revision(r, drain_s=CLOSE_DRAIN_S) for r in revisions))
        await self._watchdog.close()
