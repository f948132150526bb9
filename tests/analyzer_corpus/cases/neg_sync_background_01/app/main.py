from fastapi import BackgroundTasks, FastAPI
from starlette.background import BackgroundTask
from starlette.responses import JSONResponse

from app.tasks import archiver, send_receipt

app = FastAPI()


@app.post("/orders/{order_id}")
async def order(order_id: int, email: str, tasks: BackgroundTasks):
    tasks.add_task(send_receipt, email, order_id)
    tasks.add_task(archiver.archive, order_id)
    return {"ok": True}


@app.post("/orders/{order_id}/resend")
async def resend(order_id: int, email: str):
    return JSONResponse({"ok": True}, background=BackgroundTask(send_receipt, email, order_id))
