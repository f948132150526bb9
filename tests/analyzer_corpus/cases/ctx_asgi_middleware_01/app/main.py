from fastapi import FastAPI

from app.middleware import BlocklistMiddleware

app = FastAPI()
app.add_middleware(BlocklistMiddleware)
