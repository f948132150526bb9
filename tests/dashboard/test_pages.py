"""Team, app, deployment and log pages: what they show, and what they never show."""

from __future__ import annotations

import re
from datetime import timedelta

from cloudlet.store.applogs import AppLogEntry
from cloudlet.store.models import CustomDomain

from .conftest import BASE, Browser, now

SECRET = "s3cr3t-value-that-must-never-render"


def test_empty_team_shows_how_to_deploy(browser: Browser) -> None:
    browser.sign_in()
    page = browser.client.get(f"/{browser.team_slug()}/apps")
    assert page.status_code == 200
    assert "No apps yet" in page.text and "fastapi deploy" in page.text
    line = '{"base_api_url": "http://127.0.0.1:8000/api/v1", "dashboard_base_url": "http://127.0.0.1:8000"}'
    assert line.replace('"', "&#34;") in page.text


def test_apps_list_links_and_statuses(browser: Browser) -> None:
    app = browser.create_app("Web Shop")
    browser.add_deployment(app["id"], "building_image_failed")
    browser.sign_in()
    slug = browser.team_slug()
    page = browser.client.get(f"/{slug}/apps")
    assert "Web Shop" in page.text and f'href="/{slug}/apps/{app["slug"]}"' in page.text
    assert "Build Failed" in page.text and 'class="badge fail"' in page.text
    assert "No apps yet" not in page.text


def test_other_teams_pages_are_404_and_leak_nothing(browser: Browser) -> None:
    eve_token = browser.new_user("eve@example.com")
    eve_app = browser.create_app("eves-private-app", token=eve_token)
    eve_team = browser.team_slug(token=eve_token)
    eve_deployment = browser.add_deployment(eve_app["id"], "success", ["eve's build output"])
    mine = browser.create_app("mine")
    browser.sign_in()
    ada_team = browser.team_slug()
    assert ada_team != eve_team

    paths = [
        f"/{eve_team}/apps",
        f"/{eve_team}/apps/{eve_app['slug']}",
        f"/{eve_team}/apps/{eve_app['slug']}/logs",
        f"/{eve_team}/apps/{eve_app['slug']}/logs/entries",
        f"/{eve_team}/apps/{eve_app['slug']}/deployments/{eve_deployment}",
        f"/{eve_team}/apps/{eve_app['slug']}/deployments/{eve_deployment}/live",
        f"/{ada_team}/apps/{eve_app['slug']}",
        f"/{ada_team}/apps/{mine['slug']}/deployments/{eve_deployment}",
    ]
    unknown = browser.client.get("/no-such-team/apps")
    assert unknown.status_code == 404
    for path in paths:
        response = browser.client.get(path)
        assert response.status_code == 404, path
        assert "eves-private-app" not in response.text and "eve's build" not in response.text
        # Not a member and does not exist look exactly the same.
        assert response.text == unknown.text, path
    assert "Page not found" in unknown.text


def test_deployment_page_shows_failure_and_build_log(browser: Browser) -> None:
    app = browser.create_app()
    lines = [
        "Resolving dependencies",
        "\x1b[31mERROR\x1b[0m: No module named 'shopx' <script>alert(1)</script>",
        "\x1b[1mbold\x1b[22m and \x1b]8;;https://x.example\x1b\\a link\x1b]8;;\x1b\\ done",
    ]
    deployment_id = browser.add_deployment(
        app["id"],
        "building_image_failed",
        lines,
        failure_code="import_error",
        failure_title="The app could not be imported",
        failure_message="ModuleNotFoundError: No module named 'shopx'",
        failure_hint="Add shopx to your dependencies.",
    )
    # The URL the API hands to the CLI is this page.
    dashboard_url = browser.api("GET", f"/deployments/{deployment_id}").json()["dashboard_url"]
    slug = browser.team_slug()
    assert dashboard_url == f"{BASE}/{slug}/apps/{app['slug']}/deployments/{deployment_id}"

    browser.sign_in()
    page = browser.client.get(dashboard_url.removeprefix(BASE))
    assert page.status_code == 200
    html = page.text
    assert "Build Failed" in html
    assert "The app could not be imported" in html
    assert "ModuleNotFoundError: No module named &#39;shopx&#39;" in html
    assert "Add shopx to your dependencies." in html
    assert "\x1b" not in html and "]8;;" not in html
    assert '<span class="a-fg1">ERROR</span>' in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html and "<script>alert(1)" not in html
    assert "a link done" in html
    positions = [html.index(text) for text in ("Resolving", "ERROR", "bold")]
    assert positions == sorted(positions)
    assert 'hx-trigger="every' not in html  # terminal: no polling


def test_deployment_in_progress_polls_for_new_lines(browser: Browser) -> None:
    app = browser.create_app()
    deployment_id = browser.add_deployment(app["id"], "building", ["step 1", "step 2"])
    browser.sign_in()
    page_url = f"/{browser.team_slug()}/apps/{app['slug']}/deployments/{deployment_id}"
    page = browser.client.get(page_url)
    assert "Building" in page.text
    assert 'hx-trigger="every 2s"' in page.text
    poll_url = re.search(r'hx-get="([^"]+)" hx-trigger="every 2s"', page.text)
    assert poll_url and poll_url.group(1) == f"{page_url}/live?after=2"

    fragment = browser.client.get(poll_url.group(1), headers={"HX-Request": "true"})
    assert fragment.status_code == 200
    assert "step 1" not in fragment.text and "step 2" not in fragment.text
    assert 'id="deployment-status" class="card" hx-swap-oob="true"' in fragment.text
    assert f'hx-get="{page_url}/live?after=2"' in fragment.text

    all_lines = browser.client.get(f"{page_url}/live?after=0")
    assert "step 1" in all_lines.text and 'hx-swap-oob="beforeend:#build-log"' in all_lines.text


