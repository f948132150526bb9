from fastapi import FastAPI

from app.config import load_defaults, load_limits

app = FastAPI()


@app.get("/defaults")
async def defaults():
    return load_defaults()


@app.get("/limits")
async def limits():
    return load_limits()
