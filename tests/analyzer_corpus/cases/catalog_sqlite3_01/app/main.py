import sqlite3

from fastapi import FastAPI

app = FastAPI()
DB = "/var/lib/app/todo.db"


@app.post("/todos")
async def add(title: str):
    conn = sqlite3.connect(DB)
    cur = conn.cursor()
    cur.execute("INSERT INTO todos(title) VALUES (?)", (title,))
    conn.commit()
    conn.close()
    return {"id": cur.lastrowid}


@app.get("/todos")
async def list_todos():
    conn = sqlite3.connect(DB)
    rows = conn.execute("SELECT id, title FROM todos").fetchall()
    conn.close()
    return [{"id": i, "title": t} for i, t in rows]
