import sqlite3
from dataclasses import dataclass

DB = "/var/lib/app/app.db"


@dataclass
class User:
    id: int
    name: str

    @property
    def permissions(self) -> set[str]:
        with sqlite3.connect(DB) as conn:
            rows = conn.execute("SELECT perm FROM permissions WHERE user_id = ?", (self.id,)).fetchall()
        return {r[0] for r in rows}
