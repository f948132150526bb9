import sqlite3

from fastapi import APIRouter, WebSocket

router = APIRouter()
DB = "/var/lib/chat/chat.db"


def save_message(room: str, text: str) -> None:
    with sqlite3.connect(DB) as conn:
        conn.execute("INSERT INTO messages(room, body) VALUES (?, ?)", (room, text))


@router.websocket("/ws/{room}")
async def chat(websocket: WebSocket, room: str):
    await websocket.accept()
    async for text in websocket.iter_text():
        save_message(room, text)
        await websocket.send_text(f"ack {len(text)}")
