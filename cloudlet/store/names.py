"""App slugs: they are hostnames (`<slug>.<domain>`), so DNS-label safe and globally unique."""

from __future__ import annotations

import re
import secrets

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from cloudlet.store.models import App


def slugify(name: str) -> str:
    slug = re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-")
    return (slug or "app")[:50].rstrip("-")


async def unique_slug(session: AsyncSession, name: str) -> str:
    base = slugify(name)
    candidate = base
    while await session.scalar(select(App.id).where(App.slug == candidate)) is not None:
        candidate = f"{base}-{secrets.token_hex(2)}"
    return candidate
