import sqlite3

import pandas as pd
from fastapi import FastAPI, UploadFile

app = FastAPI()


@app.post("/import")
async def import_csv(file: UploadFile):
    df = pd.read_csv(file.file)
    return {"rows": len(df), "columns": list(df.columns)}


@app.post("/export")
async def export(name: str):
    df = pd.DataFrame({"a": [1, 2, 3]})
    df.to_excel(f"/srv/exports/{name}.xlsx", index=False)
    return {"ok": True}


@app.get("/stats")
async def stats():
    conn = sqlite3.connect("/var/lib/app/app.db")
    df = pd.read_sql("SELECT * FROM orders", conn)
    return df.describe().to_dict()
