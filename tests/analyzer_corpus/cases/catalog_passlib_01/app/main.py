from fastapi import Depends, FastAPI, Form, HTTPException

from app.security import hash_password, verify_password

app = FastAPI()
USERS = {"ada": "$2b$12$abcdefghijklmnopqrstuuJ0cW4bEJvF0r9xq1g0Y4K9h0Q1Qe2a"}


async def authenticate(username: str = Form(), password: str = Form()) -> str:
    if not verify_password(password, USERS.get(username, "")):
        raise HTTPException(status_code=401)
    return username


@app.post("/token")
async def token(user: str = Depends(authenticate)):
    return {"access_token": user, "token_type": "bearer"}


@app.post("/password")
async def change_password(new_password: str, user: str = Depends(authenticate)):
    USERS[user] = hash_password(new_password)
    return {"ok": True}
