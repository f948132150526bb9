import subprocess
from contextlib import asynccontextmanager

import pandas as pd
from fastapi import FastAPI


@asynccontextmanager
async def lifespan(app: FastAPI):
    subprocess.run(["alembic", "upgrade", "head"], check=True)
    app.state.prices = pd.read_csv("/data/prices.csv")
    yield


app = FastAPI(lifespan=lifespan)


@app.get("/price/{sku}")
async def price(sku: str):
    return {"sku": sku, "price": float(app.state.prices.loc[sku, "price"])}
