"""The zygote: imports a revision's app once, then forks uvicorn instances of it on demand.

Run as a script by the revision's own interpreter (`<venv>/bin/python zygote.py ...`), so it uses
only the standard library and what the app's venv has (uvicorn, uvloop, httptools); nothing from
Cloudlet, which is not installed there. It must keep running on the oldest Python an app may
ask for (3.8): no match, no str.removeprefix, no os.waitstatus_to_exitcode.

Control channel: JSON lines on the socket passed as --control-fd.
    manager -> zygote   {"op": "spawn", "id": ..., "socket": ..., "log": ...}
    zygote -> manager   {"event": "ready", "pid": ...}
                        {"event": "failed", "error": <one line>, "traceback": ...}
                        {"event": "spawned", "id": ..., "pid": ...}
                        {"event": "spawn_failed", "id": ..., "error": ...}
                        {"event": "exited", "pid": ..., "code": int|null, "signal": int|null}
End of file on the channel means the manager is gone or done: the zygote exits, and its
instances die with it (PR_SET_PDEATHSIG).

Output: an instance connects to the manager's log socket twice (stdout, stderr), each time sending
one JSON header line, and dup2s the connections onto fd 1 and fd 2. Logging records are written
to fd 1 as RECORD_MARK + one JSON line, so their level survives and a multi-line traceback stays
one record; everything else is a plain line. Fd 1, because the two streams are two connections
and only lines of one stream keep their order: print() and logging interleave in order.
"""

from __future__ import annotations

import argparse
import contextlib
import ctypes
import gc
import importlib
import inspect
import json
import logging
import os
import selectors
import signal
import socket
import sys
import threading
import time
import traceback
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # imported for real only in an instance, from the app's venv
    import uvicorn

RECORD_MARK = "\x1e"
PR_SET_PDEATHSIG = 1

_write_lock = threading.Lock()


# -- dying with the parent ------------------------------------------------------------------


def _die_with_parent(parent_pid: int) -> None:
    """SIGKILL this process when its parent dies, so a killed manager leaves no orphans."""
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0) != 0:
        raise OSError(ctypes.get_errno(), "prctl(PR_SET_PDEATHSIG) failed")
    # The parent may have died before prctl: then nothing would ever kill us.
    if os.getppid() != parent_pid:
        os._exit(1)


# -- output ---------------------------------------------------------------------------------


def _write_all(fd: int, data: bytes) -> None:
    with _write_lock:
        while data:
            try:
                written = os.write(fd, data)
            except OSError:
                return  # nobody is listening any more; losing a log line beats crashing
            data = data[written:]


def _write_record(levelno: int, message: str, created: float | None = None) -> None:
    payload = {"t": time.time() if created is None else created, "n": levelno, "m": message}
    _write_all(1, (RECORD_MARK + json.dumps(payload) + "\n").encode("utf-8", "replace"))


class RecordHandler(logging.Handler):
    """Writes each logging record as one marked JSON line on fd 1 (see the module docstring)."""

    def __init__(self, level: int = logging.NOTSET) -> None:
        super().__init__(level)
        # The manager keeps time and level itself: the message is the record's text plus
        # its traceback, whatever format the app configured.
        self.setFormatter(logging.Formatter("%(message)s"))

    def emit(self, record: logging.LogRecord) -> None:
        try:
            _write_record(record.levelno, self.format(record), record.created)
        except Exception:
            self.handleError(record)


def _install_log_handlers() -> None:
    # An app that configures no logging gets Python's last-resort handler (warnings and up, to
    # stderr, message only); making that one ours keeps the levels without touching the root
    # logger, so the app's own logging.basicConfig() still works.
    logging.lastResort = RecordHandler(logging.WARNING)
    # uvicorn's own messages ("Started server process", "Exception in ASGI application" ...).
    uvicorn_logger = logging.getLogger("uvicorn")
    uvicorn_logger.handlers = [RecordHandler()]
    uvicorn_logger.setLevel(logging.INFO)
    uvicorn_logger.propagate = False
    # logging.basicConfig() makes a console handler, and logging.warning() & co. call it
    # when the root logger has none: adopt that handler whenever it appears.
    original = logging.basicConfig

    def basic_config(*args: Any, **kwargs: Any) -> None:
        original(*args, **kwargs)
        _adopt_console_handlers()

    logging.basicConfig = basic_config


