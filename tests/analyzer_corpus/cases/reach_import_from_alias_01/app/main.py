from fastapi import FastAPI

from app.crypto import derive_key as kdf
from app.crypto import fingerprint

app = FastAPI()


@app.post("/vault/unlock")
async def unlock(password: str):
    _, key = kdf(password, b"static-salt-1234")
    return {"key_id": fingerprint(key)}
