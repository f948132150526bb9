import requests

_session = requests.Session()
_session.headers["Authorization"] = "Bearer sk_test"
API = "https://billing.example.com/v1"


def charge(customer_id: str, cents: int) -> str:
    resp = _session.post(f"{API}/charges", json={"customer": customer_id, "amount": cents}, timeout=10)
    resp.raise_for_status()
    return resp.json()["id"]
