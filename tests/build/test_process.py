import asyncio
import os
import sys
import time
from pathlib import Path

import pytest

from cloudlet.build.process import run_process

pytestmark = pytest.mark.anyio


def is_gone(pid: int) -> bool:
    """No such process, or only a zombie waiting for its (reparented) parent to reap it."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except FileNotFoundError:
        return True
    return state in ("Z", "X")


def wait_until_gone(pid: int) -> bool:
    # SIGKILL is asynchronous: give the kernel a moment; not a timing assertion.
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if is_gone(pid):
            return True
        time.sleep(0.05)
    return False


async def test_lines_arrive_in_order_with_stderr_merged(tmp_path: Path) -> None:
    lines: list[str] = []

    async def log(line: str) -> None:
        lines.append(line)

    script = "echo one; echo two >&2; printf 'old\\rnew\\n'; printf 'no newline'; exit 3"
    result = await run_process(["sh", "-c", script], cwd=tmp_path, env=os.environ, log=log)
    assert lines == ["one", "two", "new", "no newline"]
    assert result.returncode == 3
    assert result.tail == ("one", "two", "new", "no newline")


async def test_tail_is_bounded(tmp_path: Path) -> None:
    result = await run_process(
        ["sh", "-c", "seq 1 500"], cwd=tmp_path, env=os.environ, log=None, keep_lines=10
    )
    assert result.tail == tuple(str(n) for n in range(491, 501))


async def test_cancelling_kills_the_whole_process_group(tmp_path: Path) -> None:
    started = asyncio.Event()
    pids: list[int] = []

    async def log(line: str) -> None:
        pids.append(int(line))
        started.set()

    # A grandchild that would outlive its parent if only the parent were killed.
    script = "sleep 600 & echo $!; wait"
    task = asyncio.create_task(
        run_process(["sh", "-c", script], cwd=tmp_path, env=os.environ, log=log)
    )
    await asyncio.wait_for(started.wait(), timeout=60)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert wait_until_gone(pids[0])


async def test_a_huge_line_is_split_not_buffered_forever(tmp_path: Path) -> None:
    lines: list[str] = []

    async def log(line: str) -> None:
        lines.append(line)

    script = "import sys; sys.stdout.write('x' * 300000); sys.stdout.flush()"
    await run_process([sys.executable, "-c", script], cwd=tmp_path, env=os.environ, log=log)
    assert len(lines) >= 2
    assert all(len(line) <= 4000 for line in lines)
