"""The blocking-call analysis in the dashboard: the deployment page's "Blocking calls" section
(and its refresh while the build runs), and the live deployment's summary on the app page."""

from __future__ import annotations

import html
import re
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import update

from cloudlet.store.models import App, Deployment

from .conftest import ADMIN_TOKEN, Browser
from .test_browser import CHROMIUM, Server, screenshot, sign_in
from .test_browser import console_errors as console_errors
from .test_browser import page as page
from .test_browser import server as server

ITEMS = {
    "file": "app/main.py",
    "line": 28,
    "function": "item",
    "reason": "async route",
    "label": "GET /items/{sku}",
}
SLOW = {
    "file": "app/main.py",
    "line": 40,
    "function": "slow",
    "reason": "async route",
    "label": "GET /slow",
}
LIFESPAN = {
    "file": "app/main.py",
    "line": 11,
    "function": "lifespan",
    "reason": "lifespan",
    "label": "lifespan lifespan",
}


def finding(
    entry: dict[str, Any],
    api: str,
    file: str,
    line: int,
    function: str,
    *,
    kind: str = "sleep",
    chain: tuple[tuple[str, int, str, str], ...] = (),
    message: str | None = None,
    fix: str | None = None,
    severity: str = "normal",
) -> dict[str, Any]:
    """A finding as `Finding.to_json()` writes it; chain: (file, line, function, calls)."""
    first = chain[0] if chain else (file, line)
    return {
        "file": file,
        "line": line,
        "column": 4,
        "kind": kind,
        "api": api,
        "message": message or f"`{api}` blocks the event loop: every other request waits too",
        "fix": fix or f"make `{entry['function']}` a plain `def`; or `await asyncio.sleep(...)`",
        "severity": severity,
        "function": function,
        "call_site": {"file": first[0], "line": first[1]},
        "entry": dict(entry),
        "chain": [
            {"file": f, "line": n, "function": fn, "calls": calls} for f, n, fn, calls in chain
        ],
    }


SCRIPT_MESSAGE = "<script>alert(1)</script> `time.sleep` sleeps on the event loop"
HTTP_FIX = (
    "use `httpx.AsyncClient`: `async with httpx.AsyncClient() as client: ...`; "
    "or offload the whole helper: `await run_in_threadpool(helper, <args>)`"
)
FINDINGS = [
    finding(
        ITEMS,
        "requests.get",
        "app/services.py",
        18,
        "fetch_price",
        kind="http",
        chain=(
            ("app/main.py", 30, "item", "helper"),
            ("app/services.py", 21, "helper", "fetch_price"),
        ),
        fix=HTTP_FIX,
    ),
    finding(ITEMS, "time.sleep", "app/main.py", 29, "item"),
    finding(SLOW, "time.sleep", "app/main.py", 41, "slow", message=SCRIPT_MESSAGE),
]
REPORT: dict[str, Any] = {"status": "complete", "duration_s": 0.123, "findings": FINDINGS}


def set_rows(browser_or_server: Browser | Server, deployment_id: str, **fields: Any) -> None:
    """Set columns of a deployment directly in the store, as the build would."""

    async def write() -> None:
        platform = browser_or_server.platform
        async with platform.sessions() as session:
            await session.execute(
                update(Deployment).where(Deployment.id == deployment_id).values(**fields)
            )
            await session.commit()

    browser_or_server.run(write)


def make_live(browser: Browser, app_id: str, deployment_id: str) -> None:
    async def write() -> None:
        async with browser.platform.sessions() as session:
            await session.execute(
                update(App).where(App.id == app_id).values(live_deployment_id=deployment_id)
            )
            await session.commit()

    browser.run(write)


def deployment_with(
    browser: Browser, analysis: dict[str, Any] | None, status: str = "success"
) -> tuple[dict[str, Any], str, str]:
    """An app with one deployment carrying `analysis`; signed in. (app, deployment id, page)"""
    app = browser.create_app()
    deployment_id = browser.add_deployment(app["id"], status, ["Build complete"])
    if analysis is not None:
        set_rows(browser, deployment_id, analysis=analysis)
    browser.sign_in()
    page_url = f"/{browser.team_slug()}/apps/{app['slug']}/deployments/{deployment_id}"
    return app, deployment_id, page_url


