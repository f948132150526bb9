from fastapi import FastAPI, HTTPException

from app.db import Users

app = FastAPI()
users = Users()


@app.get("/users/by-email")
async def by_email(email: str):
    row = users.by_email(email)
    if row is None:
        raise HTTPException(status_code=404)
    return {"id": row[0], "email": row[1]}
