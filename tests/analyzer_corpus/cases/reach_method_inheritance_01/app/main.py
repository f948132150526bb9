from fastapi import FastAPI

from app.repos import InvoiceRepo

app = FastAPI()
invoices = InvoiceRepo()


@app.get("/invoices/open")
async def open_invoices(customer: str):
    return [{"id": i, "total": t} for i, t in invoices.list_open(customer)]