def section(text: str) -> str:
    """The "Blocking calls" section of a page or fragment."""
    match = re.search(r'<section id="blocking-calls".*?</section>', text, re.S)
    assert match, "no Blocking calls section"
    return match.group(0)


def groups(text: str) -> list[str]:
    return re.split(r'(?=<div class="bc-group)', section(text))[1:]


def visible(fragment: str) -> str:
    """The text of some HTML, tags dropped and whitespace folded."""
    text = " ".join(html.unescape(re.sub(r"<[^>]+>", " ", fragment)).split())
    return re.sub(r" ([,.;)])", r"\1", text)


def badge(text: str) -> str:
    match = re.search(r'<span class="badge (\w+)">([^<]*)</span>', section(text))
    assert match
    return f"{match.group(1)}: {html.unescape(match.group(2))}"


# -- the deployment page -----------------------------------------------------------------------


def test_findings_grouped_by_route_with_chain_and_fix(browser: Browser) -> None:
    _, _, page_url = deployment_with(browser, REPORT)
    response = browser.client.get(page_url)
    assert response.status_code == 200
    text = response.text
    shown = section(text)
    assert badge(text) == "warn: 3 found"
    assert "3 blocking calls on async paths, found in 0.12 s" in visible(shown)
    assert "only at startup" not in shown

    items, slow = groups(text)
    assert 'id="blocking-calls-1"' in items and 'id="blocking-calls-2"' in slow
    assert visible(items).startswith("GET /items/{sku} 2 async route item · app/main.py:28")
    assert visible(slow).startswith("GET /slow 1 async route slow · app/main.py:40")
    assert items.count('<li class="bc-finding') == 2 and slow.count('<li class="bc-finding') == 1

    # The first finding: the blocking call, its message, the chain from the route, the fix.
    http = items.split('<li class="bc-finding')[1]
    assert (
        '<code class="bc-api">requests.get</code> <span class="loc">app/services.py:18</span>'
        in (http)
    )
    assert "<code>requests.get</code> blocks the event loop" in http
    chain = re.search(r'<ol class="bc-chain".*?</ol>', http, re.S)
    assert chain
    steps = [visible(step) for step in re.findall(r"<li.*?</li>", chain.group(0), re.S)]
    assert steps == [
        "item async route app/main.py:28",
        "item → calls helper app/main.py:30",
        "helper → calls fetch_price app/services.py:21",
        "fetch_price → calls requests.get app/services.py:18",
    ]
    assert '<li class="blocking">' in chain.group(0)
    fix = re.search(r'<div class="bc-fix">(.*?)</div>', http, re.S)
    assert fix
    assert "<code>httpx.AsyncClient</code>" in fix.group(1)
    assert "<code>await run_in_threadpool(helper, &lt;args&gt;)</code>" in fix.group(1)

    # A finding in the route itself: the chain is the route and the call.
    sleep = items.split('<li class="bc-finding')[2]
    chain = re.search(r'<ol class="bc-chain".*?</ol>', sleep, re.S)
    assert chain
    assert [visible(s) for s in re.findall(r"<li.*?</li>", chain.group(0), re.S)] == [
        "item async route app/main.py:28",
        "item → calls time.sleep app/main.py:29",
    ]

    # User code is escaped, backticks or not.
    assert "&lt;script&gt;alert(1)&lt;/script&gt; <code>time.sleep</code> sleeps" in slow
    assert "<script>alert" not in text
    assert 'hx-trigger="every' not in text  # a finished deployment: no polling


def test_user_code_is_escaped_everywhere(browser: Browser) -> None:
    evil = "<img src=x onerror=alert(1)>"
    entry = {**ITEMS, "label": f"GET /{evil}", "function": evil, "routes": [evil]}
    report = {
        "status": "complete",
        "duration_s": 1,
        "findings": [
            finding(
                entry,
                evil,
                f"app/{evil}.py",
                3,
                evil,
                kind=evil,
                chain=((f"{evil}.py", 2, evil, evil),),
                message=f"`{evil}` {evil}",
                fix=f"`{evil}` or {evil}",
            )
        ],
    }
    app, deployment_id, page_url = deployment_with(browser, report)
    make_live(browser, app["id"], deployment_id)
    for url in (page_url, page_url.split("/deployments/")[0]):
        text = browser.client.get(url).text
        assert "<img" not in text
        assert "&lt;img src=x onerror=alert(1)&gt;" in text


