import time

from fastapi import FastAPI, WebSocket

app = FastAPI()


@app.websocket("/ws")
async def ws(websocket: WebSocket):
    await websocket.accept()
    time.sleep(0.001)  # sync-ok
    await websocket.send_text("hello")
    time.sleep(1)
    await websocket.close()
