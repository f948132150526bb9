import requests
from fastapi import FastAPI
from requests import post

app = FastAPI()
API = "https://api.github.com"


@app.get("/repos/{owner}")
async def repos(owner: str):
    return requests.get(f"{API}/users/{owner}/repos", timeout=10).json()


@app.patch("/issues/{num}")
async def close_issue(num: int):
    r = requests.request("PATCH", f"{API}/repos/acme/app/issues/{num}", json={"state": "closed"}, timeout=10)
    return {"status": r.status_code}


@app.post("/gists")
async def gist(content: str):
    r = post(f"{API}/gists", json={"files": {"a.txt": {"content": content}}}, timeout=10)
    return r.json()
