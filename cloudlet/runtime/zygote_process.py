"""The manager's end of a zygote: starting it, its control channel, its output."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import signal
import socket
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from . import zygote
from .logs import Emit, pump

logger = logging.getLogger(__name__)

ZYGOTE_SCRIPT = Path(zygote.__file__)
CONTROL_LINE_LIMIT = 4 * 1024 * 1024  # a "failed" message carries a whole traceback


@dataclass(frozen=True)
class ExitStatus:
    code: int | None = None
    signal: int | None = None
    zygote_died: bool = False  # the zygote died first; the instance died with it

    def describe(self) -> str:
        if self.zygote_died:
            return "its zygote exited"
        if self.signal is not None:
            return f"killed by {signal_name(self.signal)}"
        return f"exit code {self.code}"


def signal_name(signum: int) -> str:
    try:
        return signal.Signals(signum).name
    except ValueError:
        return f"signal {signum}"


class ZygoteGone(Exception):
    """The zygote exited (or never got ready); `error`/`traceback` are what it reported."""

    def __init__(self, error: str, traceback: str = "") -> None:
        super().__init__(error)
        self.error = error
        self.traceback = traceback


class ZygoteProcess:
    """One running zygote. Use `launch`, then `wait_ready`."""

    def __init__(
        self,
        process: asyncio.subprocess.Process,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
        emit: Emit,
    ) -> None:
        self.process = process
        self.pid = process.pid
        self._writer = writer
        self._ready: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._failure: ZygoteGone | None = None
        self._spawns: dict[str, tuple[asyncio.Future[int], Callable[[ExitStatus], None]]] = {}
        self._children: dict[int, Callable[[ExitStatus], None]] = {}
        assert process.stdout is not None and process.stderr is not None
        self._output = [
            asyncio.create_task(pump(process.stdout, "stdout", emit)),
            asyncio.create_task(pump(process.stderr, "stderr", emit)),
        ]
        self._control = asyncio.create_task(self._read_control(reader))
        self._gone = asyncio.create_task(self._watch_exit())

    @classmethod
    async def launch(
        cls,
        *,
        python: Path,
        project_dir: Path,
        import_root: Path,
        entrypoint: str,
        env: dict[str, str],
        emit: Emit,
        sched_batch: bool = False,
    ) -> ZygoteProcess:
        ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
        command = [
            str(python),
            str(ZYGOTE_SCRIPT),
            f"--control-fd={theirs.fileno()}",
            f"--parent-pid={os.getpid()}",
            f"--project-dir={project_dir}",
            f"--import-root={import_root}",
            f"--entrypoint={entrypoint}",
        ]
        if sched_batch:
            command.append("--sched-batch")
        try:
            # Note: PR_SET_PDEATHSIG in the zygote fires when the *thread* that forked it
            # exits; that is the event loop's thread, which lives as long as the manager.
            process = await asyncio.create_subprocess_exec(
                *command,
                stdin=asyncio.subprocess.DEVNULL,
                stdout=asyncio.subprocess.PIPE,
                stderr=asyncio.subprocess.PIPE,
                env=env,
                cwd=project_dir,
                pass_fds=(theirs.fileno(),),
                # Its own session: a Ctrl-C on the manager's terminal is the manager's to
                # handle, not every app process's.
                start_new_session=True,
            )
        except BaseException:
            ours.close()
            raise
        finally:
            theirs.close()
        reader, writer = await asyncio.open_unix_connection(sock=ours, limit=CONTROL_LINE_LIMIT)
        return cls(process, reader, writer, emit)

    @property
    def returncode(self) -> int | None:
        return self.process.returncode

    async def wait_ready(self) -> None:
        """Return once the app is imported; raise ZygoteGone if the zygote exits instead."""
        await asyncio.wait({self._ready, self._gone}, return_when=asyncio.FIRST_COMPLETED)
        if self._ready.done():
            return
        await self.drain_output()
        if self._failure is not None:
            raise self._failure
        raise ZygoteGone(f"the zygote exited ({self.describe_exit()}) before importing the app")

    def describe_exit(self) -> str:
        code = self.process.returncode
        if code is None:
            return "running"
        return ExitStatus(signal=-code).describe() if code < 0 else ExitStatus(code).describe()

    async def spawn(
        self,
        instance_id: str,
        socket_path: Path,
        log_path: Path,
        on_exit: Callable[[ExitStatus], None],
    ) -> int:
        """Fork an instance; on_exit gets its exit status (zygote_died if the zygote goes first)."""
        if self._gone.done() or self._control.done():
            raise ZygoteGone(f"the zygote is not running ({self.describe_exit()})")
        future: asyncio.Future[int] = asyncio.get_running_loop().create_future()
        self._spawns[instance_id] = (future, on_exit)
        command = {
            "op": "spawn",
            "id": instance_id,
            "socket": str(socket_path),
            "log": str(log_path),
        }
        self._writer.write(json.dumps(command).encode() + b"\n")
        try:
            await self._writer.drain()
            return await future
        finally:
            self._spawns.pop(instance_id, None)

    async def _read_control(self, reader: asyncio.StreamReader) -> None:
        try:
            while line := await reader.readline():
                try:
                    self._dispatch(json.loads(line))
                except (ValueError, KeyError, TypeError):
                    logger.warning("zygote %d: bad control message %r", self.pid, line[:200])
        except (ConnectionError, asyncio.LimitOverrunError, ValueError) as error:
            logger.warning("zygote %d: control channel failed: %s", self.pid, error)

    def _dispatch(self, message: dict[str, Any]) -> None:
        event = message["event"]
        if event == "ready":
            if not self._ready.done():
                self._ready.set_result(None)
        elif event == "failed":
            self._failure = ZygoteGone(str(message["error"]), str(message["traceback"]))
        elif event in ("spawned", "spawn_failed"):
            future, on_exit = self._spawns.get(str(message["id"]), (None, None))
            if future is None or on_exit is None or future.done():
                return
            if event == "spawned":
                pid = int(message["pid"])
                # Registered before this pid's "exited" message can be read: none is lost.
                self._children[pid] = on_exit
                future.set_result(pid)
            else:
                future.set_exception(ZygoteGone(f"fork failed: {message['error']}"))
        elif event == "exited":
            on_exit = self._children.pop(int(message["pid"]), None)
            if on_exit is not None:
                self._notify(on_exit, ExitStatus(code=message["code"], signal=message["signal"]))

    async def _watch_exit(self) -> None:
        """Once the zygote exited, tell every waiter."""
        await self.process.wait()
        # Read what it reported before dying first (exits of its children); a process the
        # app started may hold the channel open, so not for ever.
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(asyncio.shield(self._control), 2.0)
        self._control.cancel()
        gone = ZygoteGone(f"the zygote exited ({self.describe_exit()})")
        for future, _ in self._spawns.values():
            if not future.done():
                future.set_exception(gone)
        children, self._children = self._children, {}
        for on_exit in children.values():
            self._notify(on_exit, ExitStatus(zygote_died=True))

    @staticmethod
    def _notify(on_exit: Callable[[ExitStatus], None], status: ExitStatus) -> None:
        try:
            on_exit(status)
        except Exception:
            logger.exception("exit callback failed")

    async def drain_output(self, timeout_s: float = 2.0) -> None:
        """Wait (a little) until everything the zygote wrote has been read."""
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(asyncio.gather(*self._output), timeout_s)

    def kill(self) -> None:
        if self.process.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                self.process.kill()

    async def stop(self, timeout_s: float = 10.0) -> None:
        """Close the control channel (the zygote exits on end of file); SIGKILL if it lingers."""
        self._writer.close()
        try:
            await asyncio.wait_for(self.process.wait(), timeout_s)
        except TimeoutError:
            self.kill()
            await self.process.wait()
        await self._gone
        await self.drain_output()
        for task in self._output:
            task.cancel()

    async def wait(self) -> int:
        """Wait until the zygote exited and its channel is closed; the return code."""
        await asyncio.shield(self._gone)
        return await self.process.wait()
