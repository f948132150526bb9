import requests


def geocode(address: str) -> dict:
    return requests.get("https://geo.example.com/search", params={"q": address}, timeout=5).json()
