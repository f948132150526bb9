import asyncio

from fastapi import FastAPI

from app.cache import cached

app = FastAPI()


@app.get("/leaderboard")
@cached(ttl=30)
async def leaderboard():
    await asyncio.sleep(0.1)
    return [{"user": "ada", "score": 10}]
