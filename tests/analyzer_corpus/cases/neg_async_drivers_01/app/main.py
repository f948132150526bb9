import aioboto3
import asyncpg
import redis.asyncio as redis
from fastapi import FastAPI
from motor.motor_asyncio import AsyncIOMotorClient

app = FastAPI()
cache = redis.Redis(host="cache")
mongo = AsyncIOMotorClient("mongodb://db:27017")
boto = aioboto3.Session()


@app.get("/orders/{order_id}")
async def order(order_id: int):
    conn = await asyncpg.connect("postgresql://app@db/app")
    try:
        row = await conn.fetchrow("SELECT id, total FROM orders WHERE id = $1", order_id)
        await conn.execute("UPDATE orders SET seen = true WHERE id = $1", order_id)
    finally:
        await conn.close()
    return dict(row) if row else {}


@app.get("/cache/{key}")
async def cached(key: str):
    value = await cache.get(key)
    await cache.set(key, value or "miss", ex=60)
    return {"value": value}


@app.get("/profiles/{user_id}")
async def profile(user_id: str):
    return await mongo.app.profiles.find_one({"user_id": user_id}, {"_id": 0})


@app.put("/blobs/{key}")
async def put_blob(key: str, body: str):
    async with boto.client("s3") as s3:
        await s3.put_object(Bucket="blobs", Key=key, Body=body.encode())
    return {"ok": True}
