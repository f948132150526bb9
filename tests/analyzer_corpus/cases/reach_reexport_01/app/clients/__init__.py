from .weather import fetch_weather

__all__ = ["fetch_weather"]