def test_startup_only_findings_are_less_urgent_and_last(browser: Browser) -> None:
    report = {
        "status": "complete",
        "duration_s": 12.4,
        "findings": [
            finding(LIFESPAN, "open", "app/main.py", 7, "load_config", severity="low"),
            finding(SLOW, "time.sleep", "app/main.py", 41, "slow"),
            finding(LIFESPAN, "io.TextIOWrapper.read", "app/main.py", 8, "c", severity="warn"),
        ],
    }
    _, _, page_url = deployment_with(browser, report)
    text = browser.client.get(page_url).text
    assert "3 blocking calls on async paths, found in 12 s (2 only at startup)." in visible(
        section(text)
    )
    slow, lifespan = groups(text)
    assert "GET /slow" in slow and "less-urgent" not in slow
    assert lifespan.startswith('<div class="bc-group less-urgent"')
    assert "lifespan lifespan" in lifespan and "startup only" in lifespan
    assert lifespan.count('<li class="bc-finding less-urgent">') == 2


def test_dependency_shows_the_routes_it_serves(browser: Browser) -> None:
    dependency = {
        "file": "app/deps.py",
        "line": 5,
        "function": "current_user",
        "reason": "async dependency",
        "label": "dependency current_user",
        "routes": ["GET /items/{sku}", "POST /orders"],
    }
    report = {
        "status": "complete",
        "duration_s": 0.2,
        "findings": [finding(dependency, "time.sleep", "app/deps.py", 6, "current_user")],
    }
    _, _, page_url = deployment_with(browser, report)
    (group,) = groups(browser.client.get(page_url).text)
    assert visible(group).startswith(
        "dependency current_user 1 async dependency current_user · app/deps.py:5 · "
        "used by GET /items/{sku}, POST /orders"
    )


def test_none_found(browser: Browser) -> None:
    _, _, page_url = deployment_with(
        browser, {"status": "complete", "duration_s": 0.05, "findings": []}
    )
    text = browser.client.get(page_url).text
    assert badge(text) == "ok: None found"
    assert "No blocking calls on async paths, checked in 0.05 s." in visible(section(text))
    assert groups(text) == []


def test_failed_shows_the_error(browser: Browser) -> None:
    report = {
        "status": "failed",
        "duration_s": 60.0,
        "error": "the analysis took longer than 60 s <b>",
        "findings": [],
    }
    _, _, page_url = deployment_with(browser, report)
    text = browser.client.get(page_url).text
    assert badge(text) == "idle: Analysis failed"
    assert "The analysis could not finish: the analysis took longer than 60 s <b>." in visible(
        section(text)
    )
    assert "60 s &lt;b&gt;" in section(text)
    assert groups(text) == []


def test_not_run(browser: Browser) -> None:
    _, _, page_url = deployment_with(browser, None, status="success")
    text = browser.client.get(page_url).text
    assert badge(text) == "idle: Not run"
    assert "built before the analyzer existed" in section(text)
    assert 'data-analysis="not_run"' in text


def test_a_report_with_only_some_fields_still_renders(browser: Browser) -> None:
    # The smallest report the API's tests store: no api, no entry, no severity.
    report = {
        "status": "complete",
        "duration_s": 0.12,
        "findings": [
            {
                "file": "app/main.py",
                "line": 12,
                "call_site": {"file": "app/main.py", "line": 12},
                "chain": [],
                "kind": "sleep",
                "message": "time.sleep() blocks the event loop",
                "fix": "await asyncio.sleep(...)",
            }
        ],
    }
    _, _, page_url = deployment_with(browser, report)
    response = browser.client.get(page_url)
    assert response.status_code == 200
    (group,) = groups(response.text)
    assert "Unknown entry point" in group and "app/main.py:12" in group
    assert "time.sleep() blocks the event loop" in group


