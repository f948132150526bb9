import requests
from fastapi import Depends, FastAPI, Header, HTTPException


class ApiKeyChecker:
    def __init__(self, auth_url: str) -> None:
        self.auth_url = auth_url

    async def __call__(self, x_api_key: str = Header()) -> str:
        r = requests.get(self.auth_url, params={"key": x_api_key}, timeout=3)
        if r.status_code != 200:
            raise HTTPException(status_code=403)
        return r.json()["owner"]


class QuotaChecker:
    def __call__(self, x_api_key: str = Header()) -> int:
        r = requests.get("https://quota.internal/left", params={"key": x_api_key}, timeout=3)
        return int(r.text)


check_key = ApiKeyChecker("https://auth.internal/verify")
app = FastAPI()


@app.get("/items")
async def items(owner: str = Depends(check_key), quota: int = Depends(QuotaChecker())):
    return {"owner": owner, "quota": quota, "items": []}
