import hashlib
import hmac
import os

from fastapi import FastAPI, HTTPException

app = FastAPI()
STORED = {"ada": (b"0123456789abcdef", bytes.fromhex("00" * 32))}


@app.post("/login")
async def login(user: str, password: str):
    salt, expected = STORED.get(user, (os.urandom(16), b""))
    digest = hashlib.pbkdf2_hmac("sha256", password.encode(), salt, 600_000)
    if not hmac.compare_digest(digest, expected):
        raise HTTPException(status_code=401)
    return {"token": hashlib.sha256(os.urandom(32)).hexdigest()}


@app.post("/derive")
async def derive(secret: str):
    key = hashlib.scrypt(secret.encode(), salt=b"pepper", n=2**14, r=8, p=1)
    return {"key": key.hex()}
