import redis
import redis.asyncio as aioredis
from fastapi import FastAPI

app = FastAPI()
r = redis.Redis.from_url("redis://cache:6379/0", decode_responses=True)
ar = aioredis.from_url("redis://cache:6379/0", decode_responses=True)


@app.get("/session/{sid}")
async def session(sid: str):
    return {"user": r.get(f"session:{sid}")}


@app.post("/views/{page}")
async def view(page: str):
    count = r.incr(f"views:{page}")
    await ar.expire(f"views:{page}", 86400)
    return {"views": count}


@app.post("/bulk")
async def bulk(keys: list[str]):
    pipe = r.pipeline()
    for key in keys:
        pipe.set(key, "1", ex=60)
    pipe.execute()
    return {"n": len(keys)}


@app.get("/async-session/{sid}")
async def async_session(sid: str):
    return {"user": await ar.get(f"session:{sid}")}
