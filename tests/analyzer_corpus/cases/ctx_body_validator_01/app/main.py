from pathlib import Path

from fastapi import FastAPI
from pydantic import BaseModel, field_validator

RESERVED = Path("/etc/app/reserved_names.txt")


class SignUp(BaseModel):
    username: str
    password: str

    @field_validator("username")
    @classmethod
    def not_reserved(cls, v: str) -> str:
        if v.lower() in RESERVED.read_text().split():
            raise ValueError("reserved name")
        return v


app = FastAPI()


@app.post("/signup")
async def signup(body: SignUp):
    return {"username": body.username}
