"""``python -m cloudlet.router --bind 127.0.0.1:8080 --feed /path/to/feed.sock``"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import resource
import sys

from cloudlet.router.config import RouterConfig
from cloudlet.router.server import serve

log = logging.getLogger("cloudlet.router")


def parse_bind(value: str) -> tuple[str, int]:
    """``HOST:PORT`` or ``[V6]:PORT``; port 0 picks a free one (the log line tells which)."""
    host, sep, port = value.rpartition(":")
    if not sep or not port.isdigit() or int(port) > 65535:
        raise argparse.ArgumentTypeError(f"expected HOST:PORT, got {value!r}")
    host = host.strip("[]")
    if not host:
        raise argparse.ArgumentTypeError("give the address to bind explicitly, e.g. 127.0.0.1")
    return host, int(port)


def raise_nofile_limit() -> int:
    """Raise the open-files soft limit to the hard limit: each client connection is a
    file descriptor, and so is each pooled instance connection."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    target = hard
    if hard == resource.RLIM_INFINITY:
        try:
            with open("/proc/sys/fs/nr_open") as f:
                target = int(f.read())
        except (OSError, ValueError):
            target = 1 << 20
    if soft != resource.RLIM_INFINITY and soft < target:
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
            soft = target
        except (OSError, ValueError) as exc:
            log.warning("cannot raise the open-files limit from %d: %s", soft, exc)
    return soft


def main(argv: list[str] | None = None) -> None:
    defaults = RouterConfig()
    parser = argparse.ArgumentParser(prog="python -m cloudlet.router", description=__doc__)
    parser.add_argument("--bind", type=parse_bind, default=("127.0.0.1", 8080), metavar="HOST:PORT")
    parser.add_argument("--feed", required=True, help="the control plane's feed socket")
    parser.add_argument("--keepalive-timeout", type=float, default=defaults.keepalive_timeout)
    parser.add_argument("--pool-max-idle", type=int, default=defaults.pool_max_idle)
    parser.add_argument(
        "--upstream-idle-timeout",
        type=float,
        default=defaults.upstream_idle_timeout,
        help="do not reuse instance connections idle longer than this (keep it below "
        "the instances' uvicorn --timeout-keep-alive)",
    )
    parser.add_argument("--drain-timeout", type=float, default=defaults.drain_timeout)
    parser.add_argument(
        "--sched-batch",
        action="store_true",
        help="run under SCHED_BATCH: fewer context switches per request when router and "
        "instances share cores, at some cost to neighbours",
    )
    parser.add_argument("--log-level", default="info")
    args = parser.parse_args(argv)

    logging.basicConfig(
        level=args.log_level.upper(),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    limit = raise_nofile_limit()
    log.info("open-files limit %d", limit)
    if args.sched_batch and hasattr(os, "SCHED_BATCH"):
        os.sched_setscheduler(0, os.SCHED_BATCH, os.sched_param(0))
    config = RouterConfig(
        keepalive_timeout=args.keepalive_timeout,
        pool_max_idle=args.pool_max_idle,
        upstream_idle_timeout=args.upstream_idle_timeout,
        drain_timeout=args.drain_timeout,
        fd_limit=limit,
    )
    host, port = args.bind
    coro = serve(host, port, args.feed, config)
    try:
        import uvloop
    except ImportError:  # pragma: no cover - uvloop is a dependency except on Windows
        asyncio.run(coro)
    else:
        uvloop.run(coro)


if __name__ == "__main__":
    main()