def _adopt_console_handlers() -> None:
    """Swap the app's console handlers (basicConfig and the like) for RecordHandlers.

    They would write formatted text to stdout/stderr, where the level is lost and a traceback
    falls apart into lines. Subclasses (files, rich ...) are left alone.
    """
    consoles = {id(s) for s in (sys.stdout, sys.stderr, sys.__stdout__, sys.__stderr__) if s}
    loggers: list[logging.Logger] = [logging.getLogger()]
    loggers += [
        x for x in logging.Logger.manager.loggerDict.values() if isinstance(x, logging.Logger)
    ]
    for logger in loggers:
        for index, handler in enumerate(logger.handlers):
            if type(handler) is logging.StreamHandler and id(handler.stream) in consoles:
                replacement = RecordHandler(handler.level)
                replacement.filters = list(handler.filters)
                logger.handlers[index] = replacement


def _line_buffer_std_streams() -> None:
    # Lines must reach the manager as they are printed, not when a block buffer fills up.
    for stream in (sys.stdout, sys.stderr):
        reconfigure = getattr(stream, "reconfigure", None)
        if reconfigure is not None:
            reconfigure(line_buffering=True)


def _attach_output(log_path: str, instance_id: str, stream: str, fd: int) -> None:
    connection = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    connection.connect(log_path)
    header = {"instance": instance_id, "stream": stream, "pid": os.getpid()}
    connection.sendall(json.dumps(header).encode() + b"\n")
    os.dup2(connection.fileno(), fd)
    connection.close()


# -- the app --------------------------------------------------------------------------------


def _import_app(entrypoint: str) -> Any:
    module_name, _, attribute = entrypoint.partition(":")
    target: Any = importlib.import_module(module_name)
    for name in (attribute or "app").split("."):
        target = getattr(target, name)
    if not callable(target):
        raise TypeError(f"{entrypoint} is a {type(target).__name__}, not an ASGI app")
    _check_asgi(entrypoint, target)
    return target


def _check_asgi(entrypoint: str, target: Any) -> None:
    """Fail at import with a clear message rather than on the first request: the builder
    accepts an `app` it cannot prove is FastAPI, as `fastapi run` does."""
    if inspect.isclass(target):
        raise TypeError(f"{entrypoint} is the class {target.__name__}; point to an instance of it")
    try:
        parameters = [
            p
            for p in inspect.signature(target).parameters.values()
            if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)
        ]
    except (TypeError, ValueError):  # no signature to read (a C callable): let uvicorn judge
        return
    if len(parameters) == 2:
        raise TypeError(
            f"{entrypoint} takes 2 arguments like a WSGI app (Flask, Django); "
            "Cloudlet runs ASGI apps such as FastAPI"
        )
    if len(parameters) not in (1, 3) and not any(
        p.kind == p.VAR_POSITIONAL for p in inspect.signature(target).parameters.values()
    ):
        raise TypeError(
            f"{entrypoint} takes {len(parameters)} arguments; an ASGI app takes "
            "(scope, receive, send)"
        )


def _summary(error: BaseException) -> str:
    lines = traceback.format_exception_only(type(error), error)
    return lines[-1].strip() if lines else type(error).__name__


