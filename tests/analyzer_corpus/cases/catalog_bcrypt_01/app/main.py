import bcrypt
from fastapi import FastAPI, HTTPException

app = FastAPI()
USERS: dict[str, bytes] = {}


@app.post("/register")
async def register(user: str, password: str):
    salt = bcrypt.gensalt(rounds=12)
    USERS[user] = bcrypt.hashpw(password.encode(), salt)
    return {"ok": True}


@app.post("/login")
async def login(user: str, password: str):
    hashed = USERS.get(user)
    if hashed is None or not bcrypt.checkpw(password.encode(), hashed):
        raise HTTPException(status_code=401)
    return {"ok": True}
