import httpx
from fastapi import FastAPI

app = FastAPI()
client = httpx.Client(base_url="https://inventory.internal", timeout=5)


@app.get("/stock/{sku}")
async def stock(sku: str):
    return client.get(f"/stock/{sku}").json()


@app.get("/price/{sku}")
async def price(sku: str):
    return httpx.get(f"https://pricing.internal/{sku}", timeout=5).json()


@app.post("/reserve/{sku}")
async def reserve(sku: str):
    r = httpx.Client(timeout=5).post("https://inventory.internal/reserve", json={"sku": sku})
    async with httpx.AsyncClient(timeout=5) as ac:
        await ac.post("https://audit.internal/events", json={"reserved": sku})
    return {"status": r.status_code}
