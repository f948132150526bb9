import os

from fastapi import FastAPI

application = FastAPI(title="shop")


@application.get("/")
def index() -> dict[str, object]:
    print("index served", flush=True)
    return {"app": "src_requirements", "cwd_has_requirements": os.path.exists("requirements.txt")}
