import os
import subprocess


async def cleanup_tmp(root: str) -> int:
    removed = 0
    for name in os.listdir(root):
        path = os.path.join(root, name)
        if os.stat(path).st_size == 0:
            os.remove(path)
            removed += 1
    return removed


async def vacuum() -> None:
    subprocess.call(["sqlite3", "/var/lib/app/app.db", "VACUUM"])
