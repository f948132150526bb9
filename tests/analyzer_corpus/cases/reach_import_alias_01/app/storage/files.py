import os

ROOT = "/srv/storage"


def save(name: str, data: bytes) -> str:
    path = os.path.join(ROOT, name)
    with open(path, "wb") as fh:
        fh.write(data)
    return path
