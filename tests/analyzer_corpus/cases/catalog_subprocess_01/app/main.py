import os
import subprocess

from fastapi import FastAPI

app = FastAPI()


@app.post("/thumbnail/{name}")
async def thumbnail(name: str):
    subprocess.run(["convert", f"/srv/img/{name}", "-resize", "128x128", f"/srv/thumbs/{name}"], check=True)
    return {"ok": True}


@app.post("/lint")
async def lint(code: str):
    proc = subprocess.Popen(["ruff", "check", "-"], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    out, _ = proc.communicate(code)
    return {"report": out}


@app.get("/uptime")
async def uptime():
    return {"uptime": subprocess.check_output(["uptime"], text=True)}


@app.post("/reload")
async def reload():
    os.system("nginx -s reload")
    return {"ok": True}
