from fastapi import FastAPI

from app.clients import fetch_weather

app = FastAPI()


@app.get("/weather/{city}")
async def weather(city: str):
    return fetch_weather(city)
