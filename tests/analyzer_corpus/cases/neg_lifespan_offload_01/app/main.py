import asyncio
import pickle
from contextlib import asynccontextmanager

from fastapi import FastAPI
from fastapi.concurrency import run_in_threadpool


def load_model(path: str):
    with open(path, "rb") as fh:
        return pickle.load(fh)


def warm_cache() -> None:
    import requests

    requests.get("https://cdn.internal/warm", timeout=30)


@asynccontextmanager
async def lifespan(app: FastAPI):
    app.state.model = await asyncio.to_thread(load_model, "/models/latest.pkl")
    await run_in_threadpool(warm_cache)
    yield


app = FastAPI(lifespan=lifespan)


@app.get("/predict")
async def predict(x: float):
    return {"y": app.state.model.predict([[x]])[0]}
