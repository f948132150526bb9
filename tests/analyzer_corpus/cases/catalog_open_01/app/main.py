import io
import json

from fastapi import FastAPI

app = FastAPI()


@app.get("/motd")
async def motd():
    return {"motd": open("/etc/motd").read()}


@app.post("/notes")
async def add_note(text: str):
    with io.open("/srv/notes.txt", "a", encoding="utf-8") as fh:
        fh.write(text + "\n")
    return {"ok": True}


@app.get("/manifest")
async def manifest():
    return json.load(open("/srv/app/manifest.json"))
