"""Output of zygotes and instances: line parsing, the per-revision log socket, output tails."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import re
from collections import deque
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from pathlib import Path

from .zygote import RECORD_MARK

logger = logging.getLogger(__name__)

MAX_LINE_BYTES = 256 * 1024  # a longer "line" is cut into records of this size
TAIL_LINES = 50

# One parsed line: (timestamp, level, message).
Line = tuple[datetime, str, str]
Emit = Callable[[datetime, str, str], None]

# Uvicorn's "INFO:     ..." and logging.basicConfig's "WARNING:root:..." style prefixes.
_LEVEL_PREFIX = re.compile(r"(TRACE|DEBUG|INFO|WARNING|WARN|ERROR|CRITICAL|FATAL):\s*")
_PREFIX_LEVELS = {
    "TRACE": "debug",
    "DEBUG": "debug",
    "INFO": "info",
    "WARNING": "warning",
    "WARN": "warning",
    "ERROR": "error",
    "CRITICAL": "critical",
    "FATAL": "critical",
}


def level_name(levelno: int) -> str:
    """Python's numeric level (custom levels included) as one of the five names."""
    if levelno <= logging.DEBUG:
        return "debug"
    if levelno <= logging.INFO:
        return "info"
    if levelno <= logging.WARNING:
        return "warning"
    if levelno <= logging.ERROR:
        return "error"
    return "critical"


def parse_line(text: str, stream: str) -> Line:
    """A zygote's record line keeps its level; a plain stdout line is info, stderr error,
    unless it starts with a level prefix."""
    if text.startswith(RECORD_MARK):
        try:
            record = json.loads(text[1:])
            created = datetime.fromtimestamp(float(record["t"]), UTC)
            return created, level_name(int(record["n"])), str(record["m"])
        except (ValueError, KeyError, TypeError, OverflowError):
            pass  # not ours after all: a plain line
    now = datetime.now(UTC)
    match = _LEVEL_PREFIX.match(text)
    if match:
        return now, _PREFIX_LEVELS[match.group(1)], text[match.end() :]
    return now, "info" if stream == "stdout" else "error", text


async def pump(reader: asyncio.StreamReader, stream: str, emit: Emit) -> None:
    """Read lines until end of file and emit each one parsed, in order."""
    pending = bytearray()

    def flush(raw: bytes) -> None:
        text = raw.decode("utf-8", "replace").rstrip("\r")
        try:
            emit(*parse_line(text, stream))
        except Exception:  # a faulty consumer must not stop the output from being read
            logger.exception("log consumer failed")

    while chunk := await reader.read(65536):
        pending += chunk
        start = 0
        while (end := pending.find(b"\n", start)) >= 0:
            flush(bytes(pending[start:end]))
            start = end + 1
        del pending[:start]
        while len(pending) >= MAX_LINE_BYTES:
            flush(bytes(pending[:MAX_LINE_BYTES]))
            del pending[:MAX_LINE_BYTES]
    if pending:
        flush(bytes(pending))


class OutputTail:
    """The last lines a process wrote: what goes into StartError.detail."""

    def __init__(self, lines: int = TAIL_LINES) -> None:
        self._lines: deque[str] = deque(maxlen=lines)

    def add(self, message: str) -> None:
        self._lines.extend(message.splitlines() or [""])

    def text(self, lines: int | None = None) -> str:
        kept = list(self._lines)
        return "\n".join(kept if lines is None else kept[-lines:])


# Called for each connection with the header's instance id, stream name and pid.
StreamHandler = Callable[[str, str, int, asyncio.StreamReader], Awaitable[None]]


class LogServer:
    """The Unix socket a revision's instances connect their stdout and stderr to.

    Each connection starts with one JSON header line: {"instance", "stream", "pid"}.
    """

    def __init__(self, path: Path, handle_stream: StreamHandler) -> None:
        self.path = path
        self._handle_stream = handle_stream
        self._server: asyncio.Server | None = None
        self._connections: set[asyncio.StreamWriter] = set()

    async def start(self) -> None:
        with contextlib.suppress(FileNotFoundError):
            self.path.unlink()
        self._server = await asyncio.start_unix_server(self._serve, path=self.path)

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self._connections.add(writer)
        try:
            header = json.loads(await reader.readline())
            instance_id, stream, pid = str(header["instance"]), str(header["stream"]), header["pid"]
            if stream not in ("stdout", "stderr") or not isinstance(pid, int):
                raise ValueError(f"bad stream header {header!r}")
            await self._handle_stream(instance_id, stream, pid, reader)
        except (ValueError, KeyError, TypeError) as error:
            logger.warning("log socket %s: %s", self.path, error)
        except ConnectionError:
            pass
        finally:
            self._connections.discard(writer)
            writer.close()

    async def close(self) -> None:
        """Stop listening, drop remaining connections, remove the socket file."""
        if self._server is not None:
            self._server.close()
            # A process the app started may still hold an instance's output open.
            for writer in list(self._connections):
                writer.close()
            await self._server.wait_closed()
            self._server = None
        with contextlib.suppress(FileNotFoundError):
            self.path.unlink()