def test_finished_deployment_fragment_stops_polling(browser: Browser) -> None:
    app = browser.create_app()
    deployment_id = browser.add_deployment(app["id"], "success", ["done"])
    browser.sign_in()
    live = f"/{browser.team_slug()}/apps/{app['slug']}/deployments/{deployment_id}/live?after=1"
    fragment = browser.client.get(live)
    assert '<div id="deployment-poller"></div>' in fragment.text
    assert "hx-trigger" not in fragment.text
    assert "Ready" in fragment.text


def test_htmx_poll_without_session_redirects_the_page(browser: Browser) -> None:
    app = browser.create_app()
    deployment_id = browser.add_deployment(app["id"], "building")
    page = f"/{browser.team_slug()}/apps/{app['slug']}/deployments/{deployment_id}"
    response = browser.client.get(
        f"{page}/live?after=0",
        headers={"HX-Request": "true", "HX-Current-URL": f"{BASE}{page}"},
        follow_redirects=False,
    )
    assert response.status_code == 401
    assert response.headers["hx-redirect"] == "/login?next=" + page.replace("/", "%2F")


def test_app_page_never_shows_secrets_or_token_values(browser: Browser) -> None:
    app = browser.create_app()
    body = {
        "upsert": {
            "API_KEY": {"value": SECRET, "is_secret": True},
            "GREETING": {"value": "<b>hello</b>", "is_secret": False},
        },
        "delete": [],
        "redeploy": False,
    }
    assert browser.api("PUT", f"/apps/{app['id']}/environment-variables/", json=body).is_success
    token = browser.api("POST", f"/apps/{app['id']}/tokens", json={"name": "GitHub CI"}).json()
    browser.add_deployment(app["id"], "success", [f"never print {SECRET[:6]}"])

    async def add_domain() -> None:
        async with browser.platform.sessions() as session:
            session.add(
                CustomDomain(
                    app_id=app["id"],
                    name="shop.example.com",
                    status="internal_dcv_pending",
                    verification_token="v" * 20,
                )
            )
            await session.commit()

    browser.run(add_domain)
    browser.sign_in()
    slug = browser.team_slug()
    pages = [
        browser.client.get(f"/{slug}/apps/{app['slug']}"),
        browser.client.get(f"/{slug}/apps"),
    ]
    for page in pages:
        assert page.status_code == 200
        assert SECRET not in page.text
        assert token["value"] not in page.text
        assert browser.client.cookies["cloudlet_session"] not in page.text
    overview = pages[0].text
    assert "API_KEY" in overview and "secret" in overview
    assert "GREETING" in overview and "&lt;b&gt;hello&lt;/b&gt;" in overview
    assert "GitHub CI" in overview and "Active" in overview
    assert "shop.example.com" in overview and "Setting up" in overview
    assert "Ready" in overview


def test_runtime_logs_page(browser: Browser) -> None:
    app = browser.create_app()
    browser.sign_in()
    slug = browser.team_slug()
    empty = browser.client.get(f"/{slug}/apps/{app['slug']}/logs")
    assert empty.status_code == 200 and "No logs in the last hour" in empty.text

    t = now()
    browser.platform.applogs.append(
        app["id"], AppLogEntry(t - timedelta(hours=2), "info", "entry-from-long-ago")
    )
    browser.platform.applogs.append(app["id"], AppLogEntry(t, "info", "Started server process"))
    browser.platform.applogs.append(
        app["id"], AppLogEntry(t, "error", "\x1b[31mboom\x1b[0m <img src=x onerror=alert(1)>")
    )
    page = browser.client.get(f"/{slug}/apps/{app['slug']}/logs")
    assert "Started server process" in page.text and "entry-from-long-ago" not in page.text
    assert 'class="ln entry lvl-error"' in page.text
    assert "<img src=x" not in page.text and "&lt;img src=x onerror=alert(1)&gt;" in page.text
    assert 'hx-trigger="every 5s"' in page.text

    fragment = browser.client.get(f"/{slug}/apps/{app['slug']}/logs/entries")
    assert fragment.status_code == 200 and "<html" not in fragment.text
    assert "Started server process" in fragment.text


def test_static_assets(browser: Browser) -> None:
    htmx = browser.client.get("/_static/htmx.min.js")
    assert htmx.status_code == 200 and "htmx" in htmx.text[:200]
    css = browser.client.get("/_static/app.css")
    assert css.status_code == 200 and "text/css" in css.headers["content-type"]
    assert browser.client.get("/_static/%2e%2e/routes.py").status_code == 404


def test_integrations_connect_page(browser: Browser) -> None:
    app = browser.create_app()
    browser.sign_in()
    page = browser.client.get(f"/{browser.team_slug()}/apps/{app['slug']}/integrations/connect")
    assert page.status_code == 200 and "Integrations" in page.text
