"""The Scaling panel of the app page: what it shows, its live fragment, and its form."""

from __future__ import annotations

import html
import re
from typing import Any

import httpx
import pytest
from sqlalchemy import update

from cloudlet.control.platform import Platform
from cloudlet.store.models import App

from .conftest import ADMIN_TOKEN, Browser, hidden
from .test_browser import CHROMIUM, Server, screenshot, sign_in
from .test_browser import console_errors as console_errors
from .test_browser import page as page
from .test_browser import server as server

DEFAULTS = {
    "min_instances": 0,
    "max_instances": 4,
    "target_concurrency": 100,
    "scale_to_zero_after_s": 300,
    "capacity_share": 1.0,
}
FORM = {name: str(value) for name, value in DEFAULTS.items()} | {"capacity_share": "1"}


@pytest.fixture
def changed(platform: Platform, monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The app ids `Platform.scaling_changed` was told about, in order."""
    calls: list[str] = []

    async def record(app_id: str) -> None:
        calls.append(app_id)

    monkeypatch.setattr(platform, "scaling_changed", record)
    return calls


def setting(text: str, name: str) -> str:
    """A setting as the panel shows it (its data-setting element's text)."""
    match = re.search(rf'data-setting="{name}"[^>]*>([^<]*)<', text)
    assert match, f"no setting {name!r} shown"
    return html.unescape(match.group(1)).strip()


def live_number(text: str, name: str) -> int:
    match = re.search(rf'data-live="{name}">([\d,]+)<', text)
    assert match, f"no live number {name!r} shown"
    return int(match.group(1).replace(",", ""))


def field_value(text: str, name: str) -> str:
    match = re.search(rf'<input id="scaling-{name}" name="{name}"[^>]*value="([^"]*)"', text)
    assert match, f"no input {name!r}"
    return html.unescape(match.group(1))


def field_errors(text: str) -> dict[str, str]:
    return {
        name: html.unescape(message)
        for name, message in re.findall(r'data-error="([a-z_]+)">([^<]*)<', text)
    }


def app_page(browser: Browser, app: dict[str, Any]) -> str:
    return f"/{browser.team_slug()}/apps/{app['slug']}"


def post_form(
    browser: Browser, app: dict[str, Any], *, htmx: bool = True, **values: str
) -> httpx.Response:
    page = browser.client.get(app_page(browser, app))
    assert page.status_code == 200
    data = {**FORM, **values, "csrf": hidden(page.text, "csrf")}
    headers = {"HX-Request": "true", "HX-Current-URL": page.url.path} if htmx else {}
    response: httpx.Response = browser.client.post(
        f"{app_page(browser, app)}/scaling", data=data, headers=headers, follow_redirects=False
    )
    return response


def stored(browser: Browser, app: dict[str, Any]) -> dict[str, Any]:
    body = browser.api("GET", f"/apps/{app['id']}/scaling").json()
    return {name: body[name] for name in DEFAULTS}


def set_live(browser: Browser, app_id: str, revision: str | None) -> None:
    async def go() -> None:
        async with browser.platform.sessions() as session:
            await session.execute(
                update(App).where(App.id == app_id).values(live_deployment_id=revision)
            )
            await session.commit()

    browser.run(go)


# -- what the panel shows --------------------------------------------------------------------


def test_panel_shows_defaults_of_an_app_not_deployed(browser: Browser) -> None:
    app = browser.create_app()
    browser.sign_in()
    page = browser.client.get(app_page(browser, app))
    assert page.status_code == 200
    text = page.text
    assert 'id="scaling"' in text and ">Scaling</h2>" in text
    assert 'data-state="not_deployed">Not deployed<' in text
    assert {name: setting(text, name) for name in DEFAULTS} == {
        "min_instances": "0",
        "max_instances": "4",
        "target_concurrency": "100",
        "scale_to_zero_after_s": "5 min",
        "capacity_share": "1",
    }
    assert setting(text, "admission_limit") == "400"
    assert 'data-live="' not in text  # no traffic numbers without a live revision
    assert 'data-setting="team_caps"' not in text
    # The form, filled with the current settings, posts back with the CSRF token.
    assert {name: field_value(text, name) for name in DEFAULTS} == FORM
    assert f'action="{app_page(browser, app)}/scaling"' in text
    assert field_errors(text) == {}
    # And the live part polls.
    poll = f'hx-get="{app_page(browser, app)}/scaling/live" hx-trigger="every 2s"'
    assert poll in text


def test_team_caps_are_shown(browser: Browser) -> None:
    app = browser.create_app()
    team_id = browser.api("GET", "/teams/").json()["data"][0]["id"]
    limits = {"max_instances": 3, "max_memory_mb": 2048}
    assert browser.api("PATCH", f"/teams/{team_id}/limits", json=limits).status_code == 200
    browser.sign_in()
    text = browser.client.get(app_page(browser, app)).text
    caps = setting(text, "team_caps")
    assert "3 instances" in caps and "2,048 MB of memory" in caps


def test_live_fragment_follows_the_runtime_and_the_routers(
    browser: Browser, monkeypatch: pytest.MonkeyPatch
) -> None:
    app = browser.create_app()
    platform = browser.platform
    ready: dict[str, list[object]] = {}
    prepared: set[str] = {"rev1"}
    monkeypatch.setattr(platform.runtime, "instances", lambda rev: ready.get(rev, []))
    monkeypatch.setattr(platform.runtime, "is_prepared", lambda rev: rev in prepared)
    counts = {"inflight": 3, "held": 2, "requests": 1234, "rejected": 17}
    for name, value in counts.items():
        # Other revisions' counts must not leak into this app's numbers.
        monkeypatch.setattr(platform.feed, name, lambda v=value: {"rev1": v, "other": 999})
    browser.sign_in()
    fragment_url = f"{app_page(browser, app)}/scaling/live"

    fragment = browser.client.get(fragment_url, headers={"HX-Request": "true"})
    assert fragment.status_code == 200
    assert 'data-state="not_deployed"' in fragment.text
    assert fragment.text.lstrip().startswith('<div id="scaling-live"')
    assert f'hx-get="{fragment_url}" hx-trigger="every 2s" hx-swap="outerHTML"' in fragment.text
    assert "<form" not in fragment.text  # the poll never replaces what is being typed

    set_live(browser, app["id"], "rev1")
    text = browser.client.get(fragment_url, headers={"HX-Request": "true"}).text
    assert 'data-state="scaled_to_zero">Scaled to zero<' in text
    assert "Imported, starts on the next request." in text
    assert live_number(text, "instances") == 0
    assert {name: live_number(text, name) for name in counts} == counts
    assert "/deployments/rev1" in text

    prepared.clear()
    text = browser.client.get(fragment_url, headers={"HX-Request": "true"}).text
    assert 'data-state="stopped">Stopped<' in text

    ready["rev1"] = [object(), object()]
    text = browser.client.get(fragment_url, headers={"HX-Request": "true"}).text
    assert 'data-state="running">Running<' in text
    assert live_number(text, "instances") == 2
    # The full page shows the same.
    page = browser.client.get(app_page(browser, app)).text
    assert 'data-state="running"' in page and live_number(page, "requests") == 1234


def test_live_fragment_signed_out_sends_the_browser_to_sign_in(browser: Browser) -> None:
    app = browser.create_app()
    slug = browser.team_slug()
    page = f"/{slug}/apps/{app['slug']}"
    response = browser.client.get(
        f"{page}/scaling/live",
        headers={"HX-Request": "true", "HX-Current-URL": f"http://127.0.0.1:8000{page}"},
    )
    assert response.status_code == 401
    assert response.headers["hx-redirect"].startswith("/login?next=")


# -- changing the settings -------------------------------------------------------------------


def test_valid_change_is_saved_and_applied(browser: Browser, changed: list[str]) -> None:
    app = browser.create_app()
    browser.sign_in()
    values = {
        "min_instances": "1",
        "max_instances": "8",
        "target_concurrency": "50",
        "scale_to_zero_after_s": "90",
        "capacity_share": "0.75",
    }
    response = post_form(browser, app, **values)
    assert response.status_code == 200
    text = response.text
    # The updated panel, alone, for htmx to swap in.
    assert text.lstrip().startswith('<section id="scaling"')
    assert "<html" not in text
    assert "Saved." in text and field_errors(text) == {}
    assert setting(text, "max_instances") == "8"
    assert setting(text, "scale_to_zero_after_s") == "1 min 30 s"
    assert setting(text, "admission_limit") == "300"  # 8 * 50 * 0.75
    assert {name: field_value(text, name) for name in values} == values

    assert stored(browser, app) == {
        "min_instances": 1,
        "max_instances": 8,
        "target_concurrency": 50,
        "scale_to_zero_after_s": 90,
        "capacity_share": 0.75,
    }
    assert changed == [app["id"]]

    # The page shows the stored settings from now on.
    page = browser.client.get(app_page(browser, app)).text
    assert setting(page, "target_concurrency") == "50"


def test_change_without_javascript_redirects_back(browser: Browser, changed: list[str]) -> None:
    app = browser.create_app()
    browser.sign_in()
    response = post_form(browser, app, htmx=False, max_instances="12")
    assert response.status_code == 303
    assert response.headers["location"] == f"{app_page(browser, app)}#scaling"
    assert stored(browser, app) == {**DEFAULTS, "max_instances": 12}
    assert changed == [app["id"]]


@pytest.mark.parametrize(
    ("values", "field", "message"),
    [
        (
            {"min_instances": "5", "max_instances": "3"},
            "min_instances",
            "Must not exceed max instances (5 > 3).",
        ),
        (
            {"capacity_share": "0"},
            "capacity_share",
            "Must be greater than 0 and at most 1, not 0.",
        ),
        ({"max_instances": "101"}, "max_instances", "Must be between 1 and 100, not 101."),
        ({"target_concurrency": "2.5"}, "target_concurrency", "Must be a whole number."),
        ({"scale_to_zero_after_s": ""}, "scale_to_zero_after_s", "Is required."),
        ({"capacity_share": "nan"}, "capacity_share", "Must be a number, like 0.5."),
        ({"max_instances": "9" * 40}, "max_instances", "Is far too large."),
    ],
)
def test_invalid_values_show_the_error_and_save_nothing(
    browser: Browser,
    changed: list[str],
    values: dict[str, str],
    field: str,
    message: str,
) -> None:
    app = browser.create_app()
    browser.sign_in()
    # Something valid changes alongside: it must not be saved either.
    typed = {"target_concurrency": "77", **values}
    response = post_form(browser, app, **typed)
    assert response.status_code == 200  # htmx swaps only successful answers
    text = response.text
    assert text.lstrip().startswith('<section id="scaling"')
    assert field_errors(text) == {field: message}
    assert f'id="scaling-{field}" name="{field}"' in text
    assert 'aria-invalid="true"' in text
    assert "Nothing was saved" in text and "Saved." not in text
    assert '<details class="howto scaling-edit" open>' in text
    # What was typed stays in the form; the facts still show what is stored.
    for name, value in typed.items():
        assert field_value(text, name) == value
    assert setting(text, "target_concurrency") == "100"
    assert stored(browser, app) == DEFAULTS
    assert changed == []


def test_invalid_values_without_javascript_show_the_page_again(
    browser: Browser, changed: list[str]
) -> None:
    app = browser.create_app()
    browser.sign_in()
    response = post_form(browser, app, htmx=False, min_instances="9", max_instances="2")
    assert response.status_code == 422
    text = response.text
    assert "<html" in text and "Deployments" in text  # the whole app page
    assert field_errors(text) == {"min_instances": "Must not exceed max instances (9 > 2)."}
    assert field_value(text, "min_instances") == "9"
    assert stored(browser, app) == DEFAULTS
    assert changed == []


def test_a_post_without_the_csrf_token_is_refused(browser: Browser, changed: list[str]) -> None:
    app = browser.create_app()
    browser.sign_in()
    url = f"{app_page(browser, app)}/scaling"
    for csrf in ("", "0" * 64):
        response = browser.client.post(url, data={**FORM, "max_instances": "9", "csrf": csrf})
        assert response.status_code == 403
        assert "Settings not saved" in response.text
    assert stored(browser, app) == DEFAULTS
    assert changed == []


def test_a_post_signed_out_goes_to_sign_in(browser: Browser, changed: list[str]) -> None:
    app = browser.create_app()
    page = app_page(browser, app)
    response = browser.client.post(
        f"{page}/scaling", data={**FORM, "csrf": "x"}, follow_redirects=False
    )
    assert response.status_code == 303
    assert response.headers["location"].startswith("/login?next=")
    assert stored(browser, app) == DEFAULTS
    assert changed == []


def test_another_teams_app_is_not_found(browser: Browser, changed: list[str]) -> None:
    eve_token = browser.new_user("eve@example.com")
    eve_app = browser.create_app("eves-private-app", token=eve_token)
    eve_team = browser.team_slug(token=eve_token)
    mine = browser.create_app("mine")
    browser.sign_in()
    ada_team = browser.team_slug()
    csrf = hidden(browser.client.get(f"/{ada_team}/apps/{mine['slug']}").text, "csrf")
    unknown = browser.client.get("/no-such-team/apps")

    for team in (eve_team, ada_team):
        page = f"/{team}/apps/{eve_app['slug']}"
        for response in (
            browser.client.get(page),
            browser.client.get(f"{page}/scaling/live", headers={"HX-Request": "true"}),
            browser.client.post(
                f"{page}/scaling",
                data={**FORM, "max_instances": "9", "csrf": csrf},
                headers={"HX-Request": "true"},
            ),
            browser.client.post(f"{page}/scaling", data={**FORM, "csrf": csrf}),
        ):
            assert response.status_code == 404, page
            assert response.text == unknown.text
    body = browser.api("GET", f"/apps/{eve_app['id']}/scaling", token=eve_token).json()
    assert body["max_instances"] == DEFAULTS["max_instances"]
    assert changed == []


# -- in a browser ----------------------------------------------------------------------------


@pytest.mark.skipif(
    not CHROMIUM.exists(), reason="no /usr/bin/chromium (apt-get install -y chromium)"
)
def test_change_max_instances_in_a_browser(
    server: Server, page: Any, console_errors: list[str], tmp_path: Any
) -> None:
    from playwright.sync_api import expect

    headers = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
    team = httpx.get(f"{server.base}/api/v1/teams/", headers=headers).json()["data"][0]
    app = httpx.post(
        f"{server.base}/api/v1/apps/", headers=headers, json={"name": "shop", "team_id": team["id"]}
    ).json()
    calls: list[str] = []
    original = server.platform.scaling_changed

    async def record(app_id: str) -> None:
        calls.append(app_id)
        await original(app_id)

    server.platform.scaling_changed = record  # type: ignore[method-assign]

    page.goto(f"{server.base}/{team['slug']}/apps/{app['slug']}")
    sign_in(page)
    panel = page.locator("#scaling")
    expect(panel.locator("[data-state]")).to_have_text("Not deployed")
    expect(panel.locator('[data-setting="max_instances"]')).to_have_text("4")

    panel.get_by_text("Change settings").click()
    page.fill("#scaling-max_instances", "7")
    panel.get_by_role("button", name="Save scaling").click()

    expect(panel.get_by_text("Saved.")).to_be_visible()
    expect(panel.locator('[data-setting="max_instances"]')).to_have_text("7")
    expect(panel.locator('[data-setting="admission_limit"]')).to_have_text("700")
    assert "/login" not in page.url and page.url.endswith(app["slug"])  # swapped, not reloaded
    body = httpx.get(f"{server.base}/api/v1/apps/{app['id']}/scaling", headers=headers).json()
    assert body["max_instances"] == 7
    assert calls == [app["id"]]

    # A change made elsewhere (the CLI, the API) shows up through the poll, without a reload.
    patched = httpx.patch(
        f"{server.base}/api/v1/apps/{app['id']}/scaling",
        headers=headers,
        json={"capacity_share": 0.5},
    )
    assert patched.status_code == 200
    expect(panel.locator('[data-setting="admission_limit"]')).to_have_text("350", timeout=30_000)
    screenshot(page, tmp_path / "scaling-panel.png")
    assert console_errors == []
