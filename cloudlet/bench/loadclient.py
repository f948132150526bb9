"""A load client for ``cloudlet bench connections``, run as its own process:

    python -m cloudlet.bench.loadclient idle  --port P --host H --count N
    python -m cloudlet.bench.loadclient burst --port P --host H --count N --path /sleep

Standard library (plus uvloop when present) and raw sockets: no HTTP client library sits
between the numbers and the server. It raises its own open-files limit first and reports
it. Everything it says is one JSON object per line on stdout.

``idle``: open N keep-alive connections, one GET on each, keep them open. Then it obeys
lines on stdin: ``check K`` sends a second GET on K connections spread over all of them
and reports how many answered; ``close`` closes everything and exits.

``burst``: open N connections, then send one GET on every one at once, so N requests are
in flight together; report statuses, errors, latency and the total time.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import resource
import sys
import time
from collections import Counter
from typing import Any

BATCH = 250  # connections opened concurrently (the listen backlogs are 4096)


def emit(message: dict[str, Any]) -> None:
    sys.stdout.write(json.dumps(message) + "\n")
    sys.stdout.flush()


def raise_nofile(want: int) -> dict[str, Any]:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    out: dict[str, Any] = {"soft_before": soft, "hard_before": hard}
    if hard != resource.RLIM_INFINITY and want > hard:
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (want, want))
        except (OSError, ValueError) as error:
            out["beyond_hard"] = f"setrlimit(RLIMIT_NOFILE, {want}): {error}"
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft != hard:
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
        except (OSError, ValueError) as error:
            out["soft_error"] = str(error)
    out["soft"], out["hard"] = resource.getrlimit(resource.RLIMIT_NOFILE)
    return out


def error_kind(error: BaseException) -> str:
    if isinstance(error, OSError) and error.errno is not None:
        return f"{type(error).__name__}[{os.strerror(error.errno)}]"
    return type(error).__name__


class Conn(asyncio.Protocol):
    """One client connection; one response at a time (Content-Length framed)."""

    def __init__(self) -> None:
        self.transport: asyncio.Transport | None = None
        self.buf = bytearray()
        self.waiter: asyncio.Future[int] | None = None
        self.closed = False
        self.sent_at = 0.0
        self.latency = 0.0

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def request(self, data: bytes) -> asyncio.Future[int]:
        loop = asyncio.get_running_loop()
        self.waiter = loop.create_future()
        if self.closed or self.transport is None:
            self.waiter.set_exception(ConnectionResetError("closed before the request"))
            return self.waiter
        self.buf.clear()
        self.sent_at = time.perf_counter()
        self.transport.write(data)
        return self.waiter

    def data_received(self, data: bytes) -> None:
        self.buf += data
        waiter = self.waiter
        if waiter is None or waiter.done():
            return
        end = self.buf.find(b"\r\n\r\n")
        if end < 0:
            return
        head = bytes(self.buf[:end]).split(b"\r\n")
        try:
            status = int(head[0].split()[1])
        except (IndexError, ValueError):
            waiter.set_exception(ValueError(f"bad status line {head[0][:60]!r}"))
            return
        length = 0
        for line in head[1:]:
            name, _, value = line.partition(b":")
            if name.strip().lower() == b"content-length":
                length = int(value)
        if len(self.buf) >= end + 4 + length:
            self.latency = time.perf_counter() - self.sent_at
            del self.buf[: end + 4 + length]
            waiter.set_result(status)

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        if self.waiter is not None and not self.waiter.done():
            self.waiter.set_exception(exc or ConnectionResetError("closed by the server"))

    def close(self) -> None:
        if self.transport is not None:
            self.transport.close()


async def open_all(
    port: int, count: int, first: bytes | None = None
) -> tuple[list[Conn], Counter[str], list[int | BaseException]]:
    """Open ``count`` connections, BATCH at a time. With ``first``, send it on each and read
    the response before the next batch, so at most BATCH requests are in flight; the
    results are in the order of the connections."""
    loop = asyncio.get_running_loop()
    opened: list[tuple[Conn, int | BaseException]] = []
    errors: Counter[str] = Counter()

    async def one() -> None:
        try:
            _, conn = await asyncio.wait_for(loop.create_connection(Conn, "127.0.0.1", port), 30)
        except (OSError, TimeoutError) as error:
            errors[error_kind(error)] += 1
            return
        result: int | BaseException = 0
        if first is not None:
            result = await exchange(conn, first, 60)
        opened.append((conn, result))

    for start in range(0, count, BATCH):
        await asyncio.gather(*(one() for _ in range(min(BATCH, count - start))))
    return [c for c, _ in opened], errors, [r for _, r in opened]


def request_bytes(host: str, path: str) -> bytes:
    return f"GET {path} HTTP/1.1\r\nHost: {host}\r\nUser-Agent: cloudlet-bench\r\n\r\n".encode()


async def exchange(conn: Conn, data: bytes, wait_s: float) -> int | BaseException:
    try:
        return await asyncio.wait_for(conn.request(data), wait_s)
    except (OSError, TimeoutError, ValueError) as error:
        return error


def tally(results: list[int | BaseException]) -> tuple[Counter[str], Counter[str]]:
    statuses: Counter[str] = Counter()
    errors: Counter[str] = Counter()
    for result in results:
        if isinstance(result, BaseException):
            errors[error_kind(result)] += 1
        else:
            statuses[str(result)] += 1
    return statuses, errors


async def idle(args: argparse.Namespace) -> None:
    data = request_bytes(args.host, args.path)
    t0 = time.perf_counter()
    conns, errors, first = await open_all(args.port, args.count, data)
    statuses, request_errors = tally(first)
    errors.update(request_errors)
    held = [c for c, r in zip(conns, first, strict=True) if r == 200]
    for c, r in zip(conns, first, strict=True):
        if r != 200:
            c.close()
    emit(
        {
            "event": "open",
            "open": len(held),
            "failed": args.count - len(held),
            "statuses": dict(statuses),
            "errors": dict(errors),
            "seconds": round(time.perf_counter() - t0, 2),
        }
    )
    loop = asyncio.get_running_loop()
    reader = asyncio.StreamReader()
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)
    while line := (await reader.readline()).decode().split():
        if line[0] == "check":
            k = max(1, min(int(line[1]), len(held))) if held else 0
            sample = held[:: max(1, len(held) // k)][:k] if k else []
            still_open = sum(1 for c in held if not c.closed)
            results = await asyncio.gather(*(exchange(c, data, 10) for c in sample))
            statuses, errors = tally(results)
            emit(
                {
                    "event": "check",
                    "sampled": len(sample),
                    "alive": statuses.get("200", 0),
                    "statuses": dict(statuses),
                    "errors": dict(errors),
                    "still_open": still_open,
                }
            )
        elif line[0] == "close":
            break
    for c in held:
        c.close()
    await asyncio.sleep(0.2)
    emit({"event": "closed"})


async def burst(args: argparse.Namespace) -> None:
    data = request_bytes(args.host, args.path)
    t0 = time.perf_counter()
    conns, connect_errors, _ = await open_all(args.port, args.count)
    connect_s = time.perf_counter() - t0
    emit({"event": "connected", "open": len(conns), "errors": dict(connect_errors)})
    t1 = time.perf_counter()
    # Every request is written before any response is awaited: all are in flight at once.
    futures = [c.request(data) for c in conns]
    done = await asyncio.gather(
        *(asyncio.wait_for(f, args.wait) for f in futures), return_exceptions=True
    )
    total_s = time.perf_counter() - t1
    results: list[int | BaseException] = [
        r if isinstance(r, (int, BaseException)) else ValueError(repr(r)) for r in done
    ]
    statuses, errors = tally(results)
    latencies = sorted(c.latency for c, r in zip(conns, results, strict=True) if r == 200)

    def pct(p: float) -> float | None:
        if not latencies:
            return None
        return round(latencies[min(len(latencies) - 1, int(p * len(latencies)))], 3)

    ok = statuses.get("200", 0)
    emit(
        {
            "event": "burst",
            "requested": args.count,
            "connected": len(conns),
            "connect_errors": dict(connect_errors),
            "connect_s": round(connect_s, 2),
            "ok": ok,
            "errors_total": args.count - ok,
            "statuses": dict(statuses),
            "errors": dict(errors),
            "total_s": round(total_s, 3),
            "latency_s": {"p50": pct(0.5), "p99": pct(0.99), "max": pct(1.0)},
        }
    )
    for c in conns:
        c.close()
    await asyncio.sleep(0.2)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m cloudlet.bench.loadclient")
    parser.add_argument("mode", choices=["idle", "burst"])
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--host", default="127.0.0.1", help="the Host header")
    parser.add_argument("--path", default="/")
    parser.add_argument("--count", type=int, required=True)
    parser.add_argument("--wait", type=float, default=120.0, help="burst: seconds per request")
    args = parser.parse_args(argv)
    # Connections, the stdio pipes and a margin.
    emit({"event": "limits", **raise_nofile(args.count + 64)})
    coro = idle(args) if args.mode == "idle" else burst(args)
    try:
        import uvloop
    except ImportError:  # pragma: no cover - uvloop is a dependency except on Windows
        asyncio.run(coro)
    else:
        uvloop.run(coro)


if __name__ == "__main__":
    main()
