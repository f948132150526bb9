"""The web dashboard: sign-in, device-login approval, pages for teams and apps, and the one
setting an app page changes: its scaling.

Server-rendered pages; htmx (static/htmx.min.js) only adds live refresh and in-place form
answers on top, every page works without JavaScript. URLs follow the ones the CLI builds
(contract §4.7) and the `dashboard_url` the API returns for a deployment.
"""

from __future__ import annotations

import functools
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any
from urllib.parse import urlencode

import anyio.to_thread
from fastapi import APIRouter, Form, HTTPException, Query, Request, Response
from fastapi.responses import RedirectResponse
from fastapi.staticfiles import StaticFiles
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from cloudlet.api.auth import PlatformDep, SessionDep, resolve_token
from cloudlet.api.login import decide_device_login, issue_user_token, public_base
from cloudlet.control.platform import Platform
from cloudlet.dashboard import analysis as blocking_calls
from cloudlet.dashboard import scaling as scaling_panel
from cloudlet.dashboard.render import (
    DONE,
    STATIC_DIR,
    STATIC_PREFIX,
    DashboardRoute,
    render,
)
from cloudlet.dashboard.session import (
    LOGIN_CSRF_COOKIE,
    SESSION_COOKIE,
    OptionalVisitor,
    PageNotFound,
    SignInRequired,
    Visitor,
    VisitorDep,
    csrf_valid,
    is_https,
    login_url,
    new_login_csrf,
    safe_next,
)
from cloudlet.scaling import FIELDS
from cloudlet.statuses import DOMAIN_FAILED, DOMAIN_LIVE
from cloudlet.store.models import (
    App,
    BuildLogLine,
    ConnectedResource,
    CustomDomain,
    Deployment,
    DeployToken,
    DeviceAuthorization,
    EnvironmentVariable,
    Team,
    TeamMember,
    User,
)

router = APIRouter(route_class=DashboardRoute, include_in_schema=False)
router.mount(STATIC_PREFIX, StaticFiles(directory=STATIC_DIR), name="dashboard-static")

DEPLOYMENTS_SHOWN = 50
RUNTIME_LOG_WINDOW = timedelta(hours=1)
RUNTIME_LOG_TAIL = 500
SESSION_TOKEN_NAME = "dashboard session"


# -- lookups ---------------------------------------------------------------------------------


async def teams_of(session: AsyncSession, user: User) -> list[Team]:
    """The user's teams, personal team first."""
    rows = await session.scalars(
        select(Team)
        .join(TeamMember, TeamMember.team_id == Team.id)
        .where(TeamMember.user_id == user.id)
        .order_by(Team.is_personal.desc(), func.lower(Team.name), Team.id)
    )
    return list(rows.all())


async def team_by_slug(session: AsyncSession, user: User, team_slug: str) -> Team:
    team = await session.scalar(
        select(Team)
        .join(TeamMember, TeamMember.team_id == Team.id)
        .where(Team.slug == team_slug, TeamMember.user_id == user.id)
    )
    if team is None:
        raise PageNotFound
    return team


async def app_by_slug(
    session: AsyncSession, user: User, team_slug: str, app_slug: str
) -> tuple[Team, App]:
    team = await team_by_slug(session, user, team_slug)
    app = await session.scalar(select(App).where(App.team_id == team.id, App.slug == app_slug))
    if app is None:
        raise PageNotFound
    return team, app


async def deployment_of(session: AsyncSession, app: App, deployment_id: str) -> Deployment:
    deployment = await session.get(Deployment, deployment_id)
    if deployment is None or deployment.app_id != app.id:
        raise PageNotFound
    return deployment


def normalize_user_code(code: str) -> str:
    """The same normalization decide_device_login applies: case, and an optional dash."""
    code = code.strip().upper()
    return code[:4] + "-" + code[4:] if len(code) == 8 else code


def base_url(request: Request, platform: Platform) -> str:
    return public_base(request, platform.settings.public_api_url)


