from fastapi import FastAPI
from fastapi.responses import FileResponse
from fastapi.staticfiles import StaticFiles

app = FastAPI()
app.mount("/static", StaticFiles(directory="/srv/static", check_dir=False), name="static")


@app.get("/download/{name}")
async def download(name: str):
    return FileResponse(f"/srv/files/{name}", filename=name)


@app.get("/favicon.ico")
async def favicon():
    return FileResponse("/srv/static/favicon.ico", media_type="image/x-icon")
