import fcntl


class FileLock:
    def __init__(self, path: str) -> None:
        self.path = path
        self.fh = None

    def __enter__(self) -> "FileLock":
        self.fh = open(self.path, "w")
        fcntl.flock(self.fh, fcntl.LOCK_EX)
        return self

    def __exit__(self, *exc: object) -> None:
        assert self.fh is not None
        fcntl.flock(self.fh, fcntl.LOCK_UN)
        self.fh.close()
