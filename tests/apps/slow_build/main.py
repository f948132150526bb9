import slowpkg
from fastapi import FastAPI

app = FastAPI()


@app.get("/")
def root() -> dict[str, str]:
    return {"app": "slow_build", "value": slowpkg.VALUE}
