"""Processes for benchmarks: start them pinned, stop them by PID, and read what they cost.

Everything here reads /proc (Linux). CPU time is utime+stime of every process of a server
(children included, e.g. nginx's worker or a zygote's instances) sampled before and after
a run; on this kind of kernel loopback softirq work is charged to the process that
triggers it, so "server CPU" covers the kernel's TCP work too.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import resource
import shutil
import signal
import socket
import subprocess
import sys
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

CLK_TCK = os.sysconf("SC_CLK_TCK")
NICE = -19
BIN = Path(sys.executable).parent  # this environment's commands: cloudlet, fastapi
# The official CLI, kept away from its vendor: no update check, outbound HTTPS to a dead proxy.
CLI_ISOLATION = {
    "FASTAPI_CLOUD_DISABLE_VERSION_CHECK": "1",
    "HTTPS_PROXY": "http://127.0.0.1:9",
    "HTTP_PROXY": "http://127.0.0.1:9",
    "NO_PROXY": "127.0.0.1,localhost,.localhost",
}


# -- cores and priority ---------------------------------------------------------------------


@dataclass(frozen=True)
class Placement:
    """Where the load generator and the servers run (see reference/dataplane.md, Method)."""

    client_cpu: int | None
    server_cpu: int | None
    nice: int  # applied to servers and the load generator; 0 when not allowed

    @property
    def pinned(self) -> bool:
        return self.client_cpu is not None and self.server_cpu is not None

    def describe(self) -> str:
        where = (
            f"load generator on CPU {self.client_cpu}, servers on CPU {self.server_cpu}"
            if self.pinned
            else "not pinned (fewer than 2 CPUs available)"
        )
        autogroup = " (and their sessions' autogroups)" if autogroups_enabled() else ""
        return f"{where}, nice {self.nice}{autogroup}"

    def client_prefix(self) -> list[str]:
        return _prefix(self.client_cpu, self.nice)

    def server_prefix(self) -> list[str]:
        return _prefix(self.server_cpu, self.nice)


def _prefix(cpu: int | None, nice: int) -> list[str]:
    prefix: list[str] = []
    if nice and shutil.which("nice"):
        prefix += ["nice", "-n", str(nice)]
    if cpu is not None and shutil.which("taskset"):
        prefix += ["taskset", "-c", str(cpu)]
    return prefix


def can_renice(nice: int = NICE) -> bool:
    """True if this process may start others at a negative nice value."""
    if nice >= 0:
        return True
    try:
        done = subprocess.run(
            ["nice", "-n", str(nice), "true"], capture_output=True, timeout=10, check=False
        )
    except (OSError, subprocess.TimeoutExpired):
        return False
    return done.returncode == 0 and not done.stderr


def placement() -> Placement:
    cpus = sorted(os.sched_getaffinity(0))
    nice = NICE if can_renice() else 0
    if len(cpus) >= 2:
        return Placement(cpus[0], cpus[1], nice)
    return Placement(None, None, nice)


def autogroups_enabled() -> bool:
    try:
        with open("/proc/sys/kernel/sched_autogroup_enabled") as f:
            return f.read().strip() == "1"
    except OSError:
        return False


def set_autogroup_nice(pid: int, nice: int) -> bool:
    """Give the autogroup (the session) of ``pid`` the nice value ``nice``.

    With autogroups on (``kernel.sched_autogroup_enabled``), CPU time is shared fairly
    between sessions first and a process's own nice value only counts inside its session:
    a server at nice -19 in its own session gets no more of a core than a busy loop at
    nice 0 in another one. The session's nice value is what counts between sessions.
    """
    try:
        with open(f"/proc/{pid}/autogroup", "w") as f:
            f.write(str(nice))
    except OSError:
        return False
    return True


def pin(roots: Iterable[int], cpu: int | None, nice: int) -> None:
    """Pin every thread of ``roots`` and their descendants to ``cpu`` at ``nice`` (their
    sessions' autogroups too).

    Affinity and nice are per thread on Linux; threads started later inherit them from the
    thread that starts them. Scheduling policy (SCHED_BATCH) is left alone.
    """
    for pid in descendants(roots):
        if nice:
            set_autogroup_nice(pid, nice)
        for tid in _tasks(pid):
            with contextlib.suppress(OSError):
                if cpu is not None:
                    os.sched_setaffinity(tid, {cpu})
                if nice:
                    os.setpriority(os.PRIO_PROCESS, tid, nice)


def _tasks(pid: int) -> list[int]:
    try:
        return [int(t) for t in os.listdir(f"/proc/{pid}/task")]
    except OSError:
        return []


def sched_policy(pid: int) -> str:
    try:
        policy = os.sched_getscheduler(pid)
    except OSError:
        return "?"
    names = {
        getattr(os, name): name.removeprefix("SCHED_").lower()
        for name in ("SCHED_OTHER", "SCHED_BATCH", "SCHED_IDLE", "SCHED_FIFO", "SCHED_RR")
        if hasattr(os, name)
    }
    return names.get(policy, str(policy))


# -- the process tree and what it costs ---------------------------------------------------


def _stat_fields(pid: int) -> list[str] | None:
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            raw = f.read().decode("ascii", "replace")
    except OSError:
        return None
    # The command name is in parentheses and may contain spaces: split after it.
    return raw[raw.rfind(")") + 2 :].split()


def parent_pid(pid: int) -> int | None:
    fields = _stat_fields(pid)
    return None if fields is None else int(fields[1])


def descendants(roots: Iterable[int]) -> list[int]:
    """``roots`` and all their living descendants."""
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        fields = _stat_fields(int(entry))
        if fields is not None:
            children.setdefault(int(fields[1]), []).append(int(entry))
    seen: list[int] = []
    todo = [r for r in roots if os.path.exists(f"/proc/{r}")]
    while todo:
        pid = todo.pop()
        if pid in seen:
            continue
        seen.append(pid)
        todo.extend(children.get(pid, []))
    return seen


def cpu_ticks(pid: int) -> int | None:
    """utime + stime of the whole process (all threads), in clock ticks."""
    fields = _stat_fields(pid)
    if fields is None:
        return None
    # Fields 14 and 15 of /proc/PID/stat; the slice starts at field 3.
    return int(fields[11]) + int(fields[12])


def context_switches(pid: int) -> int:
    """Voluntary + involuntary context switches summed over the process's threads."""
    total = 0
    for tid in _tasks(pid):
        try:
            with open(f"/proc/{pid}/task/{tid}/status", "rb") as f:
                for line in f:
                    if line.startswith((b"voluntary_ctxt_switches", b"nonvoluntary_ctxt")):
                        total += int(line.split()[1])
        except OSError:
            continue
    return total


def rss_kb(pid: int) -> int | None:
    return _status_kb(pid, b"VmRSS:")


def peak_rss_kb(pid: int) -> int | None:
    return _status_kb(pid, b"VmHWM:")


def _status_kb(pid: int, key: bytes) -> int | None:
    try:
        with open(f"/proc/{pid}/status", "rb") as f:
            for line in f:
                if line.startswith(key):
                    return int(line.split()[1])
    except OSError:
        return None
    return None


def open_fds(pid: int) -> int | None:
    try:
        return len(os.listdir(f"/proc/{pid}/fd"))
    except OSError:
        return None


def nofile_limits(pid: int | None = None) -> tuple[int, int] | None:
    """(soft, hard) RLIMIT_NOFILE of ``pid`` (this process when None); -1 is unlimited."""
    if pid is None:
        soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
        return soft, hard
    try:
        with open(f"/proc/{pid}/limits") as f:
            for line in f:
                if line.startswith("Max open files"):
                    parts = line.split()
                    return _limit(parts[3]), _limit(parts[4])
    except OSError:
        return None
    return None


def _limit(text: str) -> int:
    return -1 if text == "unlimited" else int(text)


@dataclass
class NofileReport:
    soft: int
    hard: int
    raised_from: int | None = None
    beyond_hard: str | None = None  # why the hard limit could not be raised, if tried

    def to_json(self) -> dict[str, object]:
        return {
            "soft": self.soft,
            "hard": self.hard,
            "raised_from": self.raised_from,
            "beyond_hard": self.beyond_hard,
        }


def raise_nofile(want: int | None = None) -> NofileReport:
    """Raise this process's open-files soft limit to the hard limit (children inherit it).

    With ``want`` above the hard limit, also try to raise the hard limit (needs
    CAP_SYS_RESOURCE; containers usually refuse) and report why it failed.
    """
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    report = NofileReport(soft, hard)
    if want is not None and hard != resource.RLIM_INFINITY and want > hard:
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (want, want))
        except (OSError, ValueError) as error:
            report.beyond_hard = f"setrlimit(RLIMIT_NOFILE, {want}): {error}"
        else:
            report.raised_from, report.soft, report.hard = soft, want, want
            return report
    if soft != hard:
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
        except (OSError, ValueError) as error:
            report.beyond_hard = report.beyond_hard or f"soft limit stays {soft}: {error}"
        else:
            report.raised_from, report.soft = soft, hard
    return report


