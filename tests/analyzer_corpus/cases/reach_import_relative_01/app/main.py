from fastapi import FastAPI

from .api.v1 import payments

app = FastAPI()
app.include_router(payments.router, prefix="/v1")
