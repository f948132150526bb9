from pathlib import Path

from fastapi import FastAPI, UploadFile

app = FastAPI()
DATA = Path("/srv/data")


@app.get("/docs/{name}")
async def read_doc(name: str):
    path = DATA / "docs" / f"{name}.md"
    return {"name": path.stem, "body": path.read_text(encoding="utf-8")}


@app.put("/blobs/{name}")
async def put_blob(name: str, file: UploadFile):
    target: Path = DATA / "blobs" / name
    target.write_bytes(await file.read())
    return {"size": target.stat().st_size}


@app.get("/blobs/{name}/head")
async def head(name: str):
    return {"head": Path(DATA, "blobs", name).read_bytes()[:16].hex()}
