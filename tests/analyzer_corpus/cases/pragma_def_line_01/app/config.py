import tomllib


def _read(path: str) -> dict:
    with open(path, "rb") as fh:
        return tomllib.load(fh)


def load_defaults() -> dict:  # sync-ok: read once per process, then cached by the caller
    return _read("/etc/app/defaults.toml")


def load_limits() -> dict:
    return _read("/etc/app/limits.toml")
