"""One client connection: read a request head, route it by Host, stream it to an instance.

Requests on a connection are handled one at a time (bytes of a pipelined next request
wait in ``backlog``). The head is forwarded as the raw bytes the client sent plus the
router's lines (see :mod:`cloudlet.router.heads`); the body is forwarded as raw bytes too,
its end found by counting (Content-Length) or by :mod:`cloudlet.router.chunked`, with
httptools validating the same bytes. Responses come back through
:class:`~cloudlet.router.upstream.UpstreamProtocol`, which calls ``response_done`` here.

Flow control: when the instance connection's write buffer is full the client is not read
(``pause``/``resume``), and when the client's is full the instance connection is not read
(``pause_writing``/``resume_writing``), so a large body in either direction never piles
up in the router.

A request for a revision with no ready instance is *held* (``_HELD``): its forwarded head
and the bytes read after it wait on the revision's queue while the control plane starts
an instance; the table that brings one releases it (``unhold``). When the revision's hold
time ends first, or its queue is full, the answer is 503 with Retry-After.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import Final, cast

from httptools import HttpParserError, HttpParserUpgrade, HttpRequestParser

from cloudlet.router import responses
from cloudlet.router.chunked import ChunkedError, ChunkedScanner
from cloudlet.router.heads import OWNED, forward_head, forwarded_lines, host_key
from cloudlet.router.pool import Instance
from cloudlet.router.table import Revision, Router
from cloudlet.router.upstream import PAUSE_UPSTREAM, UpstreamProtocol

log = logging.getLogger("cloudlet.router")

# Connection states.
_HEAD: Final = 0  # waiting for a request head
_BODY: Final = 1  # head forwarded, body still arriving
_WAIT: Final = 2  # request complete, response under way
_TUNNEL: Final = 3  # upgraded: raw bytes both ways
_HELD: Final = 4  # waiting for an instance of a revision that has none ready (activator)
_CLOSING: Final = 5  # closing after what is buffered is written
_CLOSED: Final = 6

# How the current request's body ends.
_LENGTH: Final = 1
_CHUNKED: Final = 2

# Reasons the client is not read (bit flags; PAUSE_UPSTREAM comes from upstream.py).
_PAUSE_BACKLOG: Final = 2  # too many pipelined bytes waiting
_PAUSE_PENDING: Final = 4  # too many body bytes waiting for the instance connection

# Lengths of the header names looked at; the rest are skipped without being lowercased.
# host, traceparent, content-length, x-forwarded-for, x-forwarded-host,
# transfer-encoding / x-forwarded-proto
_NAME_LENGTHS: Final = frozenset((4, 11, 14, 15, 16, 17))
_RETRYABLE: Final = (b"GET ", b"HEAD ", b"OPTIONS ")


class _Desync(Exception):
    """httptools saw a new message where the router's framing saw none."""


