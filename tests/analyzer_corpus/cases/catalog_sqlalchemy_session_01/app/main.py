from fastapi import FastAPI, HTTPException
from sqlalchemy import select

from app.db import Article, SessionLocal

app = FastAPI()


@app.get("/articles/{article_id}")
async def get_article(article_id: int):
    with SessionLocal() as session:
        article = session.get(Article, article_id)
        if article is None:
            raise HTTPException(status_code=404)
        return {"id": article.id, "title": article.title}


@app.post("/articles")
async def create_article(title: str):
    with SessionLocal() as session:
        article = Article(title=title)
        session.add(article)
        session.commit()
        return {"id": article.id}


@app.get("/articles")
async def list_articles():
    with SessionLocal() as session:
        rows = session.execute(select(Article).order_by(Article.id.desc()).limit(20)).scalars().all()
        return [{"id": a.id, "title": a.title} for a in rows]
