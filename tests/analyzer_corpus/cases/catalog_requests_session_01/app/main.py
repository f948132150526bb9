import requests
from fastapi import FastAPI
from requests.adapters import HTTPAdapter

app = FastAPI()
http = requests.Session()
http.mount("https://", HTTPAdapter(max_retries=3))


@app.get("/status/{service}")
async def status(service: str):
    resp = http.get(f"https://status.internal/{service}", timeout=2)
    return {"service": service, "up": resp.ok}


@app.post("/sync")
async def sync_contacts():
    with requests.Session() as s:
        s.auth = ("api", "key")
        contacts = s.get("https://crm.internal/contacts", timeout=10).json()
        s.put("https://mail.internal/lists/all", json=contacts, timeout=10)
    return {"synced": len(contacts)}