async def page_context(
    session: AsyncSession, visitor: Visitor, team: Team | None = None, **extra: Any
) -> dict[str, Any]:
    return {
        "visitor": visitor,
        "teams": await teams_of(session, visitor.user),
        "team": team,
        "now": datetime.now(UTC),
        **extra,
    }


def set_session_cookie(request: Request, response: Response, value: str, max_age: int) -> None:
    response.set_cookie(
        SESSION_COOKIE,
        value,
        max_age=max_age,
        path="/",
        secure=is_https(request),
        httponly=True,
        samesite="lax",
    )


def clear_session_cookie(request: Request, response: Response) -> None:
    response.delete_cookie(
        SESSION_COOKIE, path="/", secure=is_https(request), httponly=True, samesite="lax"
    )


# -- sign in / out ---------------------------------------------------------------------------


def _login_page(
    request: Request, next_url: str, *, error: str | None = None, status_code: int = 200
) -> Response:
    csrf = request.cookies.get(LOGIN_CSRF_COOKIE) or ""
    if not 20 <= len(csrf) <= 64:
        csrf = new_login_csrf()
    response = render(
        request,
        "login.html",
        {"next": safe_next(next_url), "csrf": csrf, "error": error},
        status_code=status_code,
    )
    response.set_cookie(
        LOGIN_CSRF_COOKIE,
        csrf,
        max_age=3600,
        path="/login",
        secure=is_https(request),
        httponly=True,
        samesite="lax",
    )
    return response


@router.get("/login")
async def login_form(
    request: Request, visitor: OptionalVisitor, next: str | None = None
) -> Response:
    if visitor is not None:
        return RedirectResponse(safe_next(next), status_code=303)
    return _login_page(request, next or "/")


@router.post("/login")
async def login(
    request: Request,
    platform: PlatformDep,
    session: SessionDep,
    token: Annotated[str, Form()] = "",
    next: Annotated[str, Form()] = "/",
    csrf: Annotated[str, Form()] = "",
) -> Response:
    expected = request.cookies.get(LOGIN_CSRF_COOKIE)
    if not expected or not csrf_valid(expected, csrf):
        return _login_page(
            request,
            next,
            error="The sign-in form expired or cookies are blocked. Please try again.",
            status_code=400,
        )
    value = token.strip()
    if value.startswith("fcp_"):
        return _login_page(
            request,
            next,
            error="That is a deploy token: it can only deploy its app. "
            "Sign in with a user token instead.",
            status_code=403,
        )
    caller = await resolve_token(session, value) if value else None
    if caller is None or caller.user is None:
        return _login_page(
            request, next, error="That token is not valid or has expired.", status_code=401
        )
    ttl_days = platform.settings.user_token_ttl_days
    session_token, _ = await issue_user_token(session, caller.user, SESSION_TOKEN_NAME, ttl_days)
    await session.commit()
    response = RedirectResponse(safe_next(next), status_code=303)
    set_session_cookie(request, response, session_token, ttl_days * 86400)
    response.delete_cookie(LOGIN_CSRF_COOKIE, path="/login")
    return response


@router.post("/logout")
async def logout(
    request: Request,
    session: SessionDep,
    visitor: OptionalVisitor,
    csrf: Annotated[str, Form()] = "",
) -> Response:
    if visitor is not None:
        if not csrf_valid(visitor.csrf, csrf):
            return render(
                request,
                "message.html",
                await page_context(
                    session,
                    visitor,
                    title="Could not sign out",
                    message="This request did not come from a Cloudlet page. "
                    "Go back, reload the page and try again.",
                ),
                status_code=403,
            )
        visitor.token.revoked_at = datetime.now(UTC)
        await session.commit()
    response = RedirectResponse("/login", status_code=303)
    clear_session_cookie(request, response)
    return response


# -- device login (the page `fastapi login` opens) -------------------------------------------


