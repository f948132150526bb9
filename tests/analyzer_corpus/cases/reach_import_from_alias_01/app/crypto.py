import hashlib as hl
import os

ITERATIONS = 600_000


def derive_key(password: str, salt: bytes | None = None) -> tuple[bytes, bytes]:
    salt = salt or os.urandom(16)
    return salt, hl.pbkdf2_hmac("sha256", password.encode(), salt, ITERATIONS)


def fingerprint(data: bytes) -> str:
    return hl.sha256(data).hexdigest()
