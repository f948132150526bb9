from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse

from app import ratelimit

app = FastAPI()


@app.middleware("http")
async def limit(request: Request, call_next):
    client = request.client.host if request.client else "unknown"
    if not ratelimit.hit(f"rl:{client}", 100):
        return JSONResponse({"detail": "slow down"}, status_code=429)
    return await call_next(request)
