"""Load through the router: keep-alive clients and clients that open a connection per request.

Each worker thread sends its probes round-robin until the load stops, and checks every answer:
a transport error, an unexpected status or a failed body check is a failure. Nothing here
measures time: the load runs for as long as the caller keeps it on.
"""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field

import httpx

# A check returns what is wrong with a response, or None when it is right.
Check = Callable[[httpx.Response], str | None]


@dataclass(frozen=True)
class Probe:
    """One request and what its answer must be."""

    path: str
    status: int = 200
    check: Check | None = None
    method: str = "GET"
    content: bytes | None = None
    headers: tuple[tuple[str, str], ...] = ()

    @property
    def name(self) -> str:
        return f"{self.method} {self.path}"


@dataclass
class LoadResult:
    requests: int = 0
    failures: list[str] = field(default_factory=list)
    # "GET /path -> 200": how many answers each probe got, with which status.
    statuses: Counter[str] = field(default_factory=Counter)
    lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def record(self, probe: Probe, status: int | None, problem: str | None) -> None:
        with self.lock:
            self.requests += 1
            if status is not None:
                self.statuses[f"{probe.name} -> {status}"] += 1
            if problem is not None:
                self.failures.append(f"{probe.name}: {problem}")

    def summary(self) -> str:
        lines = [f"{self.requests} requests, {len(self.failures)} failures"]
        lines += [f"  {n:6d}  {key}" for key, n in sorted(self.statuses.items())]
        return "\n".join(lines)


def _judge(probe: Probe, response: httpx.Response) -> str | None:
    if response.status_code != probe.status:
        return f"status {response.status_code}, not {probe.status}: {response.text[:200]!r}"
    if probe.check is not None:
        try:
            return probe.check(response)
        except Exception as exc:  # a check that cannot even parse the body is a failure
            return f"check raised {exc!r}; body {response.text[:200]!r}"
    return None


@contextmanager
def load(
    port: int,
    host: str,
    probes: Sequence[Probe],
    *,
    fresh_probes: Sequence[Probe] | None = None,
    keepalive_clients: int = 2,
    fresh_clients: int = 2,
) -> Iterator[LoadResult]:
    """Send `probes` through the router at 127.0.0.1:`port` with `Host: host` while the block
    runs: `keepalive_clients` threads that each keep one connection, and `fresh_clients` threads
    that open a new connection per request (sending `fresh_probes`, `probes` by default)."""
    result = LoadResult()
    stop = threading.Event()
    base = f"http://127.0.0.1:{port}"

    def send(client: httpx.Client, probe: Probe) -> None:
        try:
            response = client.request(
                probe.method,
                base + probe.path,
                content=probe.content,
                headers={"Host": host, **dict(probe.headers)},
            )
        except httpx.HTTPError as exc:
            result.record(probe, None, repr(exc))
            return
        result.record(probe, response.status_code, _judge(probe, response))

    def worker(index: int, keepalive: bool) -> None:
        mine = list(probes if keepalive or fresh_probes is None else fresh_probes)
        turn = index  # workers start at different probes
        if keepalive:
            with httpx.Client(timeout=30, trust_env=False) as client:
                while not stop.is_set():
                    send(client, mine[turn % len(mine)])
                    turn += 1
        else:
            while not stop.is_set():
                with httpx.Client(timeout=30, trust_env=False) as client:
                    send(client, mine[turn % len(mine)])
                turn += 1

    threads = [
        threading.Thread(target=worker, args=(i, True), daemon=True)
        for i in range(keepalive_clients)
    ] + [
        threading.Thread(target=worker, args=(i, False), daemon=True) for i in range(fresh_clients)
    ]
    for thread in threads:
        thread.start()
    try:
        yield result
    finally:
        stop.set()
        for thread in threads:
            thread.join()
