from fastapi import Depends, FastAPI

from .deps import current_user

app = FastAPI()


@app.get("/me")
def me(user: dict = Depends(current_user)):
    return user
