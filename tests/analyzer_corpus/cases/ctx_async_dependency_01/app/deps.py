import sqlite3

from fastapi import Header, HTTPException

DB_PATH = "/var/lib/app/users.db"


async def current_user(authorization: str = Header()):
    conn = sqlite3.connect(DB_PATH)
    row = conn.execute("SELECT id, name FROM users WHERE token = ?", (authorization,)).fetchone()
    conn.close()
    if row is None:
        raise HTTPException(status_code=401)
    return {"id": row[0], "name": row[1]}
