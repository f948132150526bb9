import os
import shutil

from fastapi import FastAPI

app = FastAPI()
ROOT = "/srv/uploads"


@app.get("/files")
async def list_files():
    out = []
    for name in os.listdir(ROOT):
        full = os.path.join(ROOT, name)
        out.append({"name": os.path.basename(full), "size": os.path.getsize(full), "mtime": os.stat(full).st_mtime})
    return out


@app.get("/dirs")
async def list_dirs():
    with os.scandir(ROOT) as it:
        return [e.name for e in it if e.is_dir()]


@app.post("/files/{name}/backup")
async def backup(name: str):
    shutil.copyfile(os.path.join(ROOT, name), os.path.join("/srv/backup", name))
    return {"ok": True}


@app.delete("/cache")
async def clear_cache():
    shutil.rmtree("/srv/cache", ignore_errors=True)
    return {"ok": True}
