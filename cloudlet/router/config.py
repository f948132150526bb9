"""Router settings: one frozen object shared by every connection."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class RouterConfig:
    # A request head larger than this gets 431; it also bounds what one client can make us buffer.
    max_head: int = 64 * 1024
    # Idle client keep-alive connections (and clients slow to send a head) are closed after this.
    keepalive_timeout: float = 60.0
    # Idle pooled connections kept per instance; more are closed on release.
    pool_max_idle: int = 64
    # Pooled connections idle longer than this are not reused: uvicorn closes idle
    # connections after --timeout-keep-alive (5 s by default) and reusing one racing
    # that close costs a retry.
    upstream_idle_timeout: float = 4.0
    connect_timeout: float = 5.0
    # Transport write-buffer high-water mark: above it the other side stops being read.
    write_high_water: int = 256 * 1024
    # On SIGTERM, how long in-flight exchanges may take to finish before the process exits.
    drain_timeout: float = 30.0
    # How often the router reports in-flight counts over the feed.
    stats_interval: float = 1.0
    # The process's open-files limit (0: unknown). Each client and each instance connection
    # is a file descriptor; near the limit, requests wait for a pooled instance connection
    # to come free instead of failing to open one (EMFILE).
    fd_limit: int = 0
    # Descriptors kept for everything else: the listener, the feed, logs, the event loop.
    fd_reserve: int = 64
