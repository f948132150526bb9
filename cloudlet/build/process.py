"""Running a build command and streaming its output line by line."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
from collections import deque
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from cloudlet.lifetime import die_with_parent

__all__ = ["LogSink", "ProcessResult", "run_process"]

LogSink = Callable[[str], Awaitable[None]]

_READ_BYTES = 1 << 16
# One log line is capped so a tool printing a huge blob without newlines cannot flood the log.
_MAX_LINE_CHARS = 4000


@dataclass(frozen=True)
class ProcessResult:
    returncode: int
    tail: tuple[str, ...]  # the last lines of output, for error messages


async def run_process(
    argv: Sequence[str],
    *,
    cwd: Path,
    env: Mapping[str, str],
    log: LogSink | None,
    keep_lines: int = 200,
) -> ProcessResult:
    """Run `argv` with stdout and stderr merged, sending each line to `log` as it arrives.

    The command runs in its own process group; if the caller is cancelled (a build timeout),
    the whole group is killed, so no build backend outlives its build.
    """
    process = await asyncio.create_subprocess_exec(
        *argv,
        cwd=cwd,
        env=dict(env),
        stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
        start_new_session=True,
        preexec_fn=die_with_parent,
    )
    tail: deque[str] = deque(maxlen=keep_lines)

    async def emit(raw: bytes) -> None:
        # A carriage return redraws the line in a terminal; only the last drawing is kept.
        line = raw.decode("utf-8", "replace").rstrip("\r").rsplit("\r", 1)[-1]
        line = line[:_MAX_LINE_CHARS]
        tail.append(line)
        if log is not None:
            await log(line)

    try:
        assert process.stdout is not None
        pending = b""
        while chunk := await process.stdout.read(_READ_BYTES):
            *lines, pending = (pending + chunk).split(b"\n")
            for line in lines:
                await emit(line)
            if len(pending) > _READ_BYTES:  # no newline in sight: log what there is so far
                await emit(pending)
                pending = b""
        if pending:
            await emit(pending)
        returncode = await process.wait()
    finally:
        if process.returncode is None:
            # Not reaped yet, so the pid (and the group id, equal to it) cannot have been reused.
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(process.pid, signal.SIGKILL)
            await process.wait()
    return ProcessResult(returncode, tuple(tail))
