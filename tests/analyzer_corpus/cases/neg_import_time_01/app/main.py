from fastapi import FastAPI

from app.config import BANNER, CONFIG, GIT_REV, REMOTE_FLAGS, Limits

app = FastAPI(title=CONFIG.get("title", "app"))


@app.get("/")
async def index():
    return {"banner": BANNER, "rev": GIT_REV, "flags": REMOTE_FLAGS, "limits": Limits.table}