def test_pending_refreshes_with_the_poller_until_the_report_is_there(browser: Browser) -> None:
    _, deployment_id, page_url = deployment_with(browser, None, status="building")
    text = browser.client.get(page_url).text
    assert badge(text) == "busy: Pending"
    poller = re.search(r'<div id="deployment-poller"[^>]*>', text)
    assert poller and """hx-vals='{"analysis": "pending"}'""" in poller.group(0)

    live = f"{page_url}/live"
    headers = {"HX-Request": "true"}
    still = browser.client.get(live, params={"after": 1, "analysis": "pending"}, headers=headers)
    assert still.status_code == 200
    assert 'id="blocking-calls"' not in still.text  # nothing new: the section stays as it is
    assert """hx-vals='{"analysis": "pending"}'""" in still.text

    set_rows(browser, deployment_id, status="deploying", analysis=REPORT)
    arrived = browser.client.get(live, params={"after": 1, "analysis": "pending"}, headers=headers)
    shown = section(arrived.text)
    assert shown.startswith('<section id="blocking-calls"') and 'hx-swap-oob="true"' in shown
    assert badge(arrived.text) == "warn: 3 found" and len(groups(arrived.text)) == 2
    assert "hx-vals" not in arrived.text  # the next poll no longer asks

    # A page that already shows the report does not get it again on every poll.
    later = browser.client.get(live, params={"after": 1}, headers=headers)
    assert 'id="blocking-calls"' not in later.text
    assert badge(browser.client.get(page_url).text) == "warn: 3 found"


def test_pending_then_the_build_fails_shows_not_run(browser: Browser) -> None:
    _, deployment_id, page_url = deployment_with(browser, None, status="building")
    set_rows(browser, deployment_id, status="building_image_failed")
    fragment = browser.client.get(f"{page_url}/live", params={"after": 1, "analysis": "pending"})
    assert badge(fragment.text) == "idle: Not run"
    assert '<div id="deployment-poller"></div>' in fragment.text


def test_other_teams_analysis_is_not_found(browser: Browser) -> None:
    eve_token = browser.new_user("eve@example.com")
    eve_app = browser.create_app("eves-private-app", token=eve_token)
    eve_team = browser.team_slug(token=eve_token)
    eve_deployment = browser.add_deployment(eve_app["id"], "success")
    secret = "eve's private blocking call"
    report = {
        "status": "complete",
        "duration_s": 0.1,
        "findings": [finding(ITEMS, "time.sleep", "app/main.py", 29, "item", message=secret)],
    }
    set_rows(browser, eve_deployment, analysis=report)
    make_live(browser, eve_app["id"], eve_deployment)
    browser.sign_in()
    unknown = browser.client.get("/no-such-team/apps")
    deployment = f"/{eve_team}/apps/{eve_app['slug']}/deployments/{eve_deployment}"
    for path in (
        deployment,
        f"{deployment}/live?after=0&analysis=pending",
        f"/{eve_team}/apps/{eve_app['slug']}",
    ):
        response = browser.client.get(path)
        assert response.status_code == 404, path
        assert secret not in response.text and response.text == unknown.text
    assert browser.api("GET", f"/deployments/{eve_deployment}/analysis").status_code == 404


# -- the app page ------------------------------------------------------------------------------


def test_app_page_lists_the_live_deployments_blocking_calls(browser: Browser) -> None:
    app, deployment_id, page_url = deployment_with(browser, REPORT)
    app_url = page_url.split("/deployments/")[0]
    assert "live-blocking-calls" not in browser.client.get(app_url).text  # not live yet

    make_live(browser, app["id"], deployment_id)
    text = browser.client.get(app_url).text
    box = re.search(r'<section id="live-blocking-calls".*?</section>', text, re.S)
    assert box
    assert visible(box.group(0)).startswith("Blocking calls in the live deployment 3")
    rows = [visible(row) for row in re.findall(r"<li.*?</li>", box.group(0), re.S)]
    assert rows == ["GET /items/{sku} 2 blocking calls", "GET /slow 1 blocking call"]
    assert f'href="{page_url}#blocking-calls-1">GET /items/{{sku}}</a>' in box.group(0)
    assert f'href="{page_url}#blocking-calls-2">GET /slow</a>' in box.group(0)
    assert f'href="{page_url}#blocking-calls">' in box.group(0)
    # The anchors exist on the deployment page.
    deployment_page = browser.client.get(page_url).text
    for anchor in ("blocking-calls", "blocking-calls-1", "blocking-calls-2"):
        assert f'id="{anchor}"' in deployment_page