def _preload_server() -> None:
    """Import here, once, what uvicorn would import in every fork: its protocol, lifespan and
    loop modules load lazily in Config.load(), and the WebSocket ones alone took ~45 ms per
    fork (measured), most of a cold start from zero."""
    import uvicorn  # noqa: F401
    import uvicorn.config as config

    for optional in ("uvloop", "httptools"):
        with contextlib.suppress(ImportError):
            importlib.import_module(optional)
    names: list[str | None] = [
        "uvicorn.server",
        "uvicorn.middleware.proxy_headers",
        config.HTTP_PROTOCOLS.get("httptools"),
        config.HTTP_PROTOCOLS.get("h11"),
        config.WS_PROTOCOLS.get("auto"),
        config.LIFESPAN.get("on"),
        # uvicorn renamed LOOP_SETUPS to LOOP_FACTORIES; an app's venv may have either.
        getattr(config, "LOOP_FACTORIES", getattr(config, "LOOP_SETUPS", {})).get("uvloop"),
    ]
    for name in names:
        if name:
            with contextlib.suppress(Exception):  # an optional protocol's library is missing
                importlib.import_module(name.partition(":")[0])


def _set_sched_batch() -> None:
    # Forks inherit the policy. See reference/dataplane.md: fewer context switches per request
    # when router and instances share a core, at a neighbour's expense, hence opt-in.
    try:
        os.sched_setscheduler(0, os.SCHED_BATCH, os.sched_param(0))
    except (AttributeError, OSError) as error:
        _write_record(logging.WARNING, f"cloudlet: SCHED_BATCH not set: {error}")


# -- the control loop -----------------------------------------------------------------------


def _send(control: socket.socket, message: dict[str, Any]) -> None:
    try:
        control.sendall(json.dumps(message).encode() + b"\n")
    except OSError:
        sys.exit(0)  # the manager is gone; our instances die with us


def _reap(control: socket.socket) -> None:
    while True:
        try:
            pid, status = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return
        if pid == 0:
            return
        if os.WIFSIGNALED(status):
            code, signum = None, os.WTERMSIG(status)
        else:
            code, signum = os.WEXITSTATUS(status), None
        _send(control, {"event": "exited", "pid": pid, "code": code, "signal": signum})


def _fork(control: socket.socket, command: dict[str, Any]) -> bool:
    """Fork an instance; True in the child."""
    for stream in (sys.stdout, sys.stderr):
        stream.flush()  # or buffered text would be written twice
    zygote_pid = os.getpid()
    try:
        pid = os.fork()
    except OSError as error:
        _send(control, {"event": "spawn_failed", "id": command["id"], "error": str(error)})
        return False
    if pid == 0:
        _die_with_parent(zygote_pid)
        return True
    _send(control, {"event": "spawned", "id": command["id"], "pid": pid})
    return False


def _ignore(signum: int, frame: Any) -> None:
    pass


def _serve(control: socket.socket) -> dict[str, Any] | None:
    """Answer spawn commands and report exits; return the spawn command in a forked child.

    No threads and no event loop: a fork copies only the calling thread, and an event loop
    must not be shared between processes. SIGCHLD wakes the select() through a wake-up fd.
    """
    wake_r, wake_w = os.pipe()
    os.set_blocking(wake_r, False)
    os.set_blocking(wake_w, False)
    signal.set_wakeup_fd(wake_w)
    # A Python-level handler, not SIG_IGN (which would have the kernel reap children unseen).
    signal.signal(signal.SIGCHLD, _ignore)
    selector = selectors.DefaultSelector()
    selector.register(control, selectors.EVENT_READ)
    selector.register(wake_r, selectors.EVENT_READ)
    pending = b""
    _reap(control)  # anything the app's import started and left behind
    while True:
        for key, _ in selector.select():
            if key.fileobj is not control:
                while True:
                    try:
                        if not os.read(wake_r, 512):
                            break
                    except BlockingIOError:
                        break
                _reap(control)
                continue
            data = control.recv(65536)
            if not data:
                return None
            pending += data
            while b"\n" in pending:
                line, pending = pending.split(b"\n", 1)
                command = json.loads(line)
                if command.get("op") != "spawn" or not _fork(control, command):
                    continue
                # The child: drop the zygote's machinery before becoming an instance.
                signal.set_wakeup_fd(-1)
                signal.signal(signal.SIGCHLD, signal.SIG_DFL)
                selector.close()
                os.close(wake_r)
                os.close(wake_w)
                control.close()
                return dict(command)


