import sqlite3

from fastapi import Depends, FastAPI, WebSocket

app = FastAPI()


def room_exists(room: str) -> bool:
    with sqlite3.connect("/var/lib/chat/chat.db") as conn:
        return conn.execute("SELECT 1 FROM rooms WHERE name = ?", (room,)).fetchone() is not None


@app.websocket("/ws/{room}")
async def ws(websocket: WebSocket, room: str, exists: bool = Depends(room_exists)):
    await websocket.accept()
    await websocket.send_json({"room": room, "exists": exists})
    await websocket.close()
