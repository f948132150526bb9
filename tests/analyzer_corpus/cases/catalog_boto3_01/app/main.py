import boto3
from fastapi import FastAPI

app = FastAPI()
s3 = boto3.client("s3", region_name="eu-west-1")
table = boto3.resource("dynamodb").Table("profiles")


@app.get("/objects/{key}")
async def get_object(key: str):
    obj = s3.get_object(Bucket="assets", Key=key)
    return {"size": len(obj["Body"].read())}


@app.put("/objects/{key}")
async def put_object(key: str, body: str):
    s3.put_object(Bucket="assets", Key=key, Body=body.encode())
    return {"url": s3.generate_presigned_url("get_object", Params={"Bucket": "assets", "Key": key})}


@app.get("/profiles/{user_id}")
async def profile(user_id: str):
    return table.get_item(Key={"user_id": user_id}).get("Item", {})