async def _device_request(session: AsyncSession, code: str) -> DeviceAuthorization | None:
    auth = await session.scalar(
        select(DeviceAuthorization).where(
            DeviceAuthorization.user_code == normalize_user_code(code)
        )
    )
    if auth is None or auth.expires_at <= datetime.now(UTC):
        return None
    return auth


@router.get("/device")
async def device_page(
    request: Request, session: SessionDep, visitor: VisitorDep, code: str | None = None
) -> Response:
    if not code or not code.strip():
        return render(request, "device_entry.html", await page_context(session, visitor))
    auth = await _device_request(session, code)
    if auth is None:
        context = await page_context(session, visitor, outcome="unknown", code=code)
        return render(request, "device_result.html", context, status_code=404)
    if auth.status != "pending":
        context = await page_context(session, visitor, outcome="answered", code=auth.user_code)
        return render(request, "device_result.html", context, status_code=409)
    context = await page_context(session, visitor, auth=auth)
    return render(request, "device_confirm.html", context)


@router.post("/device")
async def device_decide(
    request: Request,
    session: SessionDep,
    visitor: OptionalVisitor,
    code: Annotated[str, Form()] = "",
    decision: Annotated[str, Form()] = "",
    csrf: Annotated[str, Form()] = "",
) -> Response:
    if visitor is None:
        back = "/device?" + urlencode({"code": normalize_user_code(code)}) if code else "/device"
        raise SignInRequired(back, clear_cookie=SESSION_COOKIE in request.cookies)
    if not csrf_valid(visitor.csrf, csrf) or decision not in ("approve", "deny"):
        context = await page_context(
            session,
            visitor,
            title="Request not accepted",
            message="This approval did not come from the Cloudlet page that shows the code. "
            "Open the link from your terminal again.",
        )
        return render(request, "message.html", context, status_code=403)
    try:
        auth = await decide_device_login(session, visitor.user, code, decision == "approve")
    except HTTPException as exc:
        outcome = "unknown" if exc.status_code == 404 else "answered"
        context = await page_context(session, visitor, outcome=outcome, code=code)
        return render(request, "device_result.html", context, status_code=exc.status_code)
    context = await page_context(session, visitor, outcome=auth.status, code=auth.user_code)
    return render(request, "device_result.html", context)


# -- teams and apps --------------------------------------------------------------------------


@router.get("/")
async def home(session: SessionDep, visitor: OptionalVisitor, request: Request) -> Response:
    if visitor is None:
        return RedirectResponse(login_url("/"), status_code=303)
    teams = await teams_of(session, visitor.user)
    if not teams:
        context = await page_context(
            session,
            visitor,
            title="No team yet",
            message="You are not a member of any team. Ask an administrator to add you to one.",
        )
        return render(request, "message.html", context)
    return RedirectResponse(f"/{teams[0].slug}/apps", status_code=303)


async def _latest_deployments(session: AsyncSession, app_ids: list[str]) -> dict[str, Deployment]:
    if not app_ids:
        return {}
    newest = (
        select(Deployment.app_id, func.max(Deployment.created_at).label("created_at"))
        .where(Deployment.app_id.in_(app_ids))
        .group_by(Deployment.app_id)
        .subquery()
    )
    rows = await session.scalars(
        select(Deployment)
        .join(
            newest,
            (Deployment.app_id == newest.c.app_id) & (Deployment.created_at == newest.c.created_at),
        )
        .order_by(Deployment.id)
    )
    return {d.app_id: d for d in rows.all()}


