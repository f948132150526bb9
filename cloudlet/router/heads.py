"""Request-head bytes: the routing key from Host, and the head forwarded to an instance.

The client's head is forwarded as the raw bytes it sent, with the router's header lines
inserted before the final CRLF; it is never parsed into objects and re-serialised. Only
when the client itself sent one of the headers the router owns (X-Forwarded-Proto/Host,
or X-Forwarded-For to append to) are lines removed, on a slower path.
"""

from __future__ import annotations

from random import getrandbits
from typing import Final

# Headers whose value the router sets: a client must not be able to claim https or
# another host to the app. X-Forwarded-For is appended to, so its old lines go too.
OWNED: Final = frozenset((b"x-forwarded-for", b"x-forwarded-proto", b"x-forwarded-host"))


def host_key(value: bytes) -> bytes:
    """A Host header value as a table key: port stripped, lowercase, no trailing dot."""
    value = value.strip()
    if value[:1] == b"[":  # IPv6 literal: the port follows the bracket
        end = value.find(b"]")
        host = value[: end + 1] if end > 0 else value
    else:
        colon = value.rfind(b":")
        host = value[:colon] if colon >= 0 else value
    return host.rstrip(b".").lower()


def table_key(host: str) -> bytes:
    """A host name from the feed as a table key (same normalisation as :func:`host_key`)."""
    return host_key(host.strip().encode("idna"))


def traceparent_line() -> bytes:
    """A new W3C trace context: random 16-byte trace id, 8-byte span id, sampled."""
    # getrandbits avoids a syscall per request; ids only need to be unique, not secret.
    return b"traceparent: 00-%032x-%016x-01\r\n" % (
        getrandbits(128) or 1,
        getrandbits(64) or 1,
    )


def forwarded_lines(client_ip: bytes) -> bytes:
    """The per-connection part of the added lines, computed once per client connection."""
    return b"x-forwarded-proto: http\r\nx-forwarded-for: " + client_ip + b"\r\n"


def forward_head(
    head: bytes,
    conn_lines: bytes,
    host: bytes,
    *,
    traceparent: bool,
    prior_xff: list[bytes] | None,
    strip: bool,
    client_ip: bytes,
) -> bytes:
    """The head to send upstream.

    ``head`` ends with CRLF CRLF; ``conn_lines`` is :func:`forwarded_lines` for this
    connection; ``traceparent`` says whether to add one (the client sent none);
    ``prior_xff`` holds X-Forwarded-For values the client sent; ``strip`` says the client
    sent a header in :data:`OWNED`.
    """
    if strip:
        head = strip_lines(head, OWNED)
        if prior_xff:
            # One combined line: frameworks disagree on which of several lines they read.
            conn_lines = (
                b"x-forwarded-proto: http\r\nx-forwarded-for: "
                + b", ".join(v.strip() for v in prior_xff)
                + b", "
                + client_ip
                + b"\r\n"
            )
    return b"".join(
        (
            memoryview(head)[:-2],
            conn_lines,
            b"x-forwarded-host: ",
            host,
            b"\r\n",
            traceparent_line() if traceparent else b"",
            b"\r\n",
        )
    )


def strip_lines(head: bytes, names: frozenset[bytes]) -> bytes:
    """``head`` without the header lines whose lowercased name is in ``names``."""
    lines = head.split(b"\r\n")
    kept = [lines[0]]
    for line in lines[1:]:
        name, sep, _ = line.partition(b":")
        if sep and name.strip().lower() in names:
            continue
        kept.append(line)
    return b"\r\n".join(kept)