@dataclass
class Usage:
    """What a group of processes used during one measured run."""

    cpu_s: float
    ctx_switches: int


@dataclass
class Sampler:
    """CPU ticks and context switches of named process groups, before vs after."""

    groups: Mapping[str, Sequence[int]]
    _before: dict[str, dict[int, tuple[int, int]]] = field(default_factory=dict)

    def _snapshot(self) -> dict[str, dict[int, tuple[int, int]]]:
        snap: dict[str, dict[int, tuple[int, int]]] = {}
        for name, roots in self.groups.items():
            snap[name] = {}
            for pid in descendants(roots):
                ticks = cpu_ticks(pid)
                if ticks is not None:
                    snap[name][pid] = (ticks, context_switches(pid))
        return snap

    def start(self) -> None:
        self._before = self._snapshot()

    def stop(self) -> dict[str, Usage]:
        after = self._snapshot()
        usage: dict[str, Usage] = {}
        for name, pids in after.items():
            before = self._before.get(name, {})
            ticks = switches = 0
            for pid, (t, c) in pids.items():
                t0, c0 = before.get(pid, (0, 0))
                ticks += t - t0
                switches += c - c0
            usage[name] = Usage(ticks / CLK_TCK, switches)
        return usage


def core_busy(cpu: int | None) -> tuple[int, int] | None:
    """(busy, total) jiffies of one CPU from /proc/stat (None when not pinned)."""
    if cpu is None:
        return None
    with open("/proc/stat") as f:
        for line in f:
            if line.startswith(f"cpu{cpu} "):
                values = [int(v) for v in line.split()[1:]]
                idle = values[3] + values[4]
                return sum(values) - idle, sum(values)
    return None


