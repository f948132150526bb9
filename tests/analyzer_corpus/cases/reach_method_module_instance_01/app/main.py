from fastapi import FastAPI, UploadFile

from app.storage import storage

app = FastAPI()


@app.put("/avatars/{user_id}")
async def put_avatar(user_id: str, file: UploadFile):
    storage.put(f"{user_id}.png", await file.read())
    return {"url": storage.url(f"{user_id}.png")}
