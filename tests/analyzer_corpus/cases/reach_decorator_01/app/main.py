from fastapi import FastAPI

from app.audit import audited

app = FastAPI()


@app.delete("/projects/{project_id}")
@audited
async def delete_project(project_id: int):
    return {"deleted": project_id}
