from fastapi import APIRouter

router = APIRouter(prefix="/reports")

REPORT_DIR = "/var/lib/reports"


@router.get("/{name}")
async def get_report(name: str):
    with open(f"{REPORT_DIR}/{name}.txt") as fh:
        body = fh.read()
    return {"name": name, "body": body}


@router.put("/{name}")
async def put_report(name: str, body: str):
    with open(f"{REPORT_DIR}/{name}.txt", "w") as fh:
        fh.write(body)
    return {"saved": name}
