"""Readiness: an instance is ready once it answers HTTP on its socket.

Uvicorn binds its socket only after lifespan startup, and any HTTP response (a 404 or a 500
included) shows the server and the app are serving. A request may be waiting for this
instance (scale from zero), so the check is a raw request on the Unix socket: an HTTP
client would cost more than the fork it waits for (httpx builds an SSL context per client).
"""

from __future__ import annotations

import asyncio
import contextlib
from pathlib import Path

# A fork of a zygote serves within tens of milliseconds: poll often at first. A failed
# connect to a missing socket is cheap.
FIRST_RETRY_S = 0.002
RETRY_GROWTH = 1.5
MAX_RETRY_S = 0.25

_REQUEST = (
    b"GET / HTTP/1.1\r\nHost: instance\r\nUser-Agent: cloudlet-readiness\r\n"
    b"Connection: close\r\n\r\n"
)


async def wait_until_ready(socket_path: Path, timeout_s: float) -> None:
    """Poll `GET /` over the Unix socket until any response; TimeoutError after timeout_s."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout_s
    retry_s = FIRST_RETRY_S
    while True:
        remaining = deadline - loop.time()
        if remaining <= 0:
            raise TimeoutError(f"no HTTP response on {socket_path} within {timeout_s:g} s")
        try:
            async with asyncio.timeout(remaining):
                if await _answers(socket_path):
                    return
        except (OSError, TimeoutError):
            pass  # no socket yet, not listening yet, or still starting
        await asyncio.sleep(min(retry_s, max(deadline - loop.time(), 0)))
        retry_s = min(retry_s * RETRY_GROWTH, MAX_RETRY_S)


async def _answers(socket_path: Path) -> bool:
    reader, writer = await asyncio.open_unix_connection(str(socket_path))
    try:
        writer.write(_REQUEST)
        status = await reader.readline()
        return status.startswith(b"HTTP/1.")
    finally:
        writer.close()
        with contextlib.suppress(OSError):
            await writer.wait_closed()
