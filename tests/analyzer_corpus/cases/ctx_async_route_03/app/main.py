import requests
from fastapi import FastAPI, Request

app = FastAPI()
WEBHOOK = "https://hooks.example.com/notify"


async def forward(request: Request):
    payload = await request.json()
    resp = requests.post(WEBHOOK, json=payload, timeout=5)
    return {"status": resp.status_code}


def forward_sync(payload: dict):
    resp = requests.post(WEBHOOK, json=payload, timeout=5)
    return {"status": resp.status_code}


app.add_api_route("/forward", forward, methods=["POST"])
app.add_api_route("/forward-sync", forward_sync, methods=["POST"])