@router.get("/{team_slug}/apps")
async def team_apps(
    team_slug: str,
    request: Request,
    platform: PlatformDep,
    session: SessionDep,
    visitor: VisitorDep,
) -> Response:
    team = await team_by_slug(session, visitor.user, team_slug)
    apps = list(
        (
            await session.scalars(
                select(App).where(App.team_id == team.id).order_by(func.lower(App.name), App.id)
            )
        ).all()
    )
    latest = await _latest_deployments(session, [a.id for a in apps])
    live_ids = [a.live_deployment_id for a in apps if a.live_deployment_id]
    live_rows = await session.scalars(select(Deployment).where(Deployment.id.in_(live_ids)))
    live = {d.id: d for d in live_rows.all()}
    rows = [
        {
            "app": app,
            "url": platform.settings.app_url(app.slug),
            "live": live.get(app.live_deployment_id or ""),
            "latest": latest.get(app.id),
        }
        for app in apps
    ]
    base = base_url(request, platform)
    context = await page_context(
        session,
        visitor,
        team,
        rows=rows,
        base=base,
        cli_json=f'{{"base_api_url": "{base}/api/v1", "dashboard_base_url": "{base}"}}',
    )
    return render(request, "apps.html", context)


def _domain_state(domain: CustomDomain) -> str:
    if domain.status in DOMAIN_LIVE:
        return "ok"
    if domain.status in DOMAIN_FAILED:
        return "fail"
    return "busy"


def _variable_rows(platform: Platform, rows: list[EnvironmentVariable]) -> list[dict[str, Any]]:
    result = []
    for row in rows:
        value: str | None = None
        unreadable = False
        if not row.is_secret:  # secret values never leave the store, not even decrypted here
            try:
                value = platform.secrets.decrypt(row.value_encrypted)
            except RuntimeError:
                unreadable = True
        result.append(
            {
                "name": row.name,
                "is_secret": row.is_secret,
                "value": value,
                "unreadable": unreadable,
                "managed_by": row.managed_by,
                "updated_at": row.updated_at,
            }
        )
    return result


async def _app_page(
    request: Request,
    platform: Platform,
    session: AsyncSession,
    visitor: Visitor,
    team: Team,
    app: App,
    scaling: dict[str, Any],
    status_code: int = 200,
) -> Response:
    total = await session.scalar(
        select(func.count()).select_from(Deployment).where(Deployment.app_id == app.id)
    )
    deployments = (
        await session.scalars(
            select(Deployment)
            .where(Deployment.app_id == app.id)
            .order_by(Deployment.created_at.desc(), Deployment.id.desc())
            .limit(DEPLOYMENTS_SHOWN)
        )
    ).all()
    live = await session.get(Deployment, app.live_deployment_id) if app.live_deployment_id else None
    variables = (
        await session.scalars(
            select(EnvironmentVariable)
            .where(EnvironmentVariable.app_id == app.id)
            .order_by(EnvironmentVariable.name)
        )
    ).all()
    domains = (
        await session.scalars(
            select(CustomDomain).where(CustomDomain.app_id == app.id).order_by(CustomDomain.name)
        )
    ).all()
    tokens = (
        await session.scalars(
            select(DeployToken)
            .where(DeployToken.app_id == app.id)
            .order_by(DeployToken.created_at.desc())
        )
    ).all()
    context = await page_context(
        session,
        visitor,
        team,
        app=app,
        url=platform.settings.app_url(app.slug),
        live=live,
        deployments=deployments,
        deployments_total=total or 0,
        variables=_variable_rows(platform, list(variables)),
        domains=[{"domain": d, "state": _domain_state(d)} for d in domains],
        tokens=tokens,
        scaling=scaling,
        blocking_calls=blocking_calls.live_summary(
            live, f"/{team.slug}/apps/{app.slug}/deployments/{live.id}" if live else ""
        ),
    )
    return render(request, "app.html", context, status_code=status_code)


@router.get("/{team_slug}/apps/{app_slug}")
async def app_overview(
    team_slug: str,
    app_slug: str,
    request: Request,
    platform: PlatformDep,
    session: SessionDep,
    visitor: VisitorDep,
) -> Response:
    team, app = await app_by_slug(session, visitor.user, team_slug, app_slug)
    scaling = scaling_panel.panel_context(platform, team, app)
    return await _app_page(request, platform, session, visitor, team, app, scaling)


# -- scaling ---------------------------------------------------------------------------------


