import httpx

BASE = "https://api.weather.example/v1"


def fetch_weather(city: str) -> dict:
    with httpx.Client(base_url=BASE, timeout=5) as client:
        resp = client.get("/now", params={"q": city})
    return resp.json()
