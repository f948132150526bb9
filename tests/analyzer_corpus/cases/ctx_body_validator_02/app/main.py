from fastapi import FastAPI

from .schemas import NewUser

app = FastAPI()


@app.post("/users")
def create_user(user: NewUser):
    return {"email": user.email}
