"""Shared fixtures: a real control plane on SQLite, and on PostgreSQL when one is given."""

from __future__ import annotations

import asyncio
import os
import secrets
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from cloudlet.settings import Settings

POSTGRES_URL = os.environ.get("CLOUDLET_TEST_POSTGRES_URL")
ADMIN_EMAIL = "ada@example.com"
ADMIN_TOKEN = "clt_test_" + secrets.token_hex(16)


def _postgres_admin_dsn(url: str) -> str:
    return url.replace("postgresql+asyncpg://", "postgresql://", 1)


async def create_database(url: str, name: str) -> None:
    import asyncpg

    conn = await asyncpg.connect(_postgres_admin_dsn(url))
    try:
        await conn.execute(f'CREATE DATABASE "{name}"')
    finally:
        await conn.close()


async def drop_database(url: str, name: str) -> None:
    import asyncpg

    conn = await asyncpg.connect(_postgres_admin_dsn(url))
    try:
        await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        await conn.close()


@pytest.fixture(params=["sqlite", "postgres"])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    if request.param == "sqlite":
        yield f"sqlite+aiosqlite:///{tmp_path / 'cloudlet.db'}"
        return
    if not POSTGRES_URL:
        pytest.skip("CLOUDLET_TEST_POSTGRES_URL is not set (CI always sets it)")
    name = f"cloudlet_test_{secrets.token_hex(6)}"
    asyncio.run(create_database(POSTGRES_URL, name))
    base = POSTGRES_URL.rsplit("/", 1)[0]
    try:
        yield f"{base}/{name}"
    finally:
        asyncio.run(drop_database(POSTGRES_URL, name))


@pytest.fixture
def short_tmp() -> Iterator[Path]:
    """A short folder: Unix socket paths must stay under 108 bytes."""
    import shutil
    import tempfile

    path = Path(tempfile.mkdtemp(prefix="cl-", dir="/tmp"))
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


def test_settings(data_dir: Path, database_url: str, **overrides: Any) -> Settings:
    """Settings of an in-process test platform: the bootstrap admin, no builds unless asked."""
    values: dict[str, Any] = {"build_workers": 0, **overrides}
    return Settings(
        data_dir=data_dir,
        database_url=database_url,
        admin_email=ADMIN_EMAIL,
        admin_token=ADMIN_TOKEN,
        **values,
    )


test_settings.__test__ = False  # type: ignore[attr-defined]  # a helper, not a test
