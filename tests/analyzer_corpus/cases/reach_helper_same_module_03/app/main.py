import json
import urllib.request

from fastapi import FastAPI

app = FastAPI()
GEO_API = "https://geo.example.com/v1/ip/"


def _get_json(url: str) -> dict:
    with urllib.request.urlopen(url, timeout=3) as resp:
        return json.load(resp)


def _lookup(ip: str) -> dict:
    return _get_json(GEO_API + ip)


def country_of(ip: str) -> str:
    return _lookup(ip).get("country", "??")


@app.get("/where/{ip}")
async def where(ip: str):
    return {"ip": ip, "country": country_of(ip)}


@app.get("/where-sync/{ip}")
def where_sync(ip: str):
    return {"ip": ip, "country": country_of(ip)}
