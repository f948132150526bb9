"""Browser sessions: a user token in an HttpOnly cookie, CSRF tokens and safe redirects.

The session cookie holds a user token issued at sign-in ("dashboard session"), so signing out
revokes exactly that token and the API's own token checks (expiry, revocation, inactive users)
apply to the browser too.

CSRF: a form posted while signed in carries HMAC(session token, purpose). Another site can
neither read the HttpOnly cookie nor this page, so it cannot produce the value; the server keeps
no state for it and it works across processes and restarts. The sign-in form, which has no
session yet, uses a double-submit cookie instead.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass
from typing import Annotated
from urllib.parse import urlencode, urlsplit

from fastapi import Depends, Request

from cloudlet.api.auth import SessionDep, resolve_token
from cloudlet.store.models import User, UserToken

SESSION_COOKIE = "cloudlet_session"
LOGIN_CSRF_COOKIE = "cloudlet_login_csrf"
_CSRF_PURPOSE = b"cloudlet-dashboard-csrf-v1"


class SignInRequired(Exception):
    """Raised by pages that need a signed-in visitor; answered with a redirect to /login."""

    def __init__(self, next_url: str, *, clear_cookie: bool) -> None:
        self.next_url = next_url
        self.clear_cookie = clear_cookie


class PageNotFound(Exception):
    """Answered with the dashboard's 404 page. Other teams' pages raise it too: no leaks."""


@dataclass(frozen=True)
class Visitor:
    user: User
    token: UserToken
    csrf: str


def csrf_token(session_token: str) -> str:
    return hmac.new(session_token.encode(), _CSRF_PURPOSE, hashlib.sha256).hexdigest()


def csrf_valid(expected: str, given: str | None) -> bool:
    return bool(given) and hmac.compare_digest(expected.encode(), (given or "").encode())


def new_login_csrf() -> str:
    return secrets.token_urlsafe(24)


def is_https(request: Request) -> bool:
    return request.url.scheme == "https"


def safe_next(value: str | None) -> str:
    """`value` if it is a path on this site, else "/": never an open redirect."""
    if not value or not value.startswith("/") or value.startswith("//"):
        return "/"
    if "\\" in value or any(ord(c) < 0x20 or ord(c) == 0x7F for c in value):
        return "/"
    parts = urlsplit(value)
    if parts.scheme or parts.netloc or parts.path in ("/login", "/logout"):
        return "/"  # coming back to /login once signed in would loop
    return value


def login_url(next_url: str) -> str:
    next_url = safe_next(next_url)
    return "/login" if next_url == "/" else "/login?" + urlencode({"next": next_url})


def _here(request: Request) -> str:
    """The page to come back to after signing in. For htmx requests, the page they came from."""
    current = request.headers.get("hx-current-url")
    if request.headers.get("hx-request") and current:
        parts = urlsplit(current)
        return safe_next(parts.path + (f"?{parts.query}" if parts.query else ""))
    query = request.url.query
    return safe_next(request.url.path + (f"?{query}" if query else ""))


async def optional_visitor(request: Request, session: SessionDep) -> Visitor | None:
    value = request.cookies.get(SESSION_COOKIE)
    if not value or value.startswith("fcp_"):
        return None
    caller = await resolve_token(session, value)
    if caller is None or caller.user is None or caller.user_token is None:
        return None
    return Visitor(user=caller.user, token=caller.user_token, csrf=csrf_token(value))


OptionalVisitor = Annotated[Visitor | None, Depends(optional_visitor)]


async def require_visitor(request: Request, visitor: OptionalVisitor) -> Visitor:
    if visitor is None:
        raise SignInRequired(_here(request), clear_cookie=SESSION_COOKIE in request.cookies)
    return visitor


VisitorDep = Annotated[Visitor, Depends(require_visitor)]
