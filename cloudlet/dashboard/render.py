"""Templates, their filters, and the route class every dashboard page goes through."""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Coroutine, Mapping
from datetime import UTC, datetime
from functools import cache
from pathlib import Path
from typing import Any

from fastapi import Request, Response
from fastapi.responses import RedirectResponse
from fastapi.routing import APIRoute
from fastapi.templating import Jinja2Templates

from cloudlet.dashboard.analysis import code_spans
from cloudlet.dashboard.ansi import ansi_to_html
from cloudlet.dashboard.session import (
    SESSION_COOKIE,
    PageNotFound,
    SignInRequired,
    is_https,
    login_url,
)
from cloudlet.statuses import LABELS, SUCCESSFUL, TERMINAL

HERE = Path(__file__).parent
STATIC_DIR = HERE / "static"
STATIC_PREFIX = "/_static"  # "_" cannot start a team slug, so no page can be shadowed

# A deployment page stops polling once nothing more will happen. `upload_cancelled` is not
# terminal for the CLI's poll (contract §8.1) but nothing follows it either.
DONE = TERMINAL | frozenset({"upload_cancelled"})
IDLE = frozenset({"waiting_upload", "upload_cancelled"})

# No inline script or style anywhere: htmx is configured (meta tag) not to inject its own
# indicator styles, and swapped-in content cannot run scripts.
SECURITY_HEADERS = {
    "content-security-policy": (
        "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
        "connect-src 'self'; object-src 'none'; base-uri 'none'; form-action 'self'; "
        "frame-ancestors 'none'"
    ),
    "x-frame-options": "DENY",
    "x-content-type-options": "nosniff",
    "referrer-policy": "same-origin",
}


def status_label(status: str) -> str:
    return LABELS.get(status, "Unknown")


def status_tone(status: str | None) -> str:
    """A CSS class for a deployment status: ok, fail, busy (in progress) or idle."""
    if status is None or status in IDLE:
        return "idle"
    if status in SUCCESSFUL:
        return "ok"
    if status in TERMINAL:
        return "fail"
    return "busy"


def format_time(value: datetime | None) -> str:
    if value is None:
        return "—"
    return value.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


def iso_time(value: datetime | None) -> str:
    return "" if value is None else value.astimezone(UTC).isoformat()


def ago(value: datetime | None, now: datetime | None = None) -> str:
    if value is None:
        return "never"
    seconds = int(((now or datetime.now(UTC)) - value).total_seconds())
    future = seconds < 0
    seconds = abs(seconds)
    for unit, size in (("day", 86400), ("hour", 3600), ("minute", 60)):
        if seconds >= size:
            n = seconds // size
            text = f"{n} {unit}{'s' if n != 1 else ''}"
            return f"in {text}" if future else f"{text} ago"
    return "in a moment" if future else "just now"


@cache
def static_url(name: str) -> str:
    """A cache-busting URL for a file in static/."""
    digest = hashlib.sha256((STATIC_DIR / name).read_bytes()).hexdigest()[:10]
    return f"{STATIC_PREFIX}/{name}?v={digest}"


templates = Jinja2Templates(directory=HERE / "templates")
templates.env.filters.update(
    ansi=ansi_to_html,
    label=status_label,
    tone=status_tone,
    time=format_time,
    isotime=iso_time,
    ago=ago,
    codespans=code_spans,
)
templates.env.globals.update(static_url=static_url)


def render(
    request: Request,
    name: str,
    context: Mapping[str, Any] | None = None,
    *,
    status_code: int = 200,
) -> Response:
    return templates.TemplateResponse(request, name, dict(context or {}), status_code=status_code)


def _sign_in_redirect(request: Request, exc: SignInRequired) -> Response:
    target = login_url(exc.next_url)
    response: Response
    if request.headers.get("hx-request"):
        # An htmx poll must not swap the sign-in page into a fragment: send the browser there.
        response = Response(status_code=401, headers={"hx-redirect": target})
    else:
        response = RedirectResponse(target, status_code=303)
    if exc.clear_cookie:
        response.delete_cookie(
            SESSION_COOKIE, path="/", secure=is_https(request), httponly=True, samesite="lax"
        )
    return response


class DashboardRoute(APIRoute):
    """Turns SignInRequired / PageNotFound into pages and adds the security headers."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()

        async def dashboard_handler(request: Request) -> Response:
            try:
                response = await handler(request)
            except SignInRequired as exc:
                response = _sign_in_redirect(request, exc)
            except PageNotFound:
                response = render(request, "not_found.html", status_code=404)
            for key, value in SECURITY_HEADERS.items():
                response.headers.setdefault(key, value)
            response.headers.setdefault("cache-control", "no-store")
            return response

        return dashboard_handler
