"""A handle on a process that is not our child (instances are the zygote's children).

A pidfd names one process for good: once that process is gone, signalling the handle fails
instead of hitting whoever got the pid next, and the fd becomes readable when it exits.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal


def parent_pid(pid: int) -> int | None:
    try:
        with open(f"/proc/{pid}/status", "rb") as status:
            for line in status:
                if line.startswith(b"PPid:"):
                    return int(line.split()[1])
    except (FileNotFoundError, ProcessLookupError):
        return None
    return None


class ProcessHandle:
    def __init__(self, pid: int, *, expected_parent: int | None = None) -> None:
        """Open a handle on pid; with expected_parent, a pid that is no longer that process's
        child (it exited and the pid was reused) gives a handle on an already gone process."""
        self.pid = pid
        self._fd: int | None
        try:
            self._fd = os.pidfd_open(pid)
        except ProcessLookupError:
            self._fd = None
        if (
            self._fd is not None
            and expected_parent is not None
            and parent_pid(pid) != expected_parent
        ):
            self.close()

    def send_signal(self, signum: int) -> bool:
        """False if the process is gone."""
        if self._fd is None:
            return False
        try:
            signal.pidfd_send_signal(self._fd, signum)
        except ProcessLookupError:
            return False
        return True

    def kill(self) -> bool:
        return self.send_signal(signal.SIGKILL)

    async def wait_gone(self, timeout_s: float) -> bool:
        """Wait until the process has exited; False on timeout."""
        if self._fd is None:
            return True
        fd = self._fd
        loop = asyncio.get_running_loop()
        gone = loop.create_future()

        def on_readable() -> None:
            if not gone.done():
                gone.set_result(None)

        loop.add_reader(fd, on_readable)
        try:
            await asyncio.wait_for(gone, timeout_s)
        except TimeoutError:
            return False
        finally:
            loop.remove_reader(fd)
        return True

    def close(self) -> None:
        if self._fd is not None:
            with contextlib.suppress(OSError):
                os.close(self._fd)
            self._fd = None
