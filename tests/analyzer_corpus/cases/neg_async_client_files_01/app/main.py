import aiofiles
import aiofiles.os
import anyio
from fastapi import FastAPI

app = FastAPI()


@app.get("/notes/{name}")
async def read_note(name: str):
    async with aiofiles.open(f"/srv/notes/{name}.txt") as fh:
        return {"body": await fh.read()}


@app.put("/notes/{name}")
async def write_note(name: str, body: str):
    async with await anyio.open_file(f"/srv/notes/{name}.txt", "w") as fh:
        await fh.write(body)
    return {"ok": True}


@app.get("/notes")
async def list_notes():
    root = anyio.Path("/srv/notes")
    names = [p.name async for p in root.iterdir()]
    readme = await (root / "README").read_text()
    await aiofiles.os.stat("/srv/notes")
    return {"names": names, "readme": readme}
