"""The feed: how the control plane gives routers their table and learns what is in flight.

Newline-delimited JSON over a Unix stream socket; the control plane listens
(:class:`FeedPublisher`), each router process connects (:class:`FeedClient`).

control plane → router::

    {"type": "table", "generation": 17, "hosts": {...}, "revisions": {...}}

    Sent on every publish and to each router when it connects. The router applies it
    whole, then acknowledges.

router → control plane::

    {"type": "hello", "router": "host:pid", "pid": 123, "generation": 16 | null,
     "inflight": {...}, "requests": {...}}            on connect
    {"type": "ack", "generation": 17, "inflight": {...}, "requests": {...}}
    {"type": "stats", "generation": 17, "inflight": {...}, "requests": {...}}   every ~1 s
    {"type": "error", "generation": 17, "detail": "..."}   a table the router rejected

``inflight`` is ``{revision_id: requests in flight}`` (an open WebSocket counts as one),
``requests`` is ``{revision_id: total requests since the router started}``. An ack carries
the counts as they were right after the switch, so once :meth:`FeedPublisher.wait_applied`
has returned, :meth:`FeedPublisher.inflight` never reflects the time before the switch; a
revision that left the table is reported until its count has reached 0, and a revision
absent from the report has nothing in flight.

The router keeps serving its last table while the control plane is away and reconnects
with back-off.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import json
import logging
import os
import socket
import stat
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, TypedDict

log = logging.getLogger("cloudlet.router.feed")

# One line holds a whole table; thousands of apps stay far below this.
MAX_LINE = 64 * 1024 * 1024
_MIN_BACKOFF = 0.05
_MAX_BACKOFF = 1.0

Stats = tuple[dict[str, int], dict[str, int]]


class InstanceSpec(TypedDict):
    id: str
    socket: str  # path of the instance's Unix socket


class RevisionSpec(TypedDict):
    app: str  # the app's slug
    instances: list[InstanceSpec]  # ready instances only; empty → the router answers 503


@dataclass(frozen=True)
class RouteTable:
    """Everything a router needs to route.

    ``hosts`` maps a lowercase host name without port (``<slug>.localhost``, verified
    custom domains) to a revision id; ``revisions`` maps a revision id to its app and its
    ready instances. ``generation`` is set by :meth:`FeedPublisher.publish`.
    """

    generation: int = 0
    hosts: dict[str, str] = field(default_factory=dict)
    revisions: dict[str, RevisionSpec] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return {
            "generation": self.generation,
            "hosts": dict(self.hosts),
            "revisions": {
                rid: {
                    "app": spec["app"],
                    "instances": [
                        {"id": i["id"], "socket": i["socket"]} for i in spec["instances"]
                    ],
                }
                for rid, spec in self.revisions.items()
            },
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> RouteTable:
        """Validate and build; raise ValueError on anything malformed."""
        generation = data.get("generation", 0)
        hosts = data.get("hosts", {})
        revisions = data.get("revisions", {})
        if not isinstance(generation, int) or isinstance(generation, bool):
            raise ValueError("generation must be an integer")
        if not isinstance(hosts, dict) or not all(
            isinstance(k, str) and isinstance(v, str) for k, v in hosts.items()
        ):
            raise ValueError("hosts must map host names to revision ids")
        if not isinstance(revisions, dict):
            raise ValueError("revisions must be an object")
        specs: dict[str, RevisionSpec] = {}
        for rid, spec in revisions.items():
            if not isinstance(spec, dict) or not isinstance(spec.get("app"), str):
                raise ValueError(f"revision {rid!r}: app must be a string")
            raw = spec.get("instances", [])
            if not isinstance(raw, list):
                raise ValueError(f"revision {rid!r}: instances must be a list")
            instances: list[InstanceSpec] = []
            for inst in raw:
                if not (
                    isinstance(inst, dict)
                    and isinstance(inst.get("id"), str)
                    and isinstance(inst.get("socket"), str)
                    and inst["socket"]
                ):
                    raise ValueError(f"revision {rid!r}: each instance needs an id and a socket")
                instances.append({"id": inst["id"], "socket": inst["socket"]})
            specs[str(rid)] = {"app": spec["app"], "instances": instances}
        return cls(generation=generation, hosts=dict(hosts), revisions=specs)


def encode(message: Mapping[str, Any]) -> bytes:
    return json.dumps(message, separators=(",", ":")).encode() + b"\n"


# -- control-plane side -------------------------------------------------------------------


@dataclass(eq=False)
class _Peer:
    writer: asyncio.StreamWriter
    name: str = "?"
    applied: int | None = None
    inflight: dict[str, int] = field(default_factory=dict)
    requests: dict[str, int] = field(default_factory=dict)


class FeedPublisher:
    """Serves the routing table to every connected router (control-plane side).

    All methods must be called from the event loop the publisher was started in.
    """

    def __init__(self, socket_path: str | os.PathLike[str]) -> None:
        self.path = os.fspath(socket_path)
        self._server: asyncio.AbstractServer | None = None
        self._peers: set[_Peer] = set()
        self._tasks: set[asyncio.Task[None]] = set()
        self._changed: asyncio.Condition | None = None
        self._table: RouteTable | None = None
        self._line = b""
        # Wall-clock milliseconds as the start, so generations keep increasing across
        # control-plane restarts (routers log them; nothing depends on it).
        self._generation = time.time_ns() // 1_000_000

    @property
    def table(self) -> RouteTable | None:
        """The last published table."""
        return self._table

    @property
    def routers(self) -> int:
        """Routers connected now."""
        return len(self._peers)

    async def start(self) -> None:
        self._changed = asyncio.Condition()
        _remove_stale_socket(self.path)
        self._server = await asyncio.start_unix_server(self._serve, self.path, limit=MAX_LINE)
        # The feed decides where traffic goes: only this user may connect.
        os.chmod(self.path, 0o600)

    def publish(self, table: RouteTable) -> int:
        """Send ``table`` to every router; return its generation (the larger of the
        publisher's next number and ``table.generation``)."""
        generation = max(self._generation + 1, table.generation)
        self._generation = generation
        table = dataclasses.replace(table, generation=generation)
        self._table = table
        self._line = encode({"type": "table", **table.to_json()})
        for peer in self._peers:
            if not peer.writer.is_closing():
                peer.writer.write(self._line)
        return generation

    # The control plane's API takes a timeout, so the caller need not wrap each call.
    async def wait_applied(
        self,
        generation: int,
        timeout: float,  # noqa: ASYNC109
        *,
        min_routers: int = 0,
    ) -> bool:
        """True once every connected router (and at least ``min_routers``) has applied
        ``generation`` or a later one; False after ``timeout`` seconds."""
        changed = self._changed
        if changed is None:
            raise RuntimeError("FeedPublisher.start() was not called")

        def applied() -> bool:
            return len(self._peers) >= min_routers and all(
                p.applied is not None and p.applied >= generation for p in self._peers
            )

        try:
            async with asyncio.timeout(timeout), changed:
                await changed.wait_for(applied)
        except TimeoutError:
            return False
        return True

    def inflight(self) -> dict[str, int]:
        """Requests in flight per revision, summed over connected routers."""
        return _sum(p.inflight for p in self._peers)

    def requests(self) -> dict[str, int]:
        """Requests served per revision, summed over connected routers."""
        return _sum(p.requests for p in self._peers)

    async def close(self) -> None:
        if self._server is not None:
            self._server.close()
            self._server = None
        for peer in list(self._peers):
            peer.writer.close()
        if self._tasks:
            await asyncio.wait(list(self._tasks), timeout=5)
        with contextlib.suppress(FileNotFoundError):
            os.unlink(self.path)

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        if task is not None:
            self._tasks.add(task)
        peer = _Peer(writer)
        self._peers.add(peer)
        try:
            if self._line:
                writer.write(self._line)
            await self._notify()
            while line := await reader.readline():
                try:
                    message = json.loads(line)
                except ValueError:
                    log.warning("feed: router %s sent a line that is not JSON", peer.name)
                    continue
                if isinstance(message, dict) and self._handle(peer, message):
                    await self._notify()
        except (OSError, ValueError, asyncio.IncompleteReadError) as exc:
            log.warning("feed: router %s: %s", peer.name, exc)
        finally:
            self._peers.discard(peer)
            writer.close()
            await self._notify()
            log.info("feed: router %s disconnected", peer.name)
            if task is not None:
                self._tasks.discard(task)

    def _handle(self, peer: _Peer, message: dict[str, Any]) -> bool:
        kind = message.get("type")
        if kind in ("hello", "ack", "stats"):
            inflight = message.get("inflight")
            requests = message.get("requests")
            if isinstance(inflight, dict):
                peer.inflight = {str(k): int(v) for k, v in inflight.items()}
            if isinstance(requests, dict):
                peer.requests = {str(k): int(v) for k, v in requests.items()}
        if kind == "hello":
            peer.name = str(message.get("router", "?"))
            log.info("feed: router %s connected", peer.name)
            return False
        if kind == "ack":
            generation = message.get("generation")
            if isinstance(generation, int):
                peer.applied = generation
            return True
        if kind == "error":
            log.error(
                "feed: router %s rejected generation %s: %s",
                peer.name,
                message.get("generation"),
                message.get("detail"),
            )
        return False

    async def _notify(self) -> None:
        if self._changed is not None:
            async with self._changed:
                self._changed.notify_all()


def _sum(reports: Any) -> dict[str, int]:
    total: dict[str, int] = {}
    for report in reports:
        for rid, n in report.items():
            total[rid] = total.get(rid, 0) + n
    return total


def _remove_stale_socket(path: str) -> None:
    """Remove a socket file left by a publisher that died; refuse to steal a live one."""
    try:
        mode = os.stat(path).st_mode
    except FileNotFoundError:
        return
    if not stat.S_ISSOCK(mode):
        raise RuntimeError(f"{path} exists and is not a socket")
    probe = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        probe.connect(path)
    except OSError:
        os.unlink(path)
    else:
        raise RuntimeError(f"another feed publisher is listening on {path}")
    finally:
        probe.close()


# -- router side --------------------------------------------------------------------------


class FeedClient:
    """Keeps a router connected to the control plane's feed (router side).

    ``apply`` installs a table; ``stats`` returns ``(inflight, requests)``. While the
    control plane is unreachable the router keeps its last table.
    """

    def __init__(
        self,
        socket_path: str | os.PathLike[str],
        apply: Callable[[RouteTable], None],
        stats: Callable[[], Stats],
        *,
        interval: float = 1.0,
        name: str | None = None,
    ) -> None:
        self.path = os.fspath(socket_path)
        self._apply = apply
        self._stats = stats
        self.interval = interval
        self.name = name or f"{socket.gethostname()}:{os.getpid()}"
        self.generation: int | None = None
        self._writer: asyncio.StreamWriter | None = None

    @property
    def connected(self) -> bool:
        return self._writer is not None

    async def run(self) -> None:
        """Connect, follow the feed, reconnect with back-off; runs until cancelled."""
        delay = _MIN_BACKOFF
        warned = False
        while True:
            try:
                reader, writer = await asyncio.open_unix_connection(self.path, limit=MAX_LINE)
            except OSError as exc:
                if not warned:
                    log.warning("feed: cannot reach %s (%s); retrying", self.path, exc)
                    warned = True
                await asyncio.sleep(delay)
                delay = min(delay * 2, _MAX_BACKOFF)
                continue
            delay = _MIN_BACKOFF
            warned = False
            log.info("feed: connected to %s", self.path)
            self._writer = writer
            self._send("hello", router=self.name, pid=os.getpid())
            reporter = asyncio.create_task(self._report())
            try:
                await self._follow(reader)
            except (OSError, ValueError, asyncio.IncompleteReadError) as exc:
                log.warning("feed: %s", exc)
            finally:
                self._writer = None
                reporter.cancel()
                writer.close()
                with contextlib.suppress(asyncio.CancelledError):
                    await reporter
            log.warning(
                "feed: disconnected; serving generation %s until reconnected", self.generation
            )

    def poke(self) -> None:
        """Report the counts now instead of at the next tick."""
        self._send("stats")

    async def _follow(self, reader: asyncio.StreamReader) -> None:
        while line := await reader.readline():
            try:
                message = json.loads(line)
            except ValueError:
                log.warning("feed: ignoring a line that is not JSON")
                continue
            if not isinstance(message, dict) or message.get("type") != "table":
                continue
            try:
                table = RouteTable.from_json(message)
            except ValueError as exc:
                log.error("feed: rejected table %s: %s", message.get("generation"), exc)
                self._send("error", generation=message.get("generation"), detail=str(exc))
                continue
            self._apply(table)
            self.generation = table.generation
            self._send("ack")

    async def _report(self) -> None:
        while True:
            await asyncio.sleep(self.interval)
            self._send("stats")

    def _send(self, kind: str, **extra: Any) -> None:
        writer = self._writer
        if writer is None or writer.is_closing():
            return
        # A control plane that stopped reading must not make the router buffer forever.
        if writer.transport.get_write_buffer_size() > 4 * 1024 * 1024:
            return
        message: dict[str, Any] = {"type": kind, "generation": self.generation}
        if kind != "error":
            message["inflight"], message["requests"] = self._stats()
        message.update(extra)
        writer.write(encode(message))
