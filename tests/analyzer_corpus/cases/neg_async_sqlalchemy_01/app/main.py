from fastapi import Depends, FastAPI
from sqlalchemy import select, text
from sqlalchemy.ext.asyncio import AsyncSession

from app.db import Tag, engine, get_session

app = FastAPI()


@app.get("/tags/{tag_id}")
async def tag(tag_id: int, session: AsyncSession = Depends(get_session)):
    obj = await session.get(Tag, tag_id)
    return {"id": obj.id, "name": obj.name} if obj else {}


@app.post("/tags")
async def create(name: str, session: AsyncSession = Depends(get_session)):
    session.add(Tag(name=name))
    await session.commit()
    rows = (await session.scalars(select(Tag).order_by(Tag.id))).all()
    return [t.name for t in rows]


@app.get("/health/db")
async def health():
    async with engine.connect() as conn:
        await conn.execute(text("SELECT 1"))
    return {"ok": True}