def slab_kb() -> int | None:
    """Kernel slab memory, machine-wide (/proc/meminfo): socket structures live there."""
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("Slab:"):
                    return int(line.split()[1])
    except (OSError, ValueError):
        return None
    return None


# -- starting and stopping ------------------------------------------------------------------


def free_port() -> int:
    """A TCP port on 127.0.0.1 that was free a moment ago."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Server:
    """A server process we started: stopped by its PID only."""

    def __init__(self, name: str, process: asyncio.subprocess.Process, log: Path) -> None:
        self.name = name
        self.process = process
        self.pid = process.pid
        self.log = log

    @classmethod
    async def start(
        cls,
        name: str,
        command: Sequence[str],
        log: Path,
        *,
        prefix: Sequence[str] = (),
        env: Mapping[str, str] | None = None,
        cwd: Path | None = None,
        autogroup_nice: int = 0,
    ) -> Server:
        """Start ``prefix + command`` (taskset/nice exec the command: the PID is the server's)
        in a session of its own, whose autogroup gets ``autogroup_nice`` at once: a server
        starting on a core where another session runs at -19 would otherwise get ~1 % of it."""
        out = os.open(log, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
        try:
            process = await asyncio.create_subprocess_exec(
                *prefix,
                *command,
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=out,
                env=dict(env) if env is not None else None,
                cwd=cwd,
                start_new_session=True,  # a Ctrl-C on the bench is the bench's to handle
            )
        finally:
            os.close(out)
        if autogroup_nice:
            set_autogroup_nice(process.pid, autogroup_nice)
        return cls(name, process, log)

    @property
    def running(self) -> bool:
        return self.process.returncode is None

    def tail(self, lines: int = 20) -> str:
        try:
            return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""

    async def stop(self, sig: int = signal.SIGTERM, wait_s: float = 15.0) -> None:
        if self.process.returncode is not None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.kill(self.pid, sig)
        try:
            await asyncio.wait_for(self.process.wait(), wait_s)
        except TimeoutError:
            with contextlib.suppress(ProcessLookupError):
                os.kill(self.pid, signal.SIGKILL)
            await self.process.wait()


async def wait_http(
    port: int,
    *,
    host_header: str = "127.0.0.1",
    path: str = "/",
    wait_s: float = 60.0,
    server: Server | None = None,
) -> None:
    """Wait until ``GET path`` on 127.0.0.1:port answers 200."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + wait_s
    request = f"GET {path} HTTP/1.1\r\nHost: {host_header}\r\nConnection: close\r\n\r\n".encode()
    last = "no answer"
    while loop.time() < deadline:
        if server is not None and not server.running:
            raise RuntimeError(f"{server.name} exited:\n{server.tail()}")
        try:
            reader, writer = await asyncio.wait_for(asyncio.open_connection("127.0.0.1", port), 5)
            try:
                writer.write(request)
                status = await asyncio.wait_for(reader.readline(), 5)
            finally:
                writer.close()
            if status.split()[1:2] == [b"200"]:
                return
            last = status.decode(errors="replace").strip()
        except (OSError, TimeoutError, IndexError) as error:
            last = repr(error)
        await asyncio.sleep(0.05)
    tail = f"; its output:\n{server.tail()}" if server is not None else ""
    raise RuntimeError(f"127.0.0.1:{port}{path} did not answer 200 in {wait_s:g} s ({last}){tail}")
