"""The page `fastapi login` opens: approve or deny a device login (contract §2.2, §13)."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from sqlalchemy import update

from cloudlet.store.models import DeviceAuthorization

from .conftest import Browser, hidden, now

GRANT = "urn:ietf:params:oauth:grant-type:device_code"


def start_login(browser: Browser) -> dict[str, str]:
    response = browser.client.post(
        "/api/v1/login/device/authorization", data={"client_id": "fastapi-cli"}
    )
    assert response.status_code == 200, response.text
    return dict(response.json())


def poll(browser: Browser, device_code: str) -> tuple[int, dict[str, Any]]:
    response = browser.client.post(
        "/api/v1/login/device/token",
        data={"device_code": device_code, "client_id": "fastapi-cli", "grant_type": GRANT},
    )
    return response.status_code, response.json()


def device_path(auth: dict[str, str]) -> str:
    url = auth["verification_uri_complete"]
    assert url.startswith("http://127.0.0.1:8000/device?code=")
    return url.removeprefix("http://127.0.0.1:8000")


def test_signed_out_visitor_signs_in_first_and_comes_back(browser: Browser) -> None:
    auth = start_login(browser)
    path = device_path(auth)
    response = browser.client.get(path, follow_redirects=False)
    assert response.status_code == 303
    login = response.headers["location"]
    assert login == "/login?next=%2Fdevice%3Fcode%3D" + auth["user_code"]

    form = browser.client.get(login)
    assert hidden(form.text, "next") == path
    signed_in = browser.sign_in(next_url=path)
    assert signed_in.headers["location"] == path


def test_approve(browser: Browser) -> None:
    auth = start_login(browser)
    browser.sign_in()
    page = browser.client.get(device_path(auth))
    assert page.status_code == 200
    assert auth["user_code"] in page.text and "fastapi-cli" in page.text
    assert 'value="approve"' in page.text and 'value="deny"' in page.text
    assert poll(browser, auth["device_code"]) == (400, {"error": "authorization_pending"})

    result = browser.client.post(
        "/device",
        data={"code": auth["user_code"], "decision": "approve", "csrf": hidden(page.text, "csrf")},
    )
    assert result.status_code == 200
    assert "Approved" in result.text and "You can go back to your terminal." in result.text

    status, body = poll(browser, auth["device_code"])
    assert status == 200
    me = browser.api("GET", "/users/me", token=body["access_token"])
    assert me.json()["email"] == "ada@example.com"

    # The code is used up: the page says so instead of offering the buttons again.
    again = browser.client.get(device_path(auth))
    assert again.status_code == 409 and "Already answered" in again.text
    assert 'value="approve"' not in again.text


def test_deny(browser: Browser) -> None:
    auth = start_login(browser)
    browser.sign_in()
    page = browser.client.get(device_path(auth))
    result = browser.client.post(
        "/device",
        data={"code": auth["user_code"], "decision": "deny", "csrf": hidden(page.text, "csrf")},
    )
    assert result.status_code == 200
    assert "Denied" in result.text and "You can go back to your terminal." in result.text
    assert poll(browser, auth["device_code"]) == (400, {"error": "access_denied"})


def test_missing_or_foreign_csrf_is_refused(browser: Browser) -> None:
    auth = start_login(browser)
    # Another user's session: their CSRF token must not work in ours.
    browser.sign_in(browser.new_user("eve@example.com"))
    eve_csrf = hidden(browser.client.get("/device").text, "csrf")
    browser.client.cookies.clear()

    browser.sign_in()
    for data in (
        {"code": auth["user_code"], "decision": "approve"},
        {"code": auth["user_code"], "decision": "approve", "csrf": ""},
        {"code": auth["user_code"], "decision": "approve", "csrf": eve_csrf},
    ):
        refused = browser.client.post("/device", data=data)
        assert refused.status_code == 403
        assert "Approved" not in refused.text
    assert poll(browser, auth["device_code"]) == (400, {"error": "authorization_pending"})


def test_post_without_session_is_not_a_decision(browser: Browser) -> None:
    auth = start_login(browser)
    response = browser.client.post(
        "/device",
        data={"code": auth["user_code"], "decision": "approve", "csrf": "x"},
        follow_redirects=False,
    )
    assert response.status_code == 303
    assert response.headers["location"] == "/login?next=%2Fdevice%3Fcode%3D" + auth["user_code"]
    assert poll(browser, auth["device_code"]) == (400, {"error": "authorization_pending"})


def test_code_entry_and_normalization(browser: Browser) -> None:
    auth = start_login(browser)
    browser.sign_in()
    entry = browser.client.get("/device")
    assert entry.status_code == 200 and 'name="code"' in entry.text
    typed = auth["user_code"].replace("-", "").lower()
    page = browser.client.get("/device", params={"code": typed})
    assert page.status_code == 200 and auth["user_code"] in page.text
    result = browser.client.post(
        "/device",
        data={"code": typed, "decision": "approve", "csrf": hidden(page.text, "csrf")},
    )
    assert "You can go back to your terminal." in result.text
    assert poll(browser, auth["device_code"])[0] == 200


def test_unknown_and_expired_codes(browser: Browser) -> None:
    browser.sign_in()
    unknown = browser.client.get("/device", params={"code": "ZZZZ-ZZZZ"})
    assert unknown.status_code == 404 and "Unknown or expired code" in unknown.text

    auth = start_login(browser)

    async def expire() -> None:
        async with browser.platform.sessions() as session:
            await session.execute(
                update(DeviceAuthorization)
                .where(DeviceAuthorization.user_code == auth["user_code"])
                .values(expires_at=now() - timedelta(seconds=1))
            )
            await session.commit()

    page = browser.client.get(device_path(auth))
    csrf = hidden(page.text, "csrf")
    browser.run(expire)
    expired = browser.client.get(device_path(auth))
    assert expired.status_code == 404 and "Unknown or expired code" in expired.text
    # Approving a code that expired while the page was open says so too.
    late = browser.client.post(
        "/device", data={"code": auth["user_code"], "decision": "approve", "csrf": csrf}
    )
    assert late.status_code == 404 and "Unknown or expired code" in late.text
    assert poll(browser, auth["device_code"])[1]["error"] == "expired_token"


def test_user_data_is_escaped(browser: Browser) -> None:
    response = browser.client.post(
        "/api/v1/login/device/authorization", data={"client_id": "<script>alert(1)</script>"}
    )
    code = response.json()["user_code"]
    browser.sign_in()
    page = browser.client.get("/device", params={"code": code})
    assert "<script>alert(1)</script>" not in page.text
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page.text
    shown = browser.client.get("/device", params={"code": "<b>x</b>"})
    assert "<b>x</b>" not in shown.text
