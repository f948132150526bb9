import subprocess

from fastapi import FastAPI

app = FastAPI()


def _du(path: str) -> int:
    out = subprocess.run(["du", "-sb", path], capture_output=True, text=True, check=True)
    return int(out.stdout.split()[0])


def disk_usage(paths: list[str]) -> dict[str, int]:
    return {p: _du(p) for p in paths}


@app.get("/usage")
async def usage():
    return disk_usage(["/srv/uploads", "/srv/cache"])


@app.get("/usage-sync")
def usage_sync():
    return disk_usage(["/srv/uploads"])
