import asyncio

import anyio
from fastapi import FastAPI

app = FastAPI()


@app.post("/retry")
async def retry():
    await asyncio.sleep(0.5)
    await anyio.sleep(0.5)
    return {"ok": True}


@app.get("/git-rev")
async def git_rev():
    proc = await asyncio.create_subprocess_exec("git", "rev-parse", "HEAD", stdout=asyncio.subprocess.PIPE)
    out, _ = await proc.communicate()
    await proc.wait()
    return {"rev": out.decode().strip()}


@app.get("/ping/{host}")
async def ping(host: str):
    reader, writer = await asyncio.open_connection(host, 80)
    writer.write(b"HEAD / HTTP/1.0\r\n\r\n")
    await writer.drain()
    line = await reader.readline()
    writer.close()
    await writer.wait_closed()
    return {"status": line.decode().strip()}