@pytest.mark.parametrize(
    "analysis",
    [
        {"status": "complete", "duration_s": 0.1, "findings": []},
        {"status": "failed", "duration_s": 0.1, "error": "boom", "findings": []},
        None,
    ],
    ids=["none-found", "failed", "not-run"],
)
def test_app_page_has_no_box_without_findings(
    browser: Browser, analysis: dict[str, Any] | None
) -> None:
    app, deployment_id, page_url = deployment_with(browser, analysis)
    make_live(browser, app["id"], deployment_id)
    # A newer deployment with findings that is not live does not count.
    newer = browser.add_deployment(app["id"], "building")
    set_rows(browser, newer, analysis=REPORT)
    text = browser.client.get(page_url.split("/deployments/")[0]).text
    assert "Blocking calls" not in text and "blocking-calls" not in text


# -- in a browser ------------------------------------------------------------------------------


@pytest.mark.skipif(
    not CHROMIUM.exists(), reason="no /usr/bin/chromium (apt-get install -y chromium)"
)
def test_section_in_a_browser(
    server: Server, page: Any, console_errors: list[str], tmp_path: Path
) -> None:
    from playwright.sync_api import expect

    headers = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
    team = httpx.get(f"{server.base}/api/v1/teams/", headers=headers).json()["data"][0]
    app = httpx.post(
        f"{server.base}/api/v1/apps/", headers=headers, json={"name": "shop", "team_id": team["id"]}
    ).json()

    async def add() -> str:
        async with server.platform.sessions() as session:
            deployment = Deployment(app_id=app["id"], slug="d", status="building")
            session.add(deployment)
            await session.commit()
            return deployment.id

    deployment_id = server.run(add)
    page.goto(f"{server.base}/{team['slug']}/apps/{app['slug']}/deployments/{deployment_id}")
    sign_in(page)
    expect(page.locator("#blocking-calls .badge")).to_have_text("Pending")

    # The build stores the report: the deployment poller brings the section in.
    set_rows(server, deployment_id, status="deploying", analysis=REPORT)
    expect(page.locator("#blocking-calls .badge")).to_have_text("3 found", timeout=30_000)
    expect(page.locator("#blocking-calls .bc-group")).to_have_count(2)
    expect(page.locator("#blocking-calls .bc-finding")).to_have_count(3)
    expect(page.locator("#blocking-calls .bc-fix").first).to_be_visible()
    expect(page.get_by_text("<script>alert(1)</script>", exact=False)).to_be_visible()

    section_png = tmp_path / "blocking-calls.png"
    page.locator("#blocking-calls").screenshot(path=str(section_png))
    screenshot(page, tmp_path / "deployment-blocking-calls.png")

    # Live: the app page lists the routes, each linking to its group on this page.
    async def go_live() -> None:
        async with server.platform.sessions() as session:
            await session.execute(
                update(App).where(App.id == app["id"]).values(live_deployment_id=deployment_id)
            )
            await session.commit()

    server.run(go_live)
    page.goto(f"{server.base}/{team['slug']}/apps/{app['slug']}")
    box = page.locator("#live-blocking-calls")
    expect(box.locator("li")).to_have_count(2)
    expect(box.locator("li").first).to_contain_text("2 blocking calls")
    page.locator("#live-blocking-calls").screenshot(path=str(tmp_path / "app-box.png"))
    box.get_by_role("link", name="GET /slow").click()
    page.wait_for_url("**#blocking-calls-2")
    expect(page.locator("#blocking-calls-2")).to_be_in_viewport()
    assert console_errors == []
    print(f"screenshots in {tmp_path}")
