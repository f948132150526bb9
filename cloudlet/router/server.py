"""Run a router: listen for app traffic, follow the feed, drain on SIGTERM."""

from __future__ import annotations

import asyncio
import logging
import signal

from cloudlet.router.client import ClientProtocol
from cloudlet.router.config import RouterConfig
from cloudlet.router.feed import FeedClient
from cloudlet.router.table import Router

log = logging.getLogger("cloudlet.router")


async def serve(host: str, port: int, feed_path: str, config: RouterConfig) -> None:
    """Serve until SIGTERM/SIGINT, then stop accepting, let exchanges finish (up to
    ``config.drain_timeout``) and return."""
    loop = asyncio.get_running_loop()
    router = Router(loop, config)
    feed = FeedClient(feed_path, router.apply, router.stats, interval=config.stats_interval)
    # Not from inside the protocol callback that ended the last request: soon after.

    def drained() -> None:
        loop.call_soon(feed.poke)

    router.on_drained = drained
    router.on_demand = feed.demand

    server = await loop.create_server(
        lambda: ClientProtocol(router), host, port, backlog=4096, reuse_address=True
    )
    bound = server.sockets[0].getsockname()
    log.info("router listening on http://%s:%d (feed %s)", bound[0], bound[1], feed_path)

    stop = asyncio.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    feed_task = loop.create_task(feed.run())
    tick_task = loop.create_task(_tick(router))
    try:
        await stop.wait()
        log.info("router stopping: draining %d connections", len(router.connections))
        server.close()
        router.draining = True
        router.close_idle()
        deadline = loop.time() + config.drain_timeout
        while router.connections and loop.time() < deadline:
            await asyncio.sleep(0.05)
            router.close_idle()
    finally:
        for conn in list(router.connections):
            conn.transport.abort()
        for task in (feed_task, tick_task):
            task.cancel()
        # Bounded: a task that swallowed its cancellation must not keep the router alive.
        await asyncio.wait((feed_task, tick_task), timeout=5)
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.remove_signal_handler(sig)
    log.info("router stopped")


async def _tick(router: Router) -> None:
    while True:
        await asyncio.sleep(1.0)
        router.tick()
