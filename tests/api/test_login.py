"""Device login, logout and whoami, as the CLI speaks them (contract §2)."""

from __future__ import annotations

from .conftest import Api

GRANT = "urn:ietf:params:oauth:grant-type:device_code"


def start_login(api: Api) -> dict[str, str]:
    response = api.client.post(
        "/api/v1/login/device/authorization",
        data={"client_id": "fastapi-cli"},
        headers={"Authorization": "Bearer stale-token-the-cli-still-sends"},
    )
    assert response.status_code == 200, response.text
    return dict(response.json())


def poll(api: Api, device_code: str) -> tuple[int, dict[str, object]]:
    response = api.client.post(
        "/api/v1/login/device/token",
        data={"device_code": device_code, "client_id": "fastapi-cli", "grant_type": GRANT},
        headers={"Authorization": "Bearer stale"},
    )
    return response.status_code, response.json()


def test_device_flow_pending_then_approved(api: Api) -> None:
    auth = start_login(api)
    assert auth["verification_uri_complete"].endswith(f"/device?code={auth['user_code']}")
    assert auth["verification_uri_complete"].startswith("http://127.0.0.1:8000/")
    assert poll(api, auth["device_code"]) == (400, {"error": "authorization_pending"})

    approved = api.post("/login/device/approve", json={"user_code": auth["user_code"]})
    assert approved.status_code == 200

    status, body = poll(api, auth["device_code"])
    assert status == 200
    token = str(body["access_token"])
    assert isinstance(body["expires_in"], int)
    me = api.get("/users/me", token=token)
    assert me.json()["email"] == "ada@example.com"
    # A device code is good for one token only.
    assert poll(api, auth["device_code"])[0] == 400


def test_device_flow_denied(api: Api) -> None:
    auth = start_login(api)
    api.post("/login/device/approve", json={"user_code": auth["user_code"], "approve": False})
    assert poll(api, auth["device_code"]) == (400, {"error": "access_denied"})


def test_unknown_device_code_is_an_error_with_detail(api: Api) -> None:
    status, body = poll(api, "nope")
    assert status == 400
    assert body["error"] not in ("authorization_pending", "slow_down")
    assert "detail" in body


def test_logout_revokes_the_token(api: Api) -> None:
    auth = start_login(api)
    api.post("/login/device/approve", json={"user_code": auth["user_code"]})
    token = str(poll(api, auth["device_code"])[1]["access_token"])
    assert api.post("/logout", token=token).status_code == 200
    assert api.get("/users/me", token=token).status_code == 401
    # The admin's own token is untouched.
    assert api.get("/users/me").status_code == 200


def test_bad_token_is_401_missing_token_too(api: Api) -> None:
    assert api.get("/users/me", token="clt_wrong").status_code == 401
    assert api.client.get("/api/v1/users/me").status_code == 401
