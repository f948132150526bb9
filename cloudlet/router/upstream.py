"""A connection to an instance (over its Unix socket), reused across requests.

While an exchange runs, the connection holds the client's protocol and pipes the response
bytes to it as they arrive; httptools' response parser only finds where the response ends.
At the end it hands itself back (``client.response_done``), and the client returns it to
the pool: no Task and no Future per request.
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, cast

from httptools import HttpParserError, HttpParserUpgrade, HttpResponseParser

if TYPE_CHECKING:
    from cloudlet.router.client import ClientProtocol
    from cloudlet.router.pool import Instance

# Reasons a client's reading is paused (bit flags, see ClientProtocol.pause).
PAUSE_UPSTREAM = 1


class UpstreamProtocol(asyncio.Protocol):
    __slots__ = (
        "client",
        "closed",
        "final",
        "idle_since",
        "inst",
        "junk",
        "keep",
        "parser",
        "read_paused",
        "reused",
        "sent",
        "stale_parser",
        "status",
        "transport",
        "tunnel",
        "upgrade",
        "write_paused",
    )

    transport: asyncio.Transport

    def __init__(self, inst: Instance) -> None:
        self.inst = inst
        self.parser = HttpResponseParser(self)
        self.client: ClientProtocol | None = None
        self.closed = False
        self.reused = False
        self.idle_since = 0.0
        self.read_paused = False
        self.write_paused = False
        self.stale_parser = False
        self.tunnel = False
        self._reset(False)

    def _reset(self, upgrade: bool) -> None:
        self.upgrade = upgrade
        self.sent = False  # response bytes already went to the client
        self.final = False  # the final (non-1xx) response is complete
        self.keep = False
        self.junk = False
        self.status = 0

    # -- lifecycle ---------------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)
        self.transport.set_write_buffer_limits(high=self.inst.router.config.write_high_water)

    def begin(self, client: ClientProtocol, head_request: bool, upgrade: bool) -> None:
        """Start an exchange for ``client``."""
        if head_request:
            # httptools cannot be told a response has no body, so a HEAD response gets a
            # parser of its own that stops at the head; see _HeadResponse.
            self.parser = HttpResponseParser(_HeadResponse(self))
            self.stale_parser = True
        elif self.stale_parser:
            self.parser = HttpResponseParser(self)
            self.stale_parser = False
        self.client = client
        self._reset(upgrade)
        if client.write_paused:
            self.pause_reading()
        elif self.read_paused:
            self.resume_reading()

    def close(self) -> None:
        """Discard the connection now (buffered request bytes are dropped)."""
        self.client = None
        if not self.closed:
            self.closed = True
            self.transport.abort()

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        self.inst.router.upstream_closed()
        client = self.client
        if client is None:
            self.inst.forget(self)
            return
        self.client = None
        client.upstream_lost(self)

    def eof_received(self) -> bool | None:
        return None  # close: a half-closed instance connection is of no further use

    # -- flow control ------------------------------------------------------------------

    def pause_writing(self) -> None:
        self.write_paused = True
        if self.client is not None:
            self.client.pause(PAUSE_UPSTREAM)

    def resume_writing(self) -> None:
        self.write_paused = False
        if self.client is not None:
            self.client.resume(PAUSE_UPSTREAM)

    def pause_reading(self) -> None:
        if not self.read_paused and not self.closed:
            self.read_paused = True
            self.transport.pause_reading()

    def resume_reading(self) -> None:
        if self.read_paused and not self.closed:
            self.read_paused = False
            self.transport.resume_reading()

    # -- response ----------------------------------------------------------------------

    def data_received(self, data: bytes) -> None:
        client = self.client
        if client is None:
            # Bytes on an idle connection: the instance broke the protocol.
            self.close()
            return
        if self.tunnel:
            client.transport.write(data)
            return
        try:
            self.parser.feed_data(data)
        except HttpParserUpgrade:
            if self.status != 101 or not self.upgrade:
                self._broken(client)
                return
            self.tunnel = True
        except HttpParserError:
            self._broken(client)
            return
        client.transport.write(data)
        self.sent = True
        if self.tunnel:
            client.tunnel_started()
        elif self.final:
            client.response_done(self)

    def _broken(self, client: ClientProtocol) -> None:
        self.client = None
        self.close()
        client.upstream_lost(self)

    def on_message_begin(self) -> None:
        if self.final:
            self.junk = True  # a second response to one request

    def on_headers_complete(self) -> None:
        status = self.status = self.parser.get_status_code()
        if status >= 200:
            # Read here: llhttp clears the flags once the message is complete.
            self.keep = self.parser.should_keep_alive()

    def on_message_complete(self) -> None:
        if self.status >= 200:
            self.final = True


class _HeadResponse:
    """Parser callbacks for the response to a HEAD request: it ends with its head.

    llhttp's keep-alive verdict assumes a body framed by the connection's close when there
    is no Content-Length or Transfer-Encoding, which a HEAD response does not have, so the
    Connection header is read here instead.
    """

    __slots__ = ("close", "up")

    def __init__(self, up: UpstreamProtocol) -> None:
        self.up = up
        self.close = False

    def on_message_begin(self) -> None:
        self.up.on_message_begin()

    def on_header(self, name: bytes, value: bytes) -> None:
        if len(name) == 10 and name.lower() == b"connection" and b"close" in value.lower():
            self.close = True

    def on_headers_complete(self) -> None:
        up = self.up
        parser = up.parser
        status = up.status = parser.get_status_code()
        if status >= 200:
            up.keep = not self.close and parser.get_http_version() == "1.1"
            up.final = True
        else:
            self.close = False  # a 1xx response; the final one follows
