from fastapi import FastAPI
from pymongo import MongoClient

app = FastAPI()
mongo = MongoClient("mongodb://db:27017")
db = mongo["shop"]


@app.get("/products/{sku}")
async def product(sku: str):
    return db.products.find_one({"sku": sku}, {"_id": 0})


@app.post("/products")
async def create(sku: str, name: str):
    res = db["products"].insert_one({"sku": sku, "name": name})
    return {"id": str(res.inserted_id)}


@app.get("/products")
async def products(tag: str):
    return list(db.products.find({"tags": tag}, {"_id": 0}).limit(100))


@app.post("/products/discontinue")
async def discontinue(tag: str):
    res = db.products.update_many({"tags": tag}, {"$set": {"active": False}})
    return {"updated": res.modified_count}
