import requests
from fastapi import APIRouter

from app.util.decorators import require_feature

router = APIRouter()


@router.get("/weather/{city}")
@require_feature("weather")
def weather(city: str):
    r = requests.get("https://api.weather.example/v1/now", params={"q": city}, timeout=5)
    return r.json()


@router.get("/forecast/{city}")
def forecast(city: str):
    r = requests.get("https://api.weather.example/v1/forecast", params={"q": city}, timeout=5)
    return r.json()
