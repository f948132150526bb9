"""Secrets at rest: token hashing and environment-variable encryption."""

from __future__ import annotations

import hashlib
import os
import secrets
from pathlib import Path

from cryptography.fernet import Fernet, InvalidToken


def hash_token(value: str) -> str:
    # Tokens are 256-bit random values, so a plain SHA-256 is enough: no dictionary to attack.
    return hashlib.sha256(value.encode()).hexdigest()


def new_token(prefix: str) -> str:
    return prefix + secrets.token_urlsafe(32)


class SecretBox:
    """Encrypts environment variable values with a Fernet key kept outside the database."""

    def __init__(self, key: str | bytes) -> None:
        self._fernet = Fernet(key)

    @classmethod
    def from_data_dir(cls, data_dir: Path, key: str | None = None) -> SecretBox:
        if key:
            return cls(key)
        path = data_dir / "secret.key"
        if not path.exists():
            data_dir.mkdir(parents=True, exist_ok=True)
            tmp = path.with_suffix(".tmp")
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            with os.fdopen(fd, "wb") as f:
                f.write(Fernet.generate_key())
            os.replace(tmp, path)
        return cls(path.read_bytes().strip())

    def encrypt(self, value: str) -> bytes:
        return self._fernet.encrypt(value.encode())

    def decrypt(self, token: bytes) -> str:
        try:
            return self._fernet.decrypt(token).decode()
        except InvalidToken as exc:
            raise RuntimeError(
                "cannot decrypt an environment variable: was CLOUDLET_SECRET_KEY or "
                "<data dir>/secret.key changed?"
            ) from exc
