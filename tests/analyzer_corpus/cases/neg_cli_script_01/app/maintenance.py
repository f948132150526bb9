import shutil
import sqlite3
import time


def backup(db: str, dest: str) -> None:
    shutil.copyfile(db, dest)


def purge_sessions(db: str) -> int:
    with sqlite3.connect(db) as conn:
        cur = conn.execute("DELETE FROM sessions WHERE expires < ?", (time.time(),))
        return cur.rowcount


def wait_for_db(db: str) -> None:
    time.sleep(2)
