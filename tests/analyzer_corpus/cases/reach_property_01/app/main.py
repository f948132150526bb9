import hashlib
import hmac

from fastapi import FastAPI

from app.settings import settings

app = FastAPI()


@app.get("/sign")
async def sign(payload: str):
    key = settings.signing_key
    return {"sig": hmac.new(key, payload.encode(), hashlib.sha256).hexdigest()}
