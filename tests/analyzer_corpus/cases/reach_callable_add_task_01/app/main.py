from fastapi import BackgroundTasks, FastAPI

from app import reports

app = FastAPI()


@app.post("/reports/{user_id}")
async def request_report(user_id: int, background_tasks: BackgroundTasks):
    background_tasks.add_task(reports.generate, user_id)
    return {"status": "queued"}


@app.post("/reports-sync/{user_id}")
async def request_report_sync(user_id: int, background_tasks: BackgroundTasks):
    background_tasks.add_task(reports.generate_sync, user_id)
    return {"status": "queued"}
