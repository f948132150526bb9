import functools
import subprocess
import time

from fastapi import FastAPI

app = FastAPI()


def timed(fn):
    @functools.wraps(fn)
    async def wrapper(*args, **kwargs):
        started = time.monotonic()
        try:
            return fn(*args, **kwargs)
        finally:
            print(f"{fn.__name__} took {time.monotonic() - started:.3f}s")

    return wrapper


@app.get("/report")
@timed
def report():
    with open("/srv/reports/latest.csv") as fh:
        return {"rows": sum(1 for _ in fh)}


@app.get("/export")
@timed
def export():
    out = subprocess.run(["pg_dump", "--schema-only", "app"], capture_output=True, check=True)
    return {"bytes": len(out.stdout)}


@app.get("/plain")
def plain():
    with open("/srv/reports/latest.csv") as fh:
        return {"rows": sum(1 for _ in fh)}