# -- instance tuning ------------------------------------------------------------------------
#
# Measured with `cloudlet bench runtime` and the sweeps quoted in the README ("Runtime").

# Sync (`def`) endpoints run in anyio's default thread limiter: 40 threads per event loop
# unless told otherwise. The autoscaler gives an instance up to target_concurrency in-flight
# requests (100 by default): with 100 threads all of them can wait in a blocking call (a
# database driver, a file) at once instead of queueing behind 40. Measured: a `def` endpoint
# blocking 20 ms at 128 connections, 2.1x the throughput of 40 threads; the benchmark's mix
# with its sync endpoints blocking 20 ms, +7 %; with 0-2 ms, no difference (40 to 200 within
# noise). 200 gained nothing more and was up to 10 % slower on CPU-bound `def` endpoints.
THREADPOOL_SIZE = 100
THREADPOOL_ENV = "CLOUDLET_THREADPOOL_SIZE"  # the app's own setting, if it needs another size
# The router reuses a pooled connection only while it has been idle less than its
# upstream_idle_timeout (4 s) and closes older ones in its once-a-second sweep, so it lets go
# of an idle connection within ~5 s. uvicorn's default (5 s) would race that: a request sent
# on a connection the instance is closing at the same moment costs a retry, or a 502 for a
# POST. 20 s keeps the instance the side that never closes first, with room for a router loop
# stalled for seconds on a busy core; an idle connection costs the instance ~11 KB.
KEEP_ALIVE_S = 20
# The router opens a new connection for every request it cannot serve from its pool, e.g. a
# burst released after a cold start. On a Unix socket a full accept queue fails connect() at
# once (EAGAIN, no retry as with TCP SYNs) and the router then avoids the instance for 1 s.
# uvicorn's default is 2048; the kernel caps the value at net.core.somaxconn (4096 by default).
BACKLOG = 4096
# A request allocates hundreds of container objects that die young. With CPython's default
# first-generation threshold (700 net allocations) the collector runs every couple of
# requests: 7-11 % of an instance's CPU on the benchmark's mixed app at 100 and 400
# connections. At 20,000 it runs only when garbage really accumulates (0-1 %), and the app
# took 10 % less CPU per request. The cost: cyclic garbage lives a little longer. Only ever
# raised: an app that set a higher threshold or disabled the collector keeps its choice.
GC_THRESHOLD_0 = 20_000


def _threadpool_size() -> int:
    text = os.environ.get(THREADPOOL_ENV, "").strip()
    if not text:
        return THREADPOOL_SIZE
    try:
        size = int(text)
    except ValueError:
        size = 0
    if size < 1:
        _write_record(
            logging.WARNING,
            f"cloudlet: {THREADPOOL_ENV}={text!r} is not a positive integer; "
            f"using {THREADPOOL_SIZE}",
        )
        return THREADPOOL_SIZE
    return size


def _size_threadpool(size: int) -> None:
    """Set the running loop's default thread limiter (anyio's, which Starlette's
    run_in_threadpool uses). Only for apps that have anyio loaded: others have no such pool."""
    if "anyio" not in sys.modules:
        return
    try:
        to_thread: Any = importlib.import_module("anyio.to_thread")  # optional, like uvloop
        to_thread.current_default_thread_limiter().total_tokens = size
    except Exception as error:  # an anyio too old or too new: run with its default
        _write_record(logging.WARNING, f"cloudlet: thread pool not sized: {_summary(error)}")


def _tune_gc() -> None:
    threshold = gc.get_threshold()
    if gc.isenabled() and threshold[0] < GC_THRESHOLD_0:
        gc.set_threshold(GC_THRESHOLD_0, *threshold[1:])


