import anyio
from fastapi import FastAPI, UploadFile
from starlette.background import BackgroundTask
from starlette.responses import JSONResponse

from app.tasks import archive_upload

app = FastAPI()


@app.post("/upload")
async def upload(file: UploadFile):
    dest = f"/srv/uploads/{file.filename}"
    async with await anyio.open_file(dest, "wb") as out:
        await out.write(await file.read())
    task = BackgroundTask(archive_upload, dest, file.filename or "upload")
    return JSONResponse({"stored": dest}, background=task)
