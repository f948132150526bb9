from pathlib import Path

from fastapi import FastAPI

app = FastAPI()
VERSION_FILE = Path("/srv/app/VERSION")


@app.get("/version")
async def version():
    return {"version": VERSION_FILE.read_text().strip()}  # sync-ok: 10-byte file in the page cache


@app.get("/changelog")
async def changelog():
    return {"changelog": Path("/srv/app/CHANGELOG.md").read_text()}
