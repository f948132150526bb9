from fastapi import FastAPI, UploadFile

import app.storage.files as files

app = FastAPI()


@app.post("/files")
async def upload(file: UploadFile):
    data = await file.read()
    return {"path": files.save(file.filename or "upload.bin", data)}
