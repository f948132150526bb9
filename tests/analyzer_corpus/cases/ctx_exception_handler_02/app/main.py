from fastapi import FastAPI
from fastapi.exceptions import RequestValidationError

from app.errors import on_validation_error

app = FastAPI()
app.add_exception_handler(RequestValidationError, on_validation_error)


@app.get("/items/{item_id}")
async def item(item_id: int):
    return {"id": item_id}
