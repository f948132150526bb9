from fastapi import FastAPI

from app.flags import load_flags

app = FastAPI()


@app.get("/flags")
async def flags():
    return load_flags()  # sync-ok: tiny local file


@app.get("/flags/{name}")
async def flag(name: str):
    return {"enabled": load_flags().get(name, False)}
