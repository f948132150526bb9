"""One revision on this machine: its zygote, its instances, and keeping them running.

Each instance is owned by one task (`_keep_running`) from its first start to its stop: it
spawns the process, waits for readiness, restarts it with back-off when it dies, and is the
only code that signals it. Stopping an instance is asking that task to stop.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import secrets
import signal
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from functools import partial
from pathlib import Path
from typing import Any

from . import paths
from .backoff import MAX_FAILED_STARTS, RestartBackoff
from .base import ZYGOTE, Instance, LogRecord, RevisionSpec, RuntimeEvent, StartError
from .environment import app_environment
from .logs import LogServer, OutputTail, pump
from .memory import MemoryWatchdog, rss_bytes
from .process import ProcessHandle
from .readiness import wait_until_ready
from .zygote_process import ExitStatus, ZygoteGone, ZygoteProcess

logger = logging.getLogger(__name__)

MIB = 1024 * 1024
EXIT_WAIT_S = 10.0  # after SIGKILL, or for a process whose zygote died, before giving up on it
OUTPUT_WAIT_S = 2.0  # for the last lines of a dead process to be read
EVENT_TAIL_LINES = 20


@dataclass(eq=False)
class _Run:
    """One process of an instance; a restart is a new run of the same instance."""

    exit: asyncio.Future[ExitStatus]
    pid: int = 0
    handle: ProcessHandle | None = None
    tail: OutputTail = field(default_factory=OutputTail)
    ready_at: float | None = None
    oom_rss: int | None = None
    closed_streams: int = 0
    output_closed: asyncio.Event = field(default_factory=asyncio.Event)

    def stream_closed(self) -> None:
        self.closed_streams += 1
        if self.closed_streams == 2:  # stdout and stderr
            self.output_closed.set()

    async def wait_output(self) -> None:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self.output_closed.wait(), OUTPUT_WAIT_S)


@dataclass(eq=False)
class _Slot:
    """An instance: a stable id and socket path across restarts."""

    id: str
    socket_path: Path
    run: _Run | None = None
    ready: bool = False
    drain_s: float = 30.0
    stop_requested: asyncio.Event = field(default_factory=asyncio.Event)
    task: asyncio.Task[None] | None = None


class RevisionSupervisor:
    """The processes of one revision; LocalRuntime holds one per prepared revision."""

    def __init__(
        self,
        spec: RevisionSpec,
        directory: Path,
        *,
        watchdog: MemoryWatchdog,
        on_log: Callable[[LogRecord], None],
        on_event: Callable[[RuntimeEvent], None],
        ready_timeout_s: float,
        sched_batch: bool,
    ) -> None:
        self.spec = spec
        self.directory = directory
        self._watchdog = watchdog
        self._on_log = on_log
        self._on_event = on_event
        self._ready_timeout_s = ready_timeout_s
        self._sched_batch = sched_batch
        self._limit_bytes = spec.memory_limit_mb * MIB
        self._env = app_environment(spec)
        self._log_server: LogServer | None = None
        self._slots: dict[str, _Slot] = {}
        self._next_n = 0
        self._zygote: ZygoteProcess | None = None
        self._zygote_tail = OutputTail()
        self._zygote_oom_rss: int | None = None
        self._zygote_up = asyncio.Event()
        self._gave_up = asyncio.Event()
        self._stopping = asyncio.Event()
        self._start_task: asyncio.Task[None] | None = None
        self._zygote_task: asyncio.Task[None] | None = None
        self._confirming: set[asyncio.Task[None]] = set()

    @property
    def gave_up(self) -> bool:
        return self._gave_up.is_set()

    # -- the revision ---------------------------------------------------------------------

    async def start(self) -> None:
        """Start the zygote (once, however many callers); StartError if it cannot import."""
        if self._start_task is None:
            self._start_task = asyncio.create_task(self._start())
        try:
            await asyncio.shield(self._start_task)
        except asyncio.CancelledError:
            if self._start_task.cancelled():  # by stop(), not by our caller
                raise StartError(f"revision {self.spec.revision_id} was stopped") from None
            raise

    async def _start(self) -> None:
        paths.prepare_directory(self.directory)
        self._log_server = LogServer(self.directory / paths.LOG_SOCKET, self._handle_stream)
        await self._log_server.start()
        try:
            self._zygote = await self._boot_zygote()
        except BaseException:
            await self._log_server.close()
            paths.remove_directory(self.directory)
            raise
        self._zygote_up.set()
        self._zygote_task = asyncio.create_task(self._keep_zygote())

    async def stop(self, drain_s: float) -> None:
        """Stop every instance (gracefully, drain_s each, concurrently), then the zygote."""
        self._stopping.set()
        if self._start_task is not None and not self._start_task.done():
            self._start_task.cancel()
        slots = list(self._slots.values())
        for slot in slots:
            slot.drain_s = drain_s
            slot.stop_requested.set()
        await asyncio.gather(*(s.task for s in slots if s.task), return_exceptions=True)
        if self._start_task is not None:
            await asyncio.gather(self._start_task, return_exceptions=True)
        if self._zygote_task is not None:
            self._zygote_task.cancel()
            await asyncio.gather(self._zygote_task, return_exceptions=True)
        if self._zygote is not None:
            self._watchdog.unwatch(self._zygote.pid)
            await self._zygote.stop()
        if self._log_server is not None:
            await self._log_server.close()
        paths.remove_directory(self.directory)

    # -- the zygote -----------------------------------------------------------------------

    async def _boot_zygote(self) -> ZygoteProcess:
        spec = self.spec
        self._zygote_tail = OutputTail()
        self._zygote_oom_rss = None
        try:
            zygote = await ZygoteProcess.launch(
                python=spec.python,
                project_dir=spec.project_dir.absolute(),
                import_root=spec.import_root.absolute(),
                entrypoint=spec.entrypoint,
                env=self._env,
                emit=self._zygote_line,
                sched_batch=self._sched_batch,
            )
        except OSError as error:  # no such python, no such project directory ...
            raise StartError(f"could not start the zygote: {error}") from None

        def over_limit(rss: int) -> None:
            self._zygote_oom_rss = rss
            logger.warning("zygote of %s over its memory limit: killed", spec.revision_id)
            zygote.kill()

        self._watchdog.watch(zygote.pid, self._limit_bytes, over_limit)
        try:
            await asyncio.wait_for(zygote.wait_ready(), self._ready_timeout_s)
        except ZygoteGone as gone:
            self._watchdog.unwatch(zygote.pid)
            if self._zygote_oom_rss is not None:
                raise StartError(
                    f"importing {spec.entrypoint} went over the memory limit "
                    f"({self._over_limit(self._zygote_oom_rss)})",
                    self._zygote_tail.text(),
                    oom=True,
                ) from None
            raise StartError(
                f"could not import {spec.entrypoint}: {gone.error}", self._zygote_tail.text()
            ) from None
        except BaseException as error:  # a timeout, or we are being cancelled
            self._watchdog.unwatch(zygote.pid)
            zygote.kill()
            await asyncio.shield(zygote.wait())
            if isinstance(error, TimeoutError):
                raise StartError(
                    f"importing {spec.entrypoint} took longer than {self._ready_timeout_s:g} s",
                    self._zygote_tail.text(),
                ) from None
            raise
        return zygote

    async def _keep_zygote(self) -> None:
        """Restart the zygote with back-off when it dies; give up after repeated failures."""
        backoff = RestartBackoff()
        while True:
            zygote = self._zygote
            assert zygote is not None
            up_since = time.monotonic()
            await zygote.wait()
            if self._stopping.is_set():
                return
            self._zygote_up.clear()
            self._watchdog.unwatch(zygote.pid)
            await zygote.drain_output()
            if self._zygote_oom_rss is not None:
                self._event(ZYGOTE, "oom", self._over_limit(self._zygote_oom_rss))
            else:
                detail = f"the zygote exited ({zygote.describe_exit()})"
                self._event(ZYGOTE, "exited", _with_tail(detail, self._zygote_tail))
            delay = backoff.next_delay(time.monotonic() - up_since)
            failures = 0
            while True:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._stopping.wait(), delay)
                if self._stopping.is_set():
                    return
                try:
                    self._zygote = await self._boot_zygote()
                    break
                except StartError as error:
                    failures += 1
                    kind = "oom" if error.oom else "exited"
                    self._event(ZYGOTE, kind, _with_text(error.message, error.detail))
                    if failures >= MAX_FAILED_STARTS:
                        self._event(ZYGOTE, "gave_up", f"{failures} restarts failed in a row")
                        self._gave_up.set()
                        return
                    delay = backoff.next_delay(0)
            self._event(ZYGOTE, "restarted", f"pid {self._zygote.pid}")
            self._zygote_up.set()

    def _zygote_line(self, timestamp: datetime, level: str, message: str) -> None:
        self._zygote_tail.add(message)
        self._log(None, timestamp, level, message)

    # -- instances ------------------------------------------------------------------------

    def ready_instances(self) -> list[Instance]:
        return [
            Instance(slot.id, self.spec.revision_id, slot.socket_path, slot.run.pid)
            for slot in self._slots.values()
            if slot.ready and slot.run is not None
        ]

    async def start_instance(self) -> Instance:
        if self._stopping.is_set():
            raise StartError(f"revision {self.spec.revision_id} is stopping")
        if self._gave_up.is_set():
            raise StartError(
                f"the zygote of revision {self.spec.revision_id} could not be restarted",
                self._zygote_tail.text(),
            )
        self._next_n += 1
        try:
            socket_path = paths.instance_socket(self.directory, self._next_n)
        except ValueError as error:
            raise StartError(str(error)) from None
        slot = _Slot(id=secrets.token_hex(6), socket_path=socket_path)
        self._slots[slot.id] = slot
        first: asyncio.Future[Instance] = asyncio.get_running_loop().create_future()
        slot.task = asyncio.create_task(self._keep_running(slot, first))
        try:
            return await asyncio.shield(first)
        except StartError:
            await asyncio.shield(slot.task)  # cleaned up before the caller hears of it
            raise
        except asyncio.CancelledError:
            slot.drain_s = 0
            slot.stop_requested.set()
            first.add_done_callback(_retrieve)
            raise

    async def stop_instance(self, instance_id: str, drain_s: float) -> None:
        slot = self._slots.get(instance_id)
        if slot is None or slot.task is None:
            return
        slot.drain_s = drain_s
        slot.stop_requested.set()
        await asyncio.shield(slot.task)

    async def _keep_running(self, slot: _Slot, first: asyncio.Future[Instance]) -> None:
        backoff = RestartBackoff()
        failed_starts = 0
        try:
            while True:
                try:
                    run = await self._launch(slot)
                except StartError as error:
                    if not first.done():
                        first.set_exception(error)
                        return
                    if slot.stop_requested.is_set():
                        return
                    failed_starts += 1
                    kind = "oom" if error.oom else "exited"
                    self._event(slot.id, kind, _with_text(error.message, error.detail))
                    if failed_starts >= MAX_FAILED_STARTS or self._gave_up.is_set():
                        self._event(slot.id, "gave_up", f"{failed_starts} restarts failed in a row")
                        return
                    if not await self._pause(slot, backoff.next_delay(0)):
                        return
                    continue

                failed_starts = 0
                slot.ready = True
                if first.done():
                    self._event(slot.id, "restarted", f"pid {run.pid}")
                else:
                    first.set_result(
                        Instance(slot.id, self.spec.revision_id, slot.socket_path, run.pid)
                    )

                status = await self._wait_exit(slot, run)
                slot.ready = False
                if status is None:  # stopped on purpose
                    return
                await run.wait_output()
                if run.oom_rss is not None:
                    self._event(slot.id, "oom", self._over_limit(run.oom_rss))
                elif status.zygote_died:
                    self._event(slot.id, "exited", status.describe())
                else:
                    self._event(slot.id, "exited", _with_tail(status.describe(), run.tail))
                if status.zygote_died:
                    if not await self._wait_zygote(slot):
                        if self._gave_up.is_set():
                            self._event(slot.id, "gave_up", "its zygote could not be restarted")
                        return
                    continue
                assert run.ready_at is not None
                if not await self._pause(slot, backoff.next_delay(time.monotonic() - run.ready_at)):
                    return
        finally:
            slot.ready = False
            if slot.run is not None and not slot.run.exit.done():
                await self._terminate(slot.run, 0)
            self._slots.pop(slot.id, None)
            paths.remove_socket(slot.socket_path)

    async def _launch(self, slot: _Slot) -> _Run:
        """Spawn a run of the instance and wait until it is ready; StartError otherwise."""
        if not await self._wait_zygote(slot):
            if self._gave_up.is_set():
                raise StartError(
                    f"the zygote of revision {self.spec.revision_id} could not be restarted",
                    self._zygote_tail.text(),
                )
            raise StartError(f"instance {slot.id} was stopped before it started")
        zygote = self._zygote
        assert zygote is not None and self._log_server is not None
        paths.remove_socket(slot.socket_path)
        run = _Run(exit=asyncio.get_running_loop().create_future())
        slot.run = run
        try:
            run.pid = await zygote.spawn(
                slot.id, slot.socket_path, self._log_server.path, partial(self._on_exit, run)
            )
        except ZygoteGone as gone:
            run.exit.set_result(ExitStatus(zygote_died=True))
            raise StartError(f"could not start instance {slot.id}: {gone.error}") from None
        run.handle = ProcessHandle(run.pid, expected_parent=zygote.pid)
        self._watchdog.watch(run.pid, self._limit_bytes, partial(self._on_over_limit, run))

        ready = asyncio.create_task(wait_until_ready(slot.socket_path, self._ready_timeout_s))
        stop = asyncio.create_task(slot.stop_requested.wait())
        waits: set[asyncio.Future[Any]] = {ready, stop, run.exit}
        try:
            await asyncio.wait(waits, return_when=asyncio.FIRST_COMPLETED)
        finally:
            ready.cancel()
            stop.cancel()
            await asyncio.gather(ready, stop, return_exceptions=True)

        if run.exit.done():
            await run.wait_output()
            if run.oom_rss is not None:
                message = f"instance {slot.id} went over the memory limit before it was ready"
                detail = _with_text(self._over_limit(run.oom_rss), run.tail.text())
                raise StartError(message, detail, oom=True)
            status = run.exit.result()
            raise StartError(
                f"instance {slot.id} exited before it was ready ({status.describe()})",
                run.tail.text(),
            )
        if slot.stop_requested.is_set():
            await self._terminate(run, 0)
            raise StartError(f"instance {slot.id} was stopped before it was ready")
        if ready.cancelled() or ready.exception() is not None:
            await self._terminate(run, 0)
            error = None if ready.cancelled() else ready.exception()
            reason = f"not ready within {self._ready_timeout_s:g} s"
            if error is not None and not isinstance(error, TimeoutError):
                reason = f"readiness check failed: {error!r}"
            await run.wait_output()
            raise StartError(f"instance {slot.id} {reason}", run.tail.text())
        # The poll runs every POLL_INTERVAL_S: memory taken at start-up (lifespan) just before
        # the app answered would otherwise pass verification and be killed right after.
        rss = rss_bytes(run.pid)
        if rss is not None and rss > self.spec.memory_limit_mb * MIB:
            self._watchdog.unwatch(run.pid)
            await self._terminate(run, 0)
            message = f"instance {slot.id} went over the memory limit before it was ready"
            raise StartError(message, _with_text(self._over_limit(rss), run.tail.text()), oom=True)
        run.ready_at = time.monotonic()
        return run

    def _on_exit(self, run: _Run, status: ExitStatus) -> None:
        """The zygote reported the run's exit, or died itself."""
        if status.zygote_died and run.handle is not None:
            # PR_SET_PDEATHSIG is killing it; make sure it is gone before its socket path
            # is reused.
            task = asyncio.get_running_loop().create_task(self._confirm_exit(run, status))
            self._confirming.add(task)  # a task nobody references may be collected mid-way
            task.add_done_callback(self._confirming.discard)
            return
        self._finish(run, status)

    async def _confirm_exit(self, run: _Run, status: ExitStatus) -> None:
        assert run.handle is not None
        if not await run.handle.wait_gone(EXIT_WAIT_S):
            run.handle.kill()
            await run.handle.wait_gone(EXIT_WAIT_S)
        self._finish(run, status)

    def _finish(self, run: _Run, status: ExitStatus) -> None:
        self._watchdog.unwatch(run.pid)
        if run.handle is not None:
            run.handle.close()
        if not run.exit.done():
            run.exit.set_result(status)

    def _on_over_limit(self, run: _Run, rss: int) -> None:
        if run.handle is not None and run.handle.kill():
            run.oom_rss = rss
            logger.warning("instance pid %d over its memory limit: killed", run.pid)

    async def _wait_exit(self, slot: _Slot, run: _Run) -> ExitStatus | None:
        """The run's exit status; None if it was stopped on purpose."""
        stop = asyncio.create_task(slot.stop_requested.wait())
        waits: set[asyncio.Future[Any]] = {stop, run.exit}
        try:
            await asyncio.wait(waits, return_when=asyncio.FIRST_COMPLETED)
        finally:
            stop.cancel()
        if slot.stop_requested.is_set():
            await self._terminate(run, slot.drain_s)
            return None
        return run.exit.result()

    async def _terminate(self, run: _Run, drain_s: float) -> None:
        """SIGTERM: uvicorn stops accepting and finishes in-flight requests. SIGKILL after
        drain_s."""
        if run.exit.done():
            return
        if run.handle is not None and run.handle.send_signal(signal.SIGTERM):
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(asyncio.shield(run.exit), drain_s)
        if run.exit.done():
            return
        if run.handle is not None:
            run.handle.kill()
        try:
            await asyncio.wait_for(asyncio.shield(run.exit), EXIT_WAIT_S)
        except TimeoutError:
            logger.error("instance pid %d did not exit after SIGKILL", run.pid)

    async def _wait_zygote(self, slot: _Slot) -> bool:
        """Wait until the zygote is up; False if it gave up or the slot is being stopped."""
        while not self._zygote_up.is_set():
            if self._gave_up.is_set() or slot.stop_requested.is_set():
                return False
            waits = [
                asyncio.create_task(self._zygote_up.wait()),
                asyncio.create_task(self._gave_up.wait()),
                asyncio.create_task(slot.stop_requested.wait()),
            ]
            try:
                await asyncio.wait(waits, return_when=asyncio.FIRST_COMPLETED)
            finally:
                for wait in waits:
                    wait.cancel()
        return not slot.stop_requested.is_set()

    async def _pause(self, slot: _Slot, delay_s: float) -> bool:
        """Sleep delay_s; False if the slot is stopped meanwhile."""
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(slot.stop_requested.wait(), delay_s)
        return not slot.stop_requested.is_set()

    async def _handle_stream(
        self, instance_id: str, stream: str, pid: int, reader: asyncio.StreamReader
    ) -> None:
        slot = self._slots.get(instance_id)
        run = slot.run if slot is not None else None
        if run is not None and run.pid not in (0, pid):
            run = None  # a previous run's process (or one it started) still writing

        def emit(timestamp: datetime, level: str, message: str) -> None:
            if run is not None:
                run.tail.add(message)
            self._log(instance_id, timestamp, level, message)

        try:
            await pump(reader, stream, emit)
        finally:
            if run is not None:
                run.stream_closed()

    # -- reporting ------------------------------------------------------------------------

    def _log(self, instance_id: str | None, timestamp: datetime, level: str, message: str) -> None:
        record = LogRecord(
            self.spec.app_id, self.spec.revision_id, instance_id, timestamp, level, message
        )
        try:
            self._on_log(record)
        except Exception:
            logger.exception("on_log failed")

    def _event(self, instance_id: str, kind: str, detail: str) -> None:
        event = RuntimeEvent(self.spec.revision_id, instance_id, kind, detail)
        try:
            self._on_event(event)
        except Exception:
            logger.exception("on_event failed")

    def _over_limit(self, rss: int) -> str:
        return f"resident memory {rss / MIB:.0f} MB over the {self.spec.memory_limit_mb} MB limit"


def _with_text(summary: str, text: str) -> str:
    return f"{summary}\n{text}" if text else summary


def _with_tail(summary: str, tail: OutputTail) -> str:
    return _with_text(summary, tail.text(EVENT_TAIL_LINES))


def _retrieve(future: asyncio.Future[Instance]) -> None:
    # Nobody waits for this result any more: mark a failure as seen, not "never retrieved".
    if not future.cancelled():
        future.exception()
