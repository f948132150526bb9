"""Where sockets live: <run_dir>/<revision key>/<n>.sock and <run_dir>/<revision key>/log.sock.

A Unix socket path must fit sun_path: 108 bytes with the terminating NUL. Names are kept short
so a run_dir that fits is checked once, up front.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import stat
from pathlib import Path

MAX_SOCKET_PATH_BYTES = 107
KEY_LENGTH = 8
LOG_SOCKET = "log.sock"
# The longest name this layout makes: "<key>/<n>.sock" with n up to 9 digits.
_LONGEST_TAIL = f"/{'k' * KEY_LENGTH}/{'9' * 9}.sock"


def check_socket_path(path: Path) -> None:
    size = len(os.fsencode(path))
    if size > MAX_SOCKET_PATH_BYTES:
        raise ValueError(
            f"Unix socket path {str(path)!r} is {size} bytes; the limit is "
            f"{MAX_SOCKET_PATH_BYTES}. Use a shorter run directory (e.g. /tmp/cloudlet)."
        )


def check_run_dir(run_dir: Path) -> None:
    check_socket_path(Path(f"{run_dir}{_LONGEST_TAIL}"))


def revision_key(revision_id: str, taken: set[str]) -> str:
    """A short, stable directory name for a revision, distinct from those in use."""
    salt = 0
    while True:
        digest = hashlib.sha256(f"{revision_id}/{salt}".encode()).hexdigest()
        if digest[:KEY_LENGTH] not in taken:
            return digest[:KEY_LENGTH]
        salt += 1


def instance_socket(directory: Path, n: int) -> Path:
    path = directory / f"{n}.sock"
    check_socket_path(path)
    return path


def remove_socket(path: Path) -> None:
    """Remove path if it is a socket (never anything else)."""
    with contextlib.suppress(FileNotFoundError):
        if stat.S_ISSOCK(path.lstat().st_mode):
            path.unlink()


def prepare_directory(directory: Path) -> None:
    """Create the revision's directory, private to this user, without stale sockets."""
    directory.mkdir(mode=0o700, parents=True, exist_ok=True)
    directory.chmod(0o700)  # uvicorn makes its socket 0o666; the directory keeps others out
    for entry in directory.iterdir():
        remove_socket(entry)


def remove_directory(directory: Path) -> None:
    """Remove the revision's sockets and its directory if nothing else is left in it."""
    if not directory.is_dir():
        return
    for entry in directory.iterdir():
        remove_socket(entry)
    with contextlib.suppress(OSError):
        directory.rmdir()
