from fastapi import FastAPI

from app.models import Author, session

app = FastAPI()


@app.get("/authors/{author_id}/books")
async def books(author_id: int):
    author = session.get(Author, author_id)
    return [b.title for b in author.books]
