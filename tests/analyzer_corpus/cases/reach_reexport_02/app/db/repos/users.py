import sqlite3


class UserRepo:
    def __init__(self, path: str = "/var/lib/app/app.db") -> None:
        self.path = path

    def by_email(self, email: str) -> tuple | None:
        with sqlite3.connect(self.path) as conn:
            return conn.execute("SELECT id, email FROM users WHERE email = ?", (email,)).fetchone()
