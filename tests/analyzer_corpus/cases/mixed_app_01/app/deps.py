import jwt
from fastapi import Header, HTTPException

PUBLIC_KEY_PATH = "/run/secrets/jwt.pub"


def _public_key() -> str:
    with open(PUBLIC_KEY_PATH) as fh:
        return fh.read()


async def current_customer(authorization: str = Header()) -> str:
    try:
        claims = jwt.decode(authorization.removeprefix("Bearer "), _public_key(), algorithms=["RS256"])
    except jwt.PyJWTError as exc:
        raise HTTPException(status_code=401) from exc
    return claims["sub"]