@router.get("/{team_slug}/apps/{app_slug}/scaling/live")
async def scaling_live(
    team_slug: str,
    app_slug: str,
    request: Request,
    platform: PlatformDep,
    session: SessionDep,
    visitor: VisitorDep,
) -> Response:
    """The htmx fragment: the Scaling panel's state, live numbers and settings."""
    team, app = await app_by_slug(session, visitor.user, team_slug, app_slug)
    context = {
        "team": team,
        "app": app,
        "scaling": scaling_panel.panel_context(platform, team, app),
    }
    return render(request, "fragments/scaling_live.html", context)


@router.post("/{team_slug}/apps/{app_slug}/scaling")
async def scaling_update(
    team_slug: str,
    app_slug: str,
    request: Request,
    platform: PlatformDep,
    session: SessionDep,
    visitor: OptionalVisitor,
    min_instances: Annotated[str, Form()] = "",
    max_instances: Annotated[str, Form()] = "",
    target_concurrency: Annotated[str, Form()] = "",
    scale_to_zero_after_s: Annotated[str, Form()] = "",
    capacity_share: Annotated[str, Form()] = "",
    csrf: Annotated[str, Form()] = "",
) -> Response:
    """The Scaling panel's form. With htmx the answer is the panel alone (field errors
    included, so 200: htmx swaps only successful answers); without, the app page again."""
    page = f"/{team_slug}/apps/{app_slug}"
    if visitor is None:
        raise SignInRequired(page, clear_cookie=SESSION_COOKIE in request.cookies)
    team, app = await app_by_slug(session, visitor.user, team_slug, app_slug)
    if not csrf_valid(visitor.csrf, csrf):
        context = await page_context(
            session,
            visitor,
            team,
            title="Settings not saved",
            message="This change did not come from a Cloudlet page. "
            "Go back, reload the page and try again.",
        )
        return render(request, "message.html", context, status_code=403)
    values = {
        "min_instances": min_instances,
        "max_instances": max_instances,
        "target_concurrency": target_concurrency,
        "scale_to_zero_after_s": scale_to_zero_after_s,
        "capacity_share": capacity_share,
    }
    htmx = bool(request.headers.get("hx-request"))
    scaling, errors = scaling_panel.parse_form(values)
    if scaling is None:
        panel = scaling_panel.panel_context(platform, team, app, values=values, errors=errors)
        if htmx:
            context = {"visitor": visitor, "team": team, "app": app, "scaling": panel}
            return render(request, "fragments/scaling_panel.html", context)
        return await _app_page(request, platform, session, visitor, team, app, panel, 422)
    # Every setting is posted, so nothing is merged with the row: no lock needed for min <= max.
    for name in FIELDS:
        setattr(app, name, getattr(scaling, name))
    await session.commit()
    await platform.scaling_changed(app.id)
    if not htmx:
        return RedirectResponse(f"{page}#scaling", status_code=303)
    panel = scaling_panel.panel_context(platform, team, app, saved=True)
    context = {"visitor": visitor, "team": team, "app": app, "scaling": panel}
    return render(request, "fragments/scaling_panel.html", context)


@router.get("/{team_slug}/apps/{app_slug}/integrations/connect")
async def integrations_connect(
    team_slug: str, app_slug: str, request: Request, session: SessionDep, visitor: VisitorDep
) -> Response:
    """The page `fastapi cloud integrations resources connect` opens (contract §4.7)."""
    team, app = await app_by_slug(session, visitor.user, team_slug, app_slug)
    resources = (
        await session.scalars(
            select(ConnectedResource)
            .where(ConnectedResource.app_id == app.id)
            .order_by(ConnectedResource.name)
        )
    ).all()
    context = await page_context(session, visitor, team, app=app, resources=resources)
    return render(request, "integrations.html", context)


# -- deployments -----------------------------------------------------------------------------


async def _log_lines(session: AsyncSession, deployment_id: str, after: int) -> list[BuildLogLine]:
    rows = await session.scalars(
        select(BuildLogLine)
        .where(BuildLogLine.deployment_id == deployment_id, BuildLogLine.seq > after)
        .order_by(BuildLogLine.seq)
    )
    return list(rows.all())


