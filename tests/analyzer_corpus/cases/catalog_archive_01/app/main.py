import tarfile
import zipfile

from fastapi import FastAPI, UploadFile

app = FastAPI()


@app.post("/sites/{name}")
async def deploy_site(name: str, bundle: UploadFile):
    with zipfile.ZipFile(bundle.file) as zf:
        zf.extractall(f"/srv/sites/{name}")
    return {"deployed": name}


@app.post("/sites/{name}/snapshot")
async def snapshot(name: str):
    with tarfile.open(f"/srv/snapshots/{name}.tar.gz", "w:gz") as tar:
        tar.add(f"/srv/sites/{name}", arcname=name)
    return {"ok": True}