class ClientProtocol(asyncio.Protocol):
    __slots__ = (
        "backlog",
        "body",
        "buf",
        "chunked",
        "client_ip",
        "close_after",
        "config",
        "conn_lines",
        "content_length",
        "headers_done",
        "held_out",
        "held_rest",
        "held_rev",
        "host",
        "hosts",
        "inst",
        "is_head",
        "keep_alive",
        "key",
        "last_active",
        "parser",
        "pause_mask",
        "pending",
        "prior_xff",
        "pumping",
        "remaining",
        "req_complete",
        "retry_head",
        "router",
        "scanner",
        "seen_host",
        "seen_key",
        "state",
        "strip",
        "timer",
        "traceparent",
        "transport",
        "tried",
        "upgrade",
        "upstream",
        "write_paused",
    )

    transport: asyncio.Transport

    def __init__(self, router: Router) -> None:
        self.router = router
        self.config = router.config
        self.parser = HttpRequestParser(self)
        self.state = _HEAD
        self.buf: bytearray | None = None  # an incomplete head
        self.backlog = b""  # bytes not yet processed (a pipelined next request)
        self.pending: bytearray | None = None  # bytes for an instance connection being opened
        self.upstream: UpstreamProtocol | None = None
        self.inst: Instance | None = None  # counted in flight for the current exchange
        self.tried: list[Instance] | None = None
        self.retry_head: bytes | None = None
        self.scanner: ChunkedScanner | None = None
        self.pause_mask = 0
        self.pumping = False
        self.write_paused = False
        self.close_after = False
        self.last_active = 0.0
        self.client_ip = b""
        self.conn_lines = b""
        self.seen_host = b""
        self.seen_key = b""
        self.key = b""
        self.body = 0
        self.remaining = 0
        self.is_head = False
        self.keep_alive = True
        self.upgrade = False
        self.held_rev: Revision | None = None
        self.held_out = b""
        self.held_rest = b""
        self.timer: asyncio.TimerHandle | None = None
        self.on_message_begin()

    # -- httptools callbacks -------------------------------------------------------------

    def on_message_begin(self) -> None:
        if self.state != _HEAD:
            raise _Desync
        self.hosts = 0
        self.host = b""
        self.content_length = 0
        self.chunked = False
        self.traceparent = False
        self.strip = False
        self.prior_xff: list[bytes] | None = None
        self.headers_done = False
        self.req_complete = False

    def on_header(self, name: bytes, value: bytes) -> None:
        if len(name) not in _NAME_LENGTHS:
            return
        name = name.lower()
        if name == b"host":
            self.hosts += 1
            self.host = value
        elif name == b"content-length":
            self.content_length = int(value)
        elif name == b"transfer-encoding":
            # llhttp frames by the last coding; requests whose last coding is not
            # chunked are rejected by it.
            self.chunked = value.rpartition(b",")[2].strip().lower() == b"chunked"
        elif name == b"traceparent":
            self.traceparent = True
        elif name in OWNED:
            self.strip = True
            if name == b"x-forwarded-for":
                if self.prior_xff is None:
                    self.prior_xff = []
                self.prior_xff.append(value)

    def on_headers_complete(self) -> None:
        self.headers_done = True
        parser = self.parser
        # Read here: llhttp clears these flags once the message is complete.
        self.keep_alive = parser.should_keep_alive()
        self.upgrade = parser.should_upgrade()

    def on_message_complete(self) -> None:
        self.req_complete = True

    # -- connection ----------------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)
        peer = transport.get_extra_info("peername")
        ip = peer[0] if isinstance(peer, tuple) else ""
        self.client_ip = ip.encode("ascii", "replace")
        self.conn_lines = forwarded_lines(self.client_ip)
        self.transport.set_write_buffer_limits(high=self.config.write_high_water)
        self.last_active = self.router.loop.time()
        self.router.connections.add(self)

    def connection_lost(self, exc: Exception | None) -> None:
        tunnel = self.state == _TUNNEL
        if self.state == _HELD:
            self._unpark()
        self._cancel_timer()
        self.state = _CLOSED
        router = self.router
        router.connections.discard(self)
        if router.starved:
            router.serve_starved()  # a file descriptor came free
        up = self.upstream
        if up is not None:
            self.upstream = None
            if tunnel:
                up.client = None
                up.closed = True
                up.transport.close()  # after what is buffered (a WebSocket close frame)
            else:
                up.close()  # mid-exchange: the connection cannot be reused
        self.pending = None
        self._uncount()

    def eof_received(self) -> bool | None:
        if self.state == _WAIT:
            # The client half-closed after a complete request: answer, then close.
            self.close_after = True
            return True
        return None

    def pause_writing(self) -> None:
        self.write_paused = True
        if self.upstream is not None:
            self.upstream.pause_reading()

    def resume_writing(self) -> None:
        self.write_paused = False
        if self.upstream is not None:
            self.upstream.resume_reading()

    def pause(self, reason: int) -> None:
        if not self.pause_mask and self.state < _CLOSING:
            self.transport.pause_reading()
        self.pause_mask |= reason

    def resume(self, reason: int) -> None:
        if self.pause_mask & reason:
            self.pause_mask &= ~reason
            if not self.pause_mask and self.state < _CLOSING:
                self.transport.resume_reading()

    def idle_since(self, limit: float) -> bool:
        """Waiting for a request, or to finish closing, since before ``limit``."""
        return (self.state == _HEAD or self.state == _CLOSING) and self.last_active < limit

    def expire(self) -> None:
        if self.state == _CLOSING:
            self.transport.abort()  # a client that does not read what is left
        elif self.state == _HEAD:
            self._close()

    def close_if_idle(self) -> None:
        if self.state == _HEAD:
            self._close()

    # -- request -------------------------------------------------------------------------

    def data_received(self, data: bytes) -> None:
        state = self.state
        if state == _BODY:
            self._body(data)
        elif state == _HEAD:
            if self.backlog:
                self.backlog += data
            else:
                self.backlog = data
            self._pump()
        elif state == _TUNNEL:
            self._send_up(data)
        elif state in (_WAIT, _HELD):
            self._hold(data)

    def _hold(self, data: bytes) -> None:
        self.backlog += data
        if len(self.backlog) > self.config.max_head:
            self.pause(_PAUSE_BACKLOG)

    def _pump(self) -> None:
        """Handle the bytes in ``backlog``, request after request, while no exchange runs."""
        if self.pumping:
            return  # an answer given while handling a request: the loop below goes on
        self.pumping = True
        try:
            while self.backlog and self.state == _HEAD:
                data = self.backlog
                self.backlog = b""
                self._request(data)
        finally:
            self.pumping = False
        if self.state == _HEAD:
            self.resume(_PAUSE_BACKLOG)

    def _request(self, data: bytes) -> None:
        buf = self.buf
        if buf is None:
            if data[0] == 13 or data[0] == 10:  # empty lines before a request are allowed
                data = data.lstrip(b"\r\n")
                if not data:
                    return
            end = data.find(b"\r\n\r\n")
            if end < 0:
                if len(data) > self.config.max_head:
                    self._reject(responses.HEAD_TOO_LARGE)
                elif b"\n\n" in data:
                    self._reject(responses.BAD_REQUEST)  # bare LF line endings
                else:
                    self.buf = bytearray(data)
                return
            end += 4
            head = data if end == len(data) else data[:end]
            rest = b"" if end == len(data) else data[end:]
        else:
            start = max(0, len(buf) - 3)
            buf += data
            end = buf.find(b"\r\n\r\n", start)
            if end < 0:
                if len(buf) > self.config.max_head:
                    self._reject(responses.HEAD_TOO_LARGE)
                elif buf.find(b"\n\n", start) >= 0:
                    self._reject(responses.BAD_REQUEST)
                return
            end += 4
            head = bytes(buf[:end])
            rest = bytes(buf[end:])
            self.buf = None
        if end > self.config.max_head:
            self._reject(responses.HEAD_TOO_LARGE)
            return
        self._dispatch(head, rest)

    def _dispatch(self, head: bytes, rest: bytes) -> None:
        try:
            self.parser.feed_data(head)
        except HttpParserUpgrade:
            pass  # on_headers_complete saw it; the rest is the new protocol's
        except (HttpParserError, ValueError):
            self._reject(responses.BAD_REQUEST)
            return
        if not self.headers_done or self.hosts != 1:
            self._reject(responses.BAD_REQUEST)
            return
        self.is_head = head.startswith(b"HEAD ")

        host = self.host
        if host == self.seen_host:
            key = self.seen_key
        else:
            key = self.seen_key = host_key(host)
            self.seen_host = host
        self.key = key
        router = self.router
        rev = router.hosts.get(key)
        if rev is None:
            self._answer(responses.not_found, rest, host)
            return
        out = forward_head(
            head,
            self.conn_lines,
            host,
            traceparent=not self.traceparent,
            prior_xff=self.prior_xff,
            strip=self.strip,
            client_ip=self.client_ip,
        )
        self._route(rev, out, rest)

    def _route(self, rev: Revision, out: bytes, rest: bytes) -> None:
        """Send the request to an instance of ``rev``, hold it, or refuse it."""
        if rev.limit and rev.inflight >= rev.limit:
            rev.rejected += 1
            self._answer(responses.too_many, rest)
            return
        router = self.router
        now = router.loop.time()
        inst = rev.pick(now)
        if inst is None:
            self._park(rev, out, rest)
            return

        rev.requests += 1
        self._count(inst)
        if self.req_complete:
            self.state = _WAIT
        else:
            self.state = _BODY
            if self.chunked:
                self.body = _CHUNKED
                self.scanner = ChunkedScanner()
            else:
                self.body = _LENGTH
                self.remaining = self.content_length
        up = inst.acquire(now)
        if up is None:
            self.retry_head = None
            self.pending = bytearray(out)
            router.open_for(inst, self)
        else:
            # A pooled connection may be closed by the instance just as we write to it;
            # a bodyless idempotent request is then resent once on a new connection.
            complete = self.req_complete and not self.upgrade
            self.retry_head = out if complete and out.startswith(_RETRYABLE) else None
            self._attach(up)
            up.transport.write(out)
        if rest:
            if self.state == _BODY:
                self._body(rest)
            else:
                self._hold(rest)  # pipelined, or early bytes of an upgraded protocol

    # -- activator -----------------------------------------------------------------------

    def _park(self, rev: Revision, out: bytes, rest: bytes) -> None:
        """No instance is ready: wait on ``rev``'s queue, or answer 503 at once."""
        if rev.hold <= 0 or len(rev.waiters) >= rev.queue:
            if rev.hold > 0:
                rev.rejected += 1  # the queue is full
            self._cancel_timer()
            self._answer(responses.unavailable, rest)
            return
        if self.timer is None:  # the hold is bounded once, however often it is retried
            self.timer = self.router.loop.call_later(rev.hold, self._hold_expired)
        self.state = _HELD
        self.held_rev = rev
        self.held_out = out
        self.held_rest = rest
        rev.waiters.append(self)
        self.router.demand(rev)

    def _unpark(self) -> None:
        rev = self.held_rev
        if rev is not None:
            self.held_rev = None
            with contextlib.suppress(ValueError):  # released meanwhile
                rev.waiters.remove(self)

    def _cancel_timer(self) -> None:
        if self.timer is not None:
            self.timer.cancel()
            self.timer = None

    def unhold(self) -> None:
        """A new table arrived: route the held request again (see ``Router.release``)."""
        if self.state != _HELD or self.held_rev is None:
            return
        out, rest = self.held_out, self.held_rest + self.backlog
        self.held_out = self.held_rest = self.backlog = b""
        rev = self.router.hosts.get(self.key)
        if rev is None:
            self._unpark()
            self._cancel_timer()
            self.state = _WAIT if self.req_complete else _BODY
            self._answer(responses.not_found, rest, self.host)
        elif rev.instances or rev.hold <= 0:
            self._unpark()
            self.state = _HEAD  # what _route expects; it sets the state it leaves
            self._route(rev, out, rest)
            if self.state != _HELD:
                self._cancel_timer()  # (a failed connect may still park it again)
            if self.state == _BODY:
                self.resume(_PAUSE_BACKLOG)
        else:
            self.held_rev = rev  # still nothing ready: keep waiting (and the timer)
            self.held_out, self.held_rest = out, rest
            rev.waiters.append(self)

    def _hold_expired(self) -> None:
        self.timer = None
        if self.state != _HELD:
            return
        rest = self.held_rest + self.backlog
        self.held_out = self.held_rest = self.backlog = b""
        self._unpark()
        self.state = _WAIT if self.req_complete else _BODY
        self._answer(responses.unavailable, rest)

    def _body(self, data: bytes) -> None:
        rest = b""
        if self.body == _LENGTH:
            left = self.remaining
            if len(data) > left:
                rest = data[left:]
                data = data[:left]
            self.remaining = left - len(data)
            done = self.remaining == 0
        else:
            assert self.scanner is not None
            try:
                end = self.scanner.scan(data)
            except ChunkedError:
                self._body_error()
                return
            done = end >= 0
            if done and end < len(data):
                rest = data[end:]
                data = data[:end]
        try:
            self.parser.feed_data(data)
        except (HttpParserError, ValueError):
            self._body_error()
            return
        if self.req_complete != done:
            self._body_error()  # the two framings disagree: refuse rather than guess
            return
        self._send_up(data)
        if done:
            self.scanner = None
            if self.state == _BODY:
                self.state = _WAIT
            if rest:
                self._hold(rest)

    def _send_up(self, data: bytes) -> None:
        up = self.upstream
        if up is not None:
            up.transport.write(data)
            return
        pending = self.pending
        if pending is not None:
            pending += data
            if len(pending) > self.config.write_high_water:
                self.pause(_PAUSE_PENDING)

    # -- instance connection -------------------------------------------------------------

    def _count(self, inst: Instance) -> None:
        self.inst = inst
        inst.inflight += 1
        inst.revision.inflight += 1

    def _uncount(self) -> None:
        inst = self.inst
        if inst is not None:
            self.inst = None
            inst.inflight -= 1
            rev = inst.revision
            rev.inflight -= 1
            if rev.retired and not rev.inflight:
                self.router.drained(rev)

    def _attach(self, up: UpstreamProtocol) -> None:
        self.upstream = up
        up.begin(self, self.is_head, self.upgrade)
        if up.write_paused:
            self.pause(PAUSE_UPSTREAM)

    def _detach(self, up: UpstreamProtocol) -> None:
        self.upstream = None
        up.client = None
        self.resume(PAUSE_UPSTREAM)

    def connected(self, up: UpstreamProtocol) -> None:
        """A new instance connection is open (see ``Instance.connect``)."""
        pending = self.pending
        if pending is None or self.inst is not up.inst or self.state >= _CLOSING:
            up.inst.release(up, self.router.loop.time())  # the exchange is gone
            return
        self.pending = None
        self.tried = None
        self._attach(up)
        up.transport.write(pending)
        self.resume(_PAUSE_PENDING)

    def wants(self, inst: Instance) -> bool:
        """Still waiting for a connection to ``inst`` (see ``Router.open_for``)."""
        return self.pending is not None and self.inst is inst and self.state < _CLOSING

    def connect_failed(self, inst: Instance) -> None:
        """Opening a connection to ``inst`` failed: nothing was sent, so try another."""
        if self.pending is None or self.inst is not inst or self.state >= _CLOSING:
            return
        self._uncount()
        tried = self.tried
        if tried is None:
            tried = self.tried = []
        tried.append(inst)
        # The current table: a redeploy may have replaced the instance meanwhile.
        rev = self.router.hosts.get(self.key)
        now = self.router.loop.time()
        nxt = rev.pick(now, tried) if rev is not None else None
        if nxt is None:
            pending = self.pending
            self.pending = None
            self.tried = None
            if rev is not None and rev.hold > 0 and self.state == _WAIT and not self.upgrade:
                # Every instance refused (crashed, restarting): the whole request is here,
                # so wait for a table with a live one, as for an app at zero.
                self._park(rev, bytes(pending), b"")
                return
            self._answer(responses.bad_gateway, b"")
            return
        self._count(nxt)
        up = nxt.acquire(now)
        if up is None:
            self.router.open_for(nxt, self)
        else:
            self.connected(up)

    def upstream_lost(self, up: UpstreamProtocol) -> None:
        """The instance connection closed (or broke the protocol) during the exchange."""
        if self.upstream is not up:
            return
        self._detach(up)
        if self.state == _TUNNEL or up.sent:
            # Response bytes already went out (or the body was delimited by the close).
            self._uncount()
            self._close()
            return
        inst = self.inst
        head = self.retry_head
        if head is not None and up.reused and inst is not None and self.state == _WAIT:
            self.retry_head = None
            self.pending = bytearray(head)
            self.router.open_for(inst, self)
            return
        self._uncount()
        self._answer(responses.bad_gateway, b"")

    def response_done(self, up: UpstreamProtocol) -> None:
        """The final response was piped to the client completely."""
        self._detach(up)
        self._uncount()
        self.retry_head = None
        now = self.router.loop.time()
        complete = self.req_complete and self.state == _WAIT
        if up.keep and complete and not up.junk:
            up.inst.release(up, now)
        else:
            up.close()
        if (
            not complete
            or not self.keep_alive
            or self.close_after
            or self.upgrade  # the instance declined to switch: its state is unknown
            or not up.keep  # the client was told the connection closes
            or up.junk
            or self.router.draining
        ):
            self._close()
            return
        self.state = _HEAD
        self.last_active = now
        self._pump()

    def tunnel_started(self) -> None:
        """The instance answered 101: from now on bytes flow unparsed both ways."""
        self.state = _TUNNEL
        backlog = self.backlog
        if backlog:
            self.backlog = b""
            self._send_up(backlog)
        self.resume(_PAUSE_BACKLOG)

    # -- answers from the router itself --------------------------------------------------

    def _answer(self, make: responses.Maker, rest: bytes, *args: bytes) -> None:
        """Answer the current request without an instance, keeping the connection if the
        whole request was read."""
        close = (
            not self.req_complete
            or not self.keep_alive
            or self.upgrade
            or self.close_after
            or self.router.draining
        )
        self.transport.write(make(*args, close=close, head_only=self.is_head))
        if close:
            self._close(linger=not self.req_complete)
            return
        self.state = _HEAD
        self.last_active = self.router.loop.time()
        if rest:
            self.backlog = rest + self.backlog
        self._pump()

    def _body_error(self) -> None:
        up = self.upstream
        if up is not None:
            self._detach(up)
            up.close()
            if up.sent:
                self._uncount()
                self._close()
                return
        self.pending = None
        self._uncount()
        self._reject(responses.BAD_REQUEST)

    def _reject(self, response: bytes) -> None:
        self.transport.write(response)
        self._close(linger=True)

    def _close(self, *, linger: bool = False) -> None:
        """Close once what is buffered is written. With ``linger`` (or while the client may
        still be sending a body) half-close and drop what still arrives until the client
        closes: closing with unread bytes makes the kernel reset the connection, and the
        client could lose the response."""
        if self.state >= _CLOSING:
            return
        linger = linger or self.state == _BODY
        self.state = _CLOSING
        self.last_active = self.router.loop.time()
        self.backlog = b""
        self.buf = None
        if linger and self.transport.can_write_eof():
            self.transport.write_eof()
            if self.pause_mask:
                self.pause_mask = 0
                self.transport.resume_reading()
        else:
            self.transport.close()