def _deployment_context(
    team: Team,
    app: App,
    deployment: Deployment,
    lines: list[BuildLogLine],
    after: int,
    analysis_shown: str | None = None,
) -> dict[str, Any]:
    """`analysis_shown`: the analysis status the page shows (a poll says it), None for the
    page itself."""
    page = f"/{team.slug}/apps/{app.slug}/deployments/{deployment.id}"
    last_seq = lines[-1].seq if lines else after
    analysis = blocking_calls.section_context(deployment)
    return {
        "app": app,
        "deployment": deployment,
        "lines": lines,
        "done": deployment.status in DONE,
        "page_url": page,
        "poll_url": f"{page}/live?after={last_seq}",
        "after": after,
        "analysis": analysis,
        # While the page shows a pending analysis, its poller says so (`analysis=pending`):
        # the first answer that has the report sends the section along (out of band), once.
        "analysis_arrived": analysis_shown == "pending" and analysis["status"] != "pending",
    }


@router.get("/{team_slug}/apps/{app_slug}/deployments/{deployment_id}")
async def deployment_page(
    team_slug: str,
    app_slug: str,
    deployment_id: str,
    request: Request,
    session: SessionDep,
    visitor: VisitorDep,
) -> Response:
    team, app = await app_by_slug(session, visitor.user, team_slug, app_slug)
    deployment = await deployment_of(session, app, deployment_id)
    lines = await _log_lines(session, deployment.id, 0)
    context = await page_context(
        session, visitor, team, **_deployment_context(team, app, deployment, lines, 0)
    )
    return render(request, "deployment.html", context)


@router.get("/{team_slug}/apps/{app_slug}/deployments/{deployment_id}/live")
async def deployment_live(
    team_slug: str,
    app_slug: str,
    deployment_id: str,
    request: Request,
    session: SessionDep,
    visitor: VisitorDep,
    after: Annotated[int, Query(ge=0)] = 0,
    analysis: Annotated[str | None, Query(max_length=20)] = None,
) -> Response:
    """The htmx fragment: new log lines, the status block, the "Blocking calls" section once
    its report arrives, and the next poller."""
    team, app = await app_by_slug(session, visitor.user, team_slug, app_slug)
    deployment = await deployment_of(session, app, deployment_id)
    lines = await _log_lines(session, deployment.id, after)
    context = _deployment_context(team, app, deployment, lines, after, analysis)
    return render(request, "fragments/deployment_live.html", {"team": team, **context})


# -- runtime logs ----------------------------------------------------------------------------


async def _runtime_logs(platform: Platform, app: App) -> list[Any]:
    since = datetime.now(UTC) - RUNTIME_LOG_WINDOW
    read = functools.partial(platform.applogs.read, app.id, since=since, tail=RUNTIME_LOG_TAIL)
    return await anyio.to_thread.run_sync(read)


@router.get("/{team_slug}/apps/{app_slug}/logs")
async def runtime_logs(
    team_slug: str,
    app_slug: str,
    request: Request,
    platform: PlatformDep,
    session: SessionDep,
    visitor: VisitorDep,
) -> Response:
    team, app = await app_by_slug(session, visitor.user, team_slug, app_slug)
    entries = await _runtime_logs(platform, app)
    context = await page_context(session, visitor, team, app=app, entries=entries)
    return render(request, "logs.html", context)


@router.get("/{team_slug}/apps/{app_slug}/logs/entries")
async def runtime_log_entries(
    team_slug: str,
    app_slug: str,
    request: Request,
    platform: PlatformDep,
    session: SessionDep,
    visitor: VisitorDep,
) -> Response:
    team, app = await app_by_slug(session, visitor.user, team_slug, app_slug)
    entries = await _runtime_logs(platform, app)
    context = {"team": team, "app": app, "entries": entries}
    return render(request, "fragments/log_entries.html", context)
