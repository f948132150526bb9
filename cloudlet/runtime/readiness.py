"""Readiness: an instance is ready once it answers HTTP on its socket.

Uvicorn binds its socket only after lifespan startup, and any HTTP response (a 404 or a 500
included) shows the server and the app are serving. Not a hot path, so httpx is fine.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

import httpx

FIRST_RETRY_S = 0.01
MAX_RETRY_S = 0.25


async def wait_until_ready(socket_path: Path, timeout_s: float) -> None:
    """Poll `GET /` over the Unix socket until any response; TimeoutError after timeout_s."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout_s
    retry_s = FIRST_RETRY_S
    transport = httpx.AsyncHTTPTransport(uds=str(socket_path))
    async with httpx.AsyncClient(transport=transport, base_url="http://instance") as client:
        while True:
            remaining = deadline - loop.time()
            if remaining <= 0:
                raise TimeoutError(f"no HTTP response on {socket_path} within {timeout_s:g} s")
            try:
                await client.get(
                    "/", headers={"user-agent": "cloudlet-readiness"}, timeout=remaining
                )
                return
            except httpx.TransportError:
                pass  # no socket yet, not listening yet, or still starting
            await asyncio.sleep(min(retry_s, max(remaining, 0)))
            retry_s = min(retry_s * 2, MAX_RETRY_S)
