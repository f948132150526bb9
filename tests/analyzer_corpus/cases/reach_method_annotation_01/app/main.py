from fastapi import FastAPI
from sqlalchemy import create_engine
from sqlalchemy.orm import Session

from app.repo import OrderRepo

engine = create_engine("postgresql+psycopg2://app@db/app")
REPO = OrderRepo(Session(engine))
app = FastAPI()


async def summarize(repo: OrderRepo, customer_id: int) -> dict:
    return {"customer": customer_id, "total": repo.totals(customer_id)}


@app.get("/customers/{customer_id}/summary")
async def summary(customer_id: int):
    return await summarize(REPO, customer_id)
