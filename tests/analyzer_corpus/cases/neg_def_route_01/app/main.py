import sqlite3
import subprocess
import time

import requests
from fastapi import FastAPI

app = FastAPI()


@app.get("/sleep")
def sleepy():
    time.sleep(2)
    return {"ok": True}


@app.get("/proxy")
def proxy(url: str):
    return {"body": requests.get(url, timeout=5).text}


@app.get("/file")
def read_file():
    with open("/etc/hostname") as fh:
        return {"host": fh.read().strip()}


@app.get("/count")
def count():
    with sqlite3.connect("/var/lib/app/app.db") as conn:
        return {"n": conn.execute("SELECT count(*) FROM users").fetchone()[0]}


@app.post("/build")
def build():
    subprocess.run(["make", "-C", "/srv/site"], check=True)
    return {"ok": True}
