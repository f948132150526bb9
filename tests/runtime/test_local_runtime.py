"""The local runtime, end to end: real zygotes and uvicorn instances running small FastAPI apps
(with /work/main/.venv's python standing in for a revision venv)."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import sys
import textwrap
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import httpx
import pytest

from cloudlet.runtime import (
    ZYGOTE,
    Instance,
    LocalRuntime,
    LogRecord,
    RevisionSpec,
    RuntimeEvent,
    StartError,
)

pytestmark = pytest.mark.anyio

# Has fastapi, uvicorn, uvloop and httptools, like a revision venv the builder makes.
PYTHON = Path("/work/main/.venv/bin/python")
GENEROUS_S = 60.0  # only to keep a broken test from hanging; never a performance bound

APP = """
import asyncio
import logging
import os
from contextlib import asynccontextmanager

from fastapi import FastAPI

IMPORTED_IN = os.getpid()
with open("imports.log", "a") as log:  # relative: the working directory is the project
    log.write(f"{IMPORTED_IN}\\n")
print("imported main")


@asynccontextmanager
async def lifespan(app):
    if os.path.exists("fail-startup"):
        raise RuntimeError("database unreachable")
    yield


app = FastAPI(lifespan=lifespan)


@app.get("/")
async def root():
    return {
        "pid": os.getpid(),
        "ppid": os.getppid(),
        "imported_in": IMPORTED_IN,
        "cwd": os.getcwd(),
        "env": dict(os.environ),
    }


@app.get("/print")
async def say():
    print("hello on stdout")
    return {}


@app.get("/warn")
async def warn():
    logging.getLogger("app").warning("careful: %s", 42)
    return {}


@app.get("/chatty")
async def chatty():
    print("first")
    logging.getLogger("app").warning("second")
    print("third")
    return {}


@app.get("/fail")
async def fail():
    return 1 / 0


@app.get("/exit")
async def crash():
    os._exit(1)


@app.get("/slow")
async def slow(seconds: float):
    print("slow request started")
    await asyncio.sleep(seconds)
    return {"slept": seconds}


@app.get("/hog")
async def hog():
    ballast = b"x" * (200 * 1024 * 1024)  # written, so resident
    await asyncio.sleep(60)
    return {"size": len(ballast)}
"""


def write_app(project: Path, source: str = APP, module: str = "main.py") -> Path:
    path = project / module
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(textwrap.dedent(source))
    return project


def spec_for(project: Path, **overrides: Any) -> RevisionSpec:
    fields: dict[str, Any] = {
        "revision_id": "rev-1",
        "app_id": "app-1",
        "python": PYTHON,
        "project_dir": project,
        "import_root": project,
        "entrypoint": "main:app",
        "env": {},
    }
    fields.update(overrides)
    return RevisionSpec(**fields)


class Harness:
    """A LocalRuntime plus what it reported."""

    def __init__(self, run_dir: Path, **options: Any) -> None:
        self.run_dir = run_dir
        self.logs: list[LogRecord] = []
        self.events: list[RuntimeEvent] = []
        self.runtime = LocalRuntime(
            run_dir, on_log=self.logs.append, on_event=self.events.append, **options
        )

    async def get(self, instance: Instance, path: str = "/") -> httpx.Response:
        transport = httpx.AsyncHTTPTransport(uds=str(instance.socket_path))
        async with httpx.AsyncClient(transport=transport, timeout=GENEROUS_S) as client:
            return await client.get(f"http://instance{path}")

    async def wait_until(self, condition: Callable[[], object], what: str) -> None:
        await wait_until(condition, what)

    def events_of(self, instance_id: str, kind: str) -> list[RuntimeEvent]:
        return [e for e in self.events if e.instance_id == instance_id and e.kind == kind]


@contextlib.asynccontextmanager
async def running(run_dir: Path, **options: Any) -> AsyncIterator[Harness]:
    harness = Harness(run_dir, **options)
    try:
        yield harness
    finally:
        await harness.runtime.close()


async def wait_until(condition: Callable[[], object], what: str) -> None:
    async def poll() -> None:
        # Polling: the state belongs to other processes, there is no event to wait on.
        while not condition():  # noqa: ASYNC110
            await asyncio.sleep(0.05)

    try:
        await asyncio.wait_for(poll(), GENEROUS_S)
    except TimeoutError:
        raise AssertionError(f"timed out waiting for {what}") from None


def leftovers(run_dir: Path) -> list[Path]:
    return list(run_dir.iterdir())


def process_alive(pid: int) -> bool:
    """True while pid runs; a zombie (exited, not yet reaped by whoever inherited it) is gone."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


