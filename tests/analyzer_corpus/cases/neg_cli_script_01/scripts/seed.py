import sqlite3

import requests


def main() -> None:
    users = requests.get("https://fixtures.internal/users.json", timeout=30).json()
    with sqlite3.connect("/var/lib/app/app.db") as conn:
        conn.executemany("INSERT INTO users(name) VALUES (?)", [(u["name"],) for u in users])


if __name__ == "__main__":
    main()
