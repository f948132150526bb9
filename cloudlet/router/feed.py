"""The feed: how the control plane gives routers their table and learns what is in flight.

Newline-delimited JSON over a Unix stream socket; the control plane listens
(:class:`FeedPublisher`), each router process connects (:class:`FeedClient`).

control plane → router::

    {"type": "table", "generation": 17, "hosts": {...}, "revisions": {...}}

    Sent on every publish and to each router when it connects. The router applies it
    whole, then acknowledges.

router → control plane::

    {"type": "hello", "router": "host:pid", "pid": 123, "generation": 16 | null, <counts>}
                                                      on connect
    {"type": "ack", "generation": 17, <counts>}
    {"type": "stats", "generation": 17, <counts>}     every ~1 s
    {"type": "demand", "generation": 17, "revision": "...", <counts>}
                                                      a request is held for a revision
                                                      with no ready instance (activator)
    {"type": "error", "generation": 17, "detail": "..."}   a table the router rejected

``<counts>`` are four maps keyed by revision id: ``inflight`` (requests in flight; an open
WebSocket counts as one), ``held`` (requests waiting for an instance), ``requests`` and
``rejected`` (totals since the router started: requests routed, and requests refused with
429 or 503 by admission control or an overflowing hold queue). An ack carries
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
from typing import Any, NotRequired, TypedDict

log = logging.getLogger("cloudlet.router.feed")

# One line holds a whole table; thousands of apps stay far below this.
MAX_LINE = 64 * 1024 * 1024
_MIN_BACKOFF = 0.05
_MAX_BACKOFF = 1.0


class InstanceSpec(TypedDict):
    id: str
    socket: str  # path of the instance's Unix socket


class ScaleSpec(TypedDict):
    # Requests in flight at once beyond which the router answers 429 (0: no limit).
    limit: int
    # How long a request may wait for an instance when none is ready (0: 503 at once).
    hold: float
    # Requests that may wait at once; more get 503 at once.
    queue: int


NO_SCALE: ScaleSpec = {"limit": 0, "hold": 0.0, "queue": 0}


class RevisionSpec(TypedDict):
    app: str  # the app's slug
    instances: list[InstanceSpec]  # ready instances only
    scale: NotRequired[ScaleSpec]  # absent: NO_SCALE


class Counts(TypedDict):
    inflight: dict[str, int]
    held: dict[str, int]
    requests: dict[str, int]
    rejected: dict[str, int]


COUNT_KEYS = ("inflight", "held", "requests", "rejected")


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
                    "scale": dict(spec.get("scale", NO_SCALE)),
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
            specs[str(rid)] = {
                "app": spec["app"],
                "instances": instances,
                "scale": _scale_from_json(rid, spec.get("scale", NO_SCALE)),
            }
        return cls(generation=generation, hosts=dict(hosts), revisions=specs)


def _scale_from_json(rid: str, raw: Any) -> ScaleSpec:
    if not isinstance(raw, dict):
        raise ValueError(f"revision {rid!r}: scale must be an object")
    limit, hold, queue = raw.get("limit", 0), raw.get("hold", 0.0), raw.get("queue", 0)
    if not all(isinstance(v, int) and not isinstance(v, bool) and v >= 0 for v in (limit, queue)):
        raise ValueError(f"revision {rid!r}: scale limit and queue must be integers >= 0")
    if isinstance(hold, bool) or not isinstance(hold, int | float) or not hold >= 0:
        raise ValueError(f"revision {rid!r}: scale hold must be a number >= 0")
    return {"limit": limit, "hold": float(hold), "queue": queue}


def encode(message: Mapping[str, Any]) -> bytes:
    return json.dumps(message, separators=(",", ":")).encode() + b"\n"


# -- control-plane side -------------------------------------------------------------------


@dataclass(eq=False)
class _Peer:
    writer: asyncio.StreamWriter
    name: str = "?"
    applied: int | None = None
    counts: dict[str, dict[str, int]] = field(default_factory=dict)


class FeedPublisher:
    """Serves the routing table to every connected router (control-plane side).

    All methods must be called from the event loop the publisher was started in.
    """

    def __init__(
        self,
        socket_path: str | os.PathLike[str],
        on_demand: Callable[[str], None] | None = None,
    ) -> None:
        self.path = os.fspath(socket_path)
        # Called with a revision id when a router holds a request for it (activator poke).
        self.on_demand = on_demand
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
        return self._sum("inflight")

    def held(self) -> dict[str, int]:
        """Requests waiting for an instance per revision, summed over connected routers."""
        return self._sum("held")

    def requests(self) -> dict[str, int]:
        """Requests served per revision, summed over connected routers."""
        return self._sum("requests")

    def rejected(self) -> dict[str, int]:
        """Requests refused (429, or 503 on a full hold queue) per revision."""
        return self._sum("rejected")

    def _sum(self, key: str) -> dict[str, int]:
        total: dict[str, int] = {}
        for peer in self._peers:
            for rid, n in peer.counts.get(key, {}).items():
                total[rid] = total.get(rid, 0) + n
        return total

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
        if kind in ("hello", "ack", "stats", "demand"):
            for key in COUNT_KEYS:
                counts = message.get(key)
                if isinstance(counts, dict):
                    peer.counts[key] = {str(k): int(v) for k, v in counts.items()}
        if kind == "demand":
            revision = message.get("revision")
            if isinstance(revision, str) and self.on_demand is not None:
                self.on_demand(revision)
            return False
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

    ``apply`` installs a table; ``stats`` returns the :class:`Counts`. While the
    control plane is unreachable the router keeps its last table.
    """

    def __init__(
        self,
        socket_path: str | os.PathLike[str],
        apply: Callable[[RouteTable], None],
        stats: Callable[[], Counts],
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
                # Not `await reporter` under suppress(CancelledError): that would also
                # swallow a cancellation of run() itself arriving here, and run() would
                # go on reconnecting while the router waits for it to end.
                await asyncio.wait([reporter])
            log.warning(
                "feed: disconnected; serving generation %s until reconnected", self.generation
            )

    def poke(self) -> None:
        """Report the counts now instead of at the next tick."""
        self._send("stats")

    def demand(self, revision_id: str) -> None:
        """Ask the control plane for an instance of ``revision_id`` (a request is held)."""
        self._send("demand", revision=revision_id)

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
            message.update(self._stats())
        message.update(extra)
        writer.write(encode(message))
