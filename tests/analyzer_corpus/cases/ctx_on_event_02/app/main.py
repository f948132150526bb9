import json

from fastapi import FastAPI

from .stats import STATS

app = FastAPI()


def save_stats() -> None:
    with open("/var/lib/app/stats.json", "w") as fh:
        json.dump(STATS, fh)


app.router.add_event_handler("shutdown", save_stats)


@app.on_event("startup")
async def announce() -> None:
    with open("/var/run/app.ready", "w") as fh:
        fh.write("ready")


@app.get("/")
async def index():
    STATS["requests"] += 1
    return STATS
