from fastapi import FastAPI
from sqlalchemy import create_engine, inspect, text

app = FastAPI()
engine = create_engine("mysql+pymysql://app@db/app")


@app.get("/health/db")
async def db_health():
    with engine.connect() as conn:
        conn.execute(text("SELECT 1"))
    return {"db": "ok"}


@app.get("/admin/tables")
async def tables():
    return {"tables": inspect(engine).get_table_names()}
