import asyncio

from fastapi import FastAPI

from app.jobs import cleanup_tmp, vacuum

app = FastAPI()


@app.post("/admin/cleanup")
async def cleanup():
    async with asyncio.TaskGroup() as tg:
        tg.create_task(cleanup_tmp("/srv/tmp"))
        tg.create_task(asyncio.sleep(0))
    asyncio.ensure_future(vacuum())
    return {"ok": True}
