import requests

PSP = "https://psp.example.com/v2"


class PaymentGateway:
    def __init__(self, api_key: str) -> None:
        self.http = requests.Session()
        self.http.headers["Authorization"] = f"Bearer {api_key}"

    def authorize(self, customer: str, cents: int) -> str:
        resp = self.http.post(f"{PSP}/authorizations", json={"customer": customer, "amount": cents}, timeout=10)
        resp.raise_for_status()
        return resp.json()["id"]


gateway = PaymentGateway("sk_live_xxx")
