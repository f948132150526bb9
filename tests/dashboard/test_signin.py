"""Signing in and out of the dashboard with API tokens."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient

from cloudlet.api.app import create_app
from cloudlet.control.platform import Platform
from cloudlet.dashboard.session import SESSION_COOKIE, safe_next

from .conftest import ADMIN_TOKEN, Browser, hidden


def set_cookie_headers(response: object) -> list[str]:
    return response.headers.get_list("set-cookie")  # type: ignore[attr-defined, no-any-return]


def test_pages_need_a_session(browser: Browser) -> None:
    slug = browser.team_slug()
    for path in (f"/{slug}/apps", f"/{slug}/apps/shop", f"/{slug}/apps/shop/logs"):
        response = browser.client.get(path, follow_redirects=False)
        assert response.status_code == 303
        assert response.headers["location"] == "/login?next=" + path.replace("/", "%2F")
    home = browser.client.get("/", follow_redirects=False)
    assert (home.status_code, home.headers["location"]) == (303, "/login")


def test_login_form(browser: Browser) -> None:
    page = browser.client.get("/login")
    assert page.status_code == 200
    assert 'name="token"' in page.text and 'type="password"' in page.text
    assert "CLOUDLET_ADMIN_TOKEN" in page.text
    assert page.headers["x-frame-options"] == "DENY"
    assert "frame-ancestors 'none'" in page.headers["content-security-policy"]


def test_bad_token_is_refused(browser: Browser) -> None:
    response = browser.sign_in("clt_not-a-real-token")
    assert response.status_code == 401
    assert "not valid or has expired" in response.text
    assert SESSION_COOKIE not in browser.client.cookies
    assert "clt_not-a-real-token" not in response.text  # the token is not echoed back


def test_deploy_token_is_refused(browser: Browser) -> None:
    app = browser.create_app()
    created = browser.api("POST", f"/apps/{app['id']}/tokens", json={"name": "ci"})
    assert created.status_code == 201, created.text
    deploy_token = created.json()["value"]
    assert deploy_token.startswith("fcp_")
    response = browser.sign_in(deploy_token)
    assert response.status_code == 403
    assert "deploy token" in response.text
    assert SESSION_COOKIE not in browser.client.cookies


def test_good_token_starts_a_session_with_a_new_token(browser: Browser) -> None:
    response = browser.sign_in(ADMIN_TOKEN)
    assert response.status_code == 303 and response.headers["location"] == "/"
    cookie = next(c for c in set_cookie_headers(response) if c.startswith(SESSION_COOKIE + "="))
    assert "HttpOnly" in cookie and "SameSite=lax" in cookie and "Path=/" in cookie
    assert "Secure" not in cookie  # plain http on 127.0.0.1
    session_token = browser.client.cookies[SESSION_COOKIE]
    assert session_token != ADMIN_TOKEN and session_token.startswith("clt_")
    # The session token is a user token of the same user.
    me = browser.api("GET", "/users/me", token=session_token)
    assert me.json()["email"] == "ada@example.com"

    home = browser.client.get("/", follow_redirects=False)
    slug = browser.team_slug()
    assert home.headers["location"] == f"/{slug}/apps"
    # Signed in, /login goes straight on.
    again = browser.client.get("/login", params={"next": f"/{slug}/apps"}, follow_redirects=False)
    assert (again.status_code, again.headers["location"]) == (303, f"/{slug}/apps")


def test_next_is_followed_only_on_this_site(browser: Browser) -> None:
    slug = browser.team_slug()
    assert browser.sign_in(next_url=f"/{slug}/apps").headers["location"] == f"/{slug}/apps"
    for evil in ("https://evil.example/", "//evil.example/x", "/\\evil.example", "javascript:x"):
        browser.client.cookies.clear()
        assert browser.sign_in(next_url=evil).headers["location"] == "/"


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("/ada/apps?x=1", "/ada/apps?x=1"),
        ("/device?code=ABCD-EFGH", "/device?code=ABCD-EFGH"),
        (None, "/"),
        ("", "/"),
        ("ada/apps", "/"),
        ("//evil.example", "/"),
        ("/\\evil.example", "/"),
        ("https://evil.example/ada", "/"),
        ("/ok\r\nSet-Cookie: x=1", "/"),
        ("/login?next=/login", "/"),
    ],
)
def test_safe_next(value: str | None, expected: str) -> None:
    assert safe_next(value) == expected


def test_login_without_form_token_is_refused(browser: Browser) -> None:
    response = browser.client.post(
        "/login", data={"token": ADMIN_TOKEN, "next": "/", "csrf": "forged"}, follow_redirects=False
    )
    assert response.status_code == 400
    assert SESSION_COOKIE not in browser.client.cookies


def test_logout_revokes_the_session_token(browser: Browser) -> None:
    browser.sign_in()
    session_token = browser.client.cookies[SESSION_COOKIE]
    page = browser.client.get(f"/{browser.team_slug()}/apps")
    csrf = hidden(page.text, "csrf")

    refused = browser.client.post("/logout", data={"csrf": "nope"}, follow_redirects=False)
    assert refused.status_code == 403
    assert browser.api("GET", "/users/me", token=session_token).status_code == 200

    out = browser.client.post("/logout", data={"csrf": csrf}, follow_redirects=False)
    assert (out.status_code, out.headers["location"]) == (303, "/login")
    assert SESSION_COOKIE not in browser.client.cookies
    assert browser.api("GET", "/users/me", token=session_token).status_code == 401
    # The admin token used to sign in is untouched.
    assert browser.api("GET", "/users/me").status_code == 200

    # A stale cookie (revoked token) sends the browser to sign in and is cleared.
    browser.client.cookies.set(SESSION_COOKIE, session_token)
    stale = browser.client.get(f"/{browser.team_slug()}/apps", follow_redirects=False)
    assert stale.status_code == 303 and stale.headers["location"].startswith("/login?next=")
    assert any(c.startswith(f'{SESSION_COOKIE}=""') for c in set_cookie_headers(stale))


def test_session_cookie_is_secure_over_https(platform: Platform) -> None:
    with TestClient(create_app(platform), base_url="https://127.0.0.1") as client:
        browser = Browser(client, platform)
        response = browser.sign_in()
        assert response.status_code == 303
        cookie = next(c for c in set_cookie_headers(response) if c.startswith(SESSION_COOKIE))
        assert "Secure" in cookie and "HttpOnly" in cookie
