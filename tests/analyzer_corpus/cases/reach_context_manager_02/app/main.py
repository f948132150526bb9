from fastapi import FastAPI

from app.db import db_session

app = FastAPI()


@app.post("/tags")
async def add_tag(name: str):
    with db_session() as conn:
        cur = conn.cursor()
        cur.execute("INSERT INTO tags(name) VALUES (%s) RETURNING id", (name,))
        (tag_id,) = cur.fetchone()
    return {"id": tag_id, "name": name}
