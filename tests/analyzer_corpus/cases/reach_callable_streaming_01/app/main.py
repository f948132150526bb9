from fastapi import FastAPI
from fastapi.responses import StreamingResponse

from app import export

app = FastAPI()


@app.get("/export/{table}")
async def export_table(table: str):
    return StreamingResponse(export.rows_as_csv(table), media_type="text/csv")