def parent_of(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("PPid:"):
            return int(line.split()[1])
    raise AssertionError(f"no PPid for {pid}")


# -- starting --------------------------------------------------------------------------------


async def test_instances_fork_from_one_import(run_dir: Path, tmp_path: Path) -> None:
    project = write_app(tmp_path / "project")
    async with running(run_dir) as h:
        await h.runtime.prepare(spec_for(project))
        first = await h.runtime.start_instance("rev-1")
        second = await h.runtime.start_instance("rev-1")

        one, two = (await h.get(first)).json(), (await h.get(second)).json()
        assert one["pid"] == first.pid and two["pid"] == second.pid
        assert first.pid != second.pid
        assert first.socket_path != second.socket_path
        # Both are children of the process that imported the app, which did so once.
        assert one["ppid"] == two["ppid"] == one["imported_in"] == two["imported_in"]
        assert (project / "imports.log").read_text().split() == [str(one["imported_in"])]
        assert {i.id for i in h.runtime.instances("rev-1")} == {first.id, second.id}


async def test_import_error_reports_the_traceback(run_dir: Path, tmp_path: Path) -> None:
    project = write_app(tmp_path / "project", "import json\nimport no_such_module_xyz\n")
    async with running(run_dir) as h:
        with pytest.raises(StartError) as caught:
            await h.runtime.prepare(spec_for(project))
        error = caught.value
        assert "No module named 'no_such_module_xyz'" in error.message
        assert "\n" not in error.message
        assert "Traceback (most recent call last)" in error.detail
        assert 'main.py", line 2' in error.detail
        assert not error.oom
        assert h.runtime.instances("rev-1") == []
        with pytest.raises(StartError):
            await h.runtime.start_instance("rev-1")
    assert leftovers(run_dir) == []


async def test_missing_attribute_is_an_import_error(run_dir: Path, tmp_path: Path) -> None:
    project = write_app(tmp_path / "project")
    async with running(run_dir) as h:
        with pytest.raises(StartError, match="has no attribute 'api'"):
            await h.runtime.prepare(spec_for(project, entrypoint="main:api"))


async def test_missing_python_is_a_start_error(run_dir: Path, tmp_path: Path) -> None:
    project = write_app(tmp_path / "project")
    async with running(run_dir) as h:
        with pytest.raises(StartError, match="could not start the zygote"):
            await h.runtime.prepare(spec_for(project, python=tmp_path / "no" / "python"))


async def test_lifespan_startup_failure(run_dir: Path, tmp_path: Path) -> None:
    project = write_app(tmp_path / "project")
    (project / "fail-startup").touch()
    async with running(run_dir) as h:
        await h.runtime.prepare(spec_for(project))
        with pytest.raises(StartError) as caught:
            await h.runtime.start_instance("rev-1")
        assert "exited before it was ready" in caught.value.message
        assert "RuntimeError: database unreachable" in caught.value.detail
        assert h.runtime.instances("rev-1") == []
        assert h.events == []  # a failed first start is the caller's to handle, not restarted

        # The zygote is fine: once the cause is gone, instances start.
        (project / "fail-startup").unlink()
        instance = await h.runtime.start_instance("rev-1")
        assert (await h.get(instance)).status_code == 200


async def test_environment_and_working_directory(
    run_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CLOUDLET_SECRET_KEY", "must-not-leak")
    project = tmp_path / "project"
    # The import root is a sub-folder; the working directory stays the project.
    write_app(project, module="src/service/main.py")
    spec = spec_for(
        project,
        import_root=project / "src",
        entrypoint="service.main:app",
        env={"GREETING": "hello", "PORT": "1234"},
    )
    async with running(run_dir) as h:
        await h.runtime.prepare(spec)
        body = (await h.get(await h.runtime.start_instance("rev-1"))).json()
    env = body["env"]
    assert env["GREETING"] == "hello"
    assert env["PORT"] == "8000"  # the runtime's, whatever the app set
    assert env["VIRTUAL_ENV"] == str(PYTHON.parent.parent)
    assert "CLOUDLET_SECRET_KEY" not in env
    assert not [name for name in env if name.startswith("CLOUDLET")]
    assert body["cwd"] == str(project)
    assert (project / "imports.log").exists()


@pytest.mark.parametrize("sched_batch", [False, True])
async def test_sched_batch_only_when_asked(
    run_dir: Path, tmp_path: Path, sched_batch: bool
) -> None:
    project = write_app(tmp_path / "project")
    async with running(run_dir, sched_batch=sched_batch) as h:
        await h.runtime.prepare(spec_for(project))
        instance = await h.runtime.start_instance("rev-1")
        policy = os.sched_getscheduler(instance.pid)
        zygote_policy = os.sched_getscheduler(parent_of(instance.pid))
    expected = os.SCHED_BATCH if sched_batch else os.SCHED_OTHER
    assert policy == zygote_policy == expected


# -- logs -----------------------------------------------------------------------------------


async def test_logs_keep_their_levels(run_dir: Path, tmp_path: Path) -> None:
    project = write_app(tmp_path / "project")
    async with running(run_dir) as h:
        await h.runtime.prepare(spec_for(project))
        instance = await h.runtime.start_instance("rev-1")
        await h.get(instance, "/print")
        await h.get(instance, "/warn")
        assert (await h.get(instance, "/fail")).status_code == 500

        def of_instance(text: str) -> list[LogRecord]:
            return [r for r in h.logs if r.instance_id == instance.id and text in r.message]

        await h.wait_until(lambda: of_instance("ZeroDivisionError"), "the route's traceback")
        await h.wait_until(lambda: of_instance("hello on stdout"), "the print")
        await h.wait_until(lambda: of_instance("careful: 42"), "the warning")

        [printed] = of_instance("hello on stdout")
        [warned] = of_instance("careful: 42")
        [failed] = of_instance("ZeroDivisionError")
        assert (printed.level, printed.message) == ("info", "hello on stdout")
        assert (warned.level, warned.message) == ("warning", "careful: 42")
        # One record for the whole traceback.
        assert failed.level == "error"
        assert "Traceback (most recent call last)" in failed.message
        assert "return 1 / 0" in failed.message
        assert failed.timestamp.utcoffset() is not None
        assert failed.timestamp.utcoffset().total_seconds() == 0  # type: ignore[union-attr]

        await h.get(instance, "/chatty")
        await h.wait_until(lambda: of_instance("third"), "the chatty route")
        chatty = [r.message for r in h.logs if r.message in ("first", "second", "third")]
        assert chatty == ["first", "second", "third"]

        [imported] = [r for r in h.logs if r.message == "imported main"]
        assert imported.instance_id is None  # the zygote's
        assert imported.level == "info"
        assert all((r.app_id, r.revision_id) == ("app-1", "rev-1") for r in h.logs)
        [started] = of_instance("Application startup complete")
        assert started.level == "info"
        # In order: the route's records come after the instance started.
        assert h.logs.index(started) < h.logs.index(printed)


# -- keeping instances running --------------------------------------------------------------


async def test_crashed_instance_is_restarted(run_dir: Path, tmp_path: Path) -> None:
    project = write_app(tmp_path / "project")
    async with running(run_dir) as h:
        await h.runtime.prepare(spec_for(project))
        instance = await h.runtime.start_instance("rev-1")
        with pytest.raises(httpx.HTTPError):
            await h.get(instance, "/exit")

        await h.wait_until(lambda: h.events_of(instance.id, "restarted"), "the restart")
        [exited] = h.events_of(instance.id, "exited")
        assert exited.detail.startswith("exit code 1")
        [again] = h.runtime.instances("rev-1")
        assert again.id == instance.id and again.socket_path == instance.socket_path
        assert again.pid != instance.pid
        assert not process_alive(instance.pid)
        assert (await h.get(again)).json()["pid"] == again.pid


async def test_memory_limit(run_dir: Path, tmp_path: Path) -> None:
    project = write_app(tmp_path / "project")
    async with running(run_dir) as h:
        await h.runtime.prepare(spec_for(project, memory_limit_mb=100))
        instance = await h.runtime.start_instance("rev-1")
        with pytest.raises(httpx.HTTPError):
            await h.get(instance, "/hog")

        await h.wait_until(lambda: h.events_of(instance.id, "oom"), "the oom event")
        [oom] = h.events_of(instance.id, "oom")
        assert "over the 100 MB limit" in oom.detail
        assert not h.events_of(instance.id, "exited")  # reported once, as what it was
        assert not process_alive(instance.pid)
        await h.wait_until(lambda: h.events_of(instance.id, "restarted"), "the restart")


async def test_memory_limit_during_import(run_dir: Path, tmp_path: Path) -> None:
    source = "import time\nballast = b'x' * (200 * 1024 * 1024)\ntime.sleep(30)\napp = None\n"
    project = write_app(tmp_path / "project", source)
    async with running(run_dir) as h:
        with pytest.raises(StartError) as caught:
            await h.runtime.prepare(spec_for(project, memory_limit_mb=100))
        assert caught.value.oom
        assert "memory limit" in caught.value.message


async def test_gives_up_after_repeated_failed_restarts(
    run_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from cloudlet.runtime import backoff, revision

    fast = lambda: backoff.RestartBackoff(initial_s=0.01, maximum_s=0.05)  # noqa: E731
    monkeypatch.setattr(revision, "RestartBackoff", fast)
    project = write_app(tmp_path / "project")
    async with running(run_dir) as h:
        await h.runtime.prepare(spec_for(project))
        instance = await h.runtime.start_instance("rev-1")
        (project / "fail-startup").touch()  # every restart now fails at lifespan startup
        with pytest.raises(httpx.HTTPError):
            await h.get(instance, "/exit")

        await h.wait_until(lambda: h.events_of(instance.id, "gave_up"), "giving up")
        failures = h.events_of(instance.id, "exited")
        assert len(failures) == 1 + 5  # the crash, then five restarts that never got ready
        assert all("database unreachable" in e.detail for e in failures[1:])
        assert not h.events_of(instance.id, "restarted")
        assert h.runtime.instances("rev-1") == []


async def test_zygote_is_restarted_and_its_instances_with_it(run_dir: Path, tmp_path: Path) -> None:
    project = write_app(tmp_path / "project")
    async with running(run_dir) as h:
        await h.runtime.prepare(spec_for(project))
        instance = await h.runtime.start_instance("rev-1")
        zygote_pid = parent_of(instance.pid)
        os.kill(zygote_pid, signal.SIGKILL)  # our own child, by pid

        await h.wait_until(lambda: h.events_of(ZYGOTE, "restarted"), "the zygote's restart")
        await h.wait_until(lambda: h.events_of(instance.id, "restarted"), "the instance's")
        assert h.events_of(ZYGOTE, "exited")[0].detail.startswith("the zygote exited (killed")
        assert h.events_of(instance.id, "exited")[0].detail == "its zygote exited"
        [again] = h.runtime.instances("rev-1")
        body = (await h.get(again)).json()
        assert body["ppid"] != zygote_pid and body["ppid"] == body["imported_in"]
        assert not process_alive(instance.pid)


# -- stopping -------------------------------------------------------------------------------


async def test_stop_instance_lets_in_flight_requests_finish(run_dir: Path, tmp_path: Path) -> None:
    project = write_app(tmp_path / "project")
    async with running(run_dir) as h:
        await h.runtime.prepare(spec_for(project))
        instance = await h.runtime.start_instance("rev-1")
        request = asyncio.create_task(h.get(instance, "/slow?seconds=1.5"))
        await h.wait_until(
            lambda: any(r.message == "slow request started" for r in h.logs), "the slow request"
        )

        await h.runtime.stop_instance("rev-1", instance.id, drain_s=GENEROUS_S)

        response = await request
        assert response.status_code == 200 and response.json() == {"slept": 1.5}
        assert not process_alive(instance.pid)
        assert not instance.socket_path.exists()
        assert h.runtime.instances("rev-1") == []
        assert h.events == []  # stopped on purpose: neither "exited" nor restarted
        assert any("Application shutdown complete" in r.message for r in h.logs)


async def test_stop_instance_kills_after_drain(run_dir: Path, tmp_path: Path) -> None:
    project = write_app(tmp_path / "project")
    async with running(run_dir) as h:
        await h.runtime.prepare(spec_for(project))
        instance = await h.runtime.start_instance("rev-1")
        request = asyncio.create_task(h.get(instance, "/slow?seconds=600"))
        await h.wait_until(
            lambda: any(r.message == "slow request started" for r in h.logs), "the slow request"
        )
        await h.runtime.stop_instance("rev-1", instance.id, drain_s=0.2)
        with pytest.raises(httpx.HTTPError):
            await request
        assert not process_alive(instance.pid)
        assert h.events == []


async def test_close_leaves_no_processes_and_no_sockets(run_dir: Path, tmp_path: Path) -> None:
    project = write_app(tmp_path / "project")
    async with running(run_dir) as h:
        await h.runtime.prepare(spec_for(project))
        await h.runtime.prepare(spec_for(project, revision_id="rev-2"))
        instances = [await h.runtime.start_instance(r) for r in ("rev-1", "rev-1", "rev-2")]
        pids = {i.pid for i in instances} | {parent_of(i.pid) for i in instances}
        assert len(pids) == 5  # three instances, two zygotes
        assert all(i.socket_path.is_socket() for i in instances)
    assert not [pid for pid in pids if process_alive(pid)]
    assert leftovers(run_dir) == []


async def test_stop_revision_leaves_other_revisions_running(run_dir: Path, tmp_path: Path) -> None:
    project = write_app(tmp_path / "project")
    async with running(run_dir) as h:
        await h.runtime.prepare(spec_for(project))
        await h.runtime.prepare(spec_for(project, revision_id="rev-2"))
        gone = await h.runtime.start_instance("rev-1")
        kept = await h.runtime.start_instance("rev-2")
        zygote = parent_of(gone.pid)

        await h.runtime.stop_revision("rev-1")

        assert not process_alive(gone.pid) and not process_alive(zygote)
        assert not gone.socket_path.parent.exists()
        assert h.runtime.instances("rev-1") == []
        assert (await h.get(kept)).status_code == 200


MANAGER = """
import asyncio, json, sys
from pathlib import Path
from cloudlet.runtime import LocalRuntime, RevisionSpec

async def main():
    run_dir, python, project = map(Path, sys.argv[1:4])
    runtime = LocalRuntime(run_dir, on_log=lambda r: None, on_event=lambda e: None)
    await runtime.prepare(RevisionSpec("r", "a", python, project, project, "main:app", {}))
    instance = await runtime.start_instance("r")
    print(json.dumps({"instance": instance.pid}), flush=True)
    await asyncio.sleep(3600)

asyncio.run(main())
"""


async def test_processes_die_with_a_killed_manager(run_dir: Path, tmp_path: Path) -> None:
    project = write_app(tmp_path / "project")
    script = tmp_path / "manager.py"
    script.write_text(MANAGER)
    manager = await asyncio.create_subprocess_exec(
        sys.executable,
        str(script),
        str(run_dir),
        str(PYTHON),
        str(project),
        stdout=asyncio.subprocess.PIPE,
    )
    pids: list[int] = []
    try:
        assert manager.stdout is not None
        line = await asyncio.wait_for(manager.stdout.readline(), GENEROUS_S)
        instance = json.loads(line)["instance"]
        pids = [instance, parent_of(instance)]
        assert pids[1] != manager.pid and parent_of(pids[1]) == manager.pid

        manager.kill()  # SIGKILL: no chance to clean up
        await manager.wait()

        await wait_until(lambda: not any(process_alive(pid) for pid in pids), "orphans to die")
    finally:
        if manager.returncode is None:
            manager.kill()
            await manager.wait()
        for pid in pids:
            if process_alive(pid):
                os.kill(pid, signal.SIGKILL)


async def test_run_dir_too_long_fails_clearly() -> None:
    with pytest.raises(ValueError, match="limit is 107"):
        LocalRuntime(Path("/tmp/" + "d" * 100), on_log=print, on_event=print)