def _instance_server(app: Any, **bind: Any) -> uvicorn.Server:
    """The uvicorn.Server of an instance, listening where `bind` says (uds=...)."""
    import uvicorn

    def available(module: str) -> bool:
        return module in sys.modules

    threads = _threadpool_size()

    class InstanceServer(uvicorn.Server):
        async def startup(self, sockets: list[socket.socket] | None = None) -> None:
            # On the instance's one event loop, before the app's lifespan: a lifespan that
            # sizes the pool itself wins, and nothing runs per request.
            _size_threadpool(threads)
            await super().startup(sockets)

    config = uvicorn.Config(
        app,
        **bind,
        loop="uvloop" if available("uvloop") else "asyncio",
        http="httptools" if available("httptools") else "h11",
        lifespan="auto",
        # The router accounts for every request; a log line per request cost 14 % more CPU.
        access_log=False,
        proxy_headers=True,
        forwarded_allow_ips="*",
        timeout_keep_alive=KEEP_ALIVE_S,
        backlog=BACKLOG,
        # Our handlers are installed already; uvicorn's default config would replace them.
        log_config=None,
        # Waits for in-flight requests; the manager SIGKILLs after its drain time.
        timeout_graceful_shutdown=None,
    )
    return InstanceServer(config)


def _run_instance(app: Any, command: dict[str, Any]) -> int:
    instance_id, socket_path = command["id"], command["socket"]
    _attach_output(command["log"], instance_id, "stdout", 1)
    _attach_output(command["log"], instance_id, "stderr", 2)
    try:
        return _serve_instance(app, uds=socket_path)
    finally:
        with contextlib.suppress(OSError):
            os.unlink(socket_path)


def _serve_instance(app: Any, **bind: Any) -> int:
    """Run the instance's server until it stops; its exit code. `cloudlet bench runtime`
    calls this with a TCP `bind`, everything else as an instance runs it."""
    _tune_gc()
    server = _instance_server(app, **bind)
    try:
        server.run()
    except SystemExit as exit_:
        return exit_.code if isinstance(exit_.code, int) else 1
    return 0 if server.started else 3  # 3: uvicorn's STARTUP_FAILURE


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--control-fd", type=int, required=True)
    parser.add_argument("--parent-pid", type=int, required=True)
    parser.add_argument("--project-dir", required=True)
    parser.add_argument("--import-root", required=True)
    parser.add_argument("--entrypoint", required=True)
    parser.add_argument("--sched-batch", action="store_true")
    args = parser.parse_args(argv)

    _die_with_parent(args.parent_pid)
    control = socket.socket(fileno=args.control_fd)
    control.setblocking(True)
    os.set_inheritable(control.fileno(), False)  # not for processes the app starts
    os.chdir(args.project_dir)
    # The app must not see this script's folder (Cloudlet's runtime modules) on sys.path.
    here = os.path.dirname(os.path.abspath(__file__))
    if sys.path and os.path.abspath(sys.path[0] or ".") == here:
        del sys.path[0]
    sys.path.insert(0, args.import_root)
    if args.sched_batch:
        _set_sched_batch()
    _line_buffer_std_streams()
    _install_log_handlers()

    try:
        app = _import_app(args.entrypoint)
        _preload_server()
    except BaseException as error:  # SystemExit too: a main.py that only runs uvicorn
        text = traceback.format_exc()
        _write_record(logging.ERROR, text.rstrip("\n"))
        _send(control, {"event": "failed", "error": _summary(error), "traceback": text})
        return 1
    _adopt_console_handlers()
    # Objects that exist now are shared with every fork; keep the collector from touching
    # (and so copying) their pages.
    gc.freeze()
    _send(control, {"event": "ready", "pid": os.getpid()})

    command = _serve(control)
    if command is None:
        return 0
    return _run_instance(app, command)


if __name__ == "__main__":
    sys.exit(main())
