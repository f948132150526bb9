"""Responses the router writes itself (unknown host, no instance, bad gateway, bad request)."""

from __future__ import annotations

from collections.abc import Callable
from html import escape

Maker = Callable[..., bytes]

_NOT_FOUND_PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>No app here</title>
<style>body{{font-family:system-ui,sans-serif;max-width:36rem;margin:4rem auto;color:#222}}
code{{background:#f2f2f2;padding:.1rem .3rem;border-radius:3px}}</style></head>
<body><h1>No app here</h1>
<p>Nothing is deployed at <code>{host}</code>.</p>
<p>If you just deployed it, check the app's address with <code>fastapi cloud</code>,
or that its custom domain is verified.</p></body></html>
"""


def response(
    status: bytes,
    body: bytes,
    *,
    content_type: bytes = b"text/plain; charset=utf-8",
    close: bool,
    head_only: bool = False,
    extra: bytes = b"",
) -> bytes:
    """A complete response; ``status`` is e.g. ``b"404 Not Found"``, ``extra`` header lines."""
    return b"".join(
        (
            b"HTTP/1.1 ",
            status,
            b"\r\ncontent-type: ",
            content_type,
            b"\r\ncontent-length: %d\r\n" % len(body),
            extra,
            b"connection: close\r\n\r\n" if close else b"\r\n",
            b"" if head_only else body,
        )
    )


def not_found(host: bytes, *, close: bool, head_only: bool) -> bytes:
    name = escape(host.decode("latin-1"))
    body = _NOT_FOUND_PAGE.format(host=name).encode("utf-8")
    return response(
        b"404 Not Found",
        body,
        content_type=b"text/html; charset=utf-8",
        close=close,
        head_only=head_only,
    )


def unavailable(*, close: bool, head_only: bool) -> bytes:
    return response(
        b"503 Service Unavailable",
        b"No instance of this app is ready yet. Retry in a moment.\n",
        close=close,
        head_only=head_only,
        extra=b"retry-after: 1\r\n",
    )


def too_many(*, close: bool, head_only: bool) -> bytes:
    return response(
        b"429 Too Many Requests",
        b"This app is at its capacity. Retry in a moment.\n",
        close=close,
        head_only=head_only,
        extra=b"retry-after: 1\r\n",
    )


def bad_gateway(*, close: bool, head_only: bool) -> bytes:
    return response(
        b"502 Bad Gateway",
        b"The app did not answer this request.\n",
        close=close,
        head_only=head_only,
    )


BAD_REQUEST = response(b"400 Bad Request", b"Bad request.\n", close=True)
HEAD_TOO_LARGE = response(
    b"431 Request Header Fields Too Large", b"Request header too large.\n", close=True
)
