import sqlite3


class NoteRepo:
    def __init__(self, conn: sqlite3.Connection) -> None:
        self.conn = conn

    def get(self, note_id: int) -> str | None:
        row = self.conn.execute("SELECT body FROM notes WHERE id = ?", (note_id,)).fetchone()
        return row[0] if row else None
