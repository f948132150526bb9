from fastapi import Depends, FastAPI, HTTPException, Request

from app.models import User

app = FastAPI()


async def current_user(request: Request) -> User:
    return User(id=int(request.headers.get("x-user-id", "0")), name="anon")


@app.delete("/posts/{post_id}")
async def delete_post(post_id: int, user: User = Depends(current_user)):
    if "posts:delete" not in user.permissions:
        raise HTTPException(status_code=403)
    return {"deleted": post_id}
