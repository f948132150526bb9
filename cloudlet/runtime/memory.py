"""Memory limits, enforced by polling each process's resident set size.

Why not RLIMIT_AS: it limits address space, not memory. uvloop, thread stacks, glibc's per-thread
malloc arenas and mmap'd files reserve gigabytes of virtual memory that is never touched, so a
limit low enough to matter breaks healthy apps, and a malloc failure surfaces as a MemoryError
somewhere random instead of a clear "out of memory". RSS is what actually costs the machine.
The price of polling: a spike shorter than the interval goes unseen.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from dataclasses import dataclass

logger = logging.getLogger(__name__)

POLL_INTERVAL_S = 0.5


def rss_bytes(pid: int) -> int | None:
    """The process's resident set size, None once it is gone.

    A forked instance's RSS counts the pages it still shares with its zygote: that is what
    it would cost on its own, which is what the limit means.
    """
    try:
        with open(f"/proc/{pid}/status", "rb") as status:
            for line in status:
                if line.startswith(b"VmRSS:"):
                    return int(line.split()[1]) * 1024  # the kernel reports kB
    except (FileNotFoundError, ProcessLookupError):
        return None
    return None  # a zombie has no VmRSS line


@dataclass
class _Watch:
    limit_bytes: int
    on_exceeded: Callable[[int], None]


class MemoryWatchdog:
    """Calls back once when a watched process's RSS goes over its limit.

    Reading /proc/<pid>/status never touches a disk, so the loop reads it directly.
    """

    def __init__(self, interval_s: float = POLL_INTERVAL_S) -> None:
        self._interval_s = interval_s
        self._watches: dict[int, _Watch] = {}
        self._task: asyncio.Task[None] | None = None

    def watch(self, pid: int, limit_bytes: int, on_exceeded: Callable[[int], None]) -> None:
        self._watches[pid] = _Watch(limit_bytes, on_exceeded)
        if self._task is None:
            self._task = asyncio.get_running_loop().create_task(self._run())
        self._check(pid)  # the first sample without waiting

    def unwatch(self, pid: int) -> None:
        self._watches.pop(pid, None)

    async def close(self) -> None:
        self._watches.clear()
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    def _check(self, pid: int) -> None:
        watch = self._watches.get(pid)
        if watch is None:
            return
        rss = rss_bytes(pid)
        if rss is None:
            self._watches.pop(pid, None)
        elif rss > watch.limit_bytes:
            self._watches.pop(pid, None)
            try:
                watch.on_exceeded(rss)
            except Exception:
                logger.exception("memory limit callback failed for pid %d", pid)

    async def _run(self) -> None:
        while True:
            await asyncio.sleep(self._interval_s)
            for pid in list(self._watches):
                self._check(pid)
