import datetime
import hashlib
import json
import logging
import secrets
import uuid

from fastapi import FastAPI

app = FastAPI()
log = logging.getLogger(__name__)


@app.post("/tokens")
async def new_token(user: str):
    token = secrets.token_urlsafe(32)
    digest = hashlib.sha256(token.encode()).hexdigest()
    log.info("issued token for %s", user)
    return {
        "id": str(uuid.uuid4()),
        "token": token,
        "digest": digest,
        "issued": datetime.datetime.now(datetime.UTC).isoformat(),
        "meta": json.loads(json.dumps({"user": user})),
    }
