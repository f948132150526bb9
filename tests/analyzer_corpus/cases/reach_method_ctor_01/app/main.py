from fastapi import FastAPI

from app.service import ProfileService

app = FastAPI()
service = ProfileService()


@app.get("/profiles/{user_id}")
async def profile(user_id: str):
    return service.profile(user_id)
