import json
from pathlib import Path
from typing import Annotated

from fastapi import Depends, FastAPI

CONFIG = Path("/etc/app/config.json")


async def get_settings() -> dict:
    return json.loads(CONFIG.read_text())


async def get_feature_flags(settings: Annotated[dict, Depends(get_settings)]) -> set[str]:
    return set(settings.get("flags", []))


app = FastAPI()


@app.get("/flags")
async def flags(enabled: Annotated[set[str], Depends(get_feature_flags)]):
    return sorted(enabled)
