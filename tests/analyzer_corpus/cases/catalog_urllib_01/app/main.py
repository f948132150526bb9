import json
import urllib.request
from urllib.request import urlopen as fetch

from fastapi import FastAPI

app = FastAPI()


@app.post("/slack")
async def slack(text: str):
    req = urllib.request.Request(
        "https://hooks.slack.com/services/T000/B000/XXX",
        data=json.dumps({"text": text}).encode(),
        headers={"Content-Type": "application/json"},
    )
    with urllib.request.urlopen(req, timeout=5) as resp:
        return {"status": resp.status}


@app.get("/ip")
async def my_ip():
    return {"ip": fetch("https://api.ipify.org", timeout=5).read().decode()}
