import functools

import anyio.to_thread
import bcrypt
import pandas as pd
from anyio import to_thread
from fastapi import FastAPI, UploadFile

app = FastAPI()


@app.post("/hash")
async def hash_password(password: str):
    salt = bcrypt.gensalt()
    hashed = await anyio.to_thread.run_sync(bcrypt.hashpw, password.encode(), salt)
    return {"hash": hashed.decode()}


@app.post("/import")
async def import_csv(file: UploadFile):
    df = await to_thread.run_sync(functools.partial(pd.read_csv, file.file, sep=";"))
    return {"rows": len(df)}
