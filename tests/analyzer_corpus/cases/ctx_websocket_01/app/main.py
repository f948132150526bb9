import time

from fastapi import FastAPI, WebSocket, WebSocketDisconnect

app = FastAPI()


@app.websocket("/ws/ticks")
async def ticks(websocket: WebSocket):
    await websocket.accept()
    try:
        while True:
            await websocket.send_json({"t": time.time()})
            time.sleep(1)
    except WebSocketDisconnect:
        pass
