"""Deploy a local folder without the CLI: the demo of `cloudlet up --demo`.

Packs the folder the way fastapi-cloud-cli does (zstd-compressed GNU tar of regular files), then
enters the same pipeline an upload would.
"""

from __future__ import annotations

import io
import os
import secrets
import tarfile
from pathlib import Path

import zstandard
from sqlalchemy import select

from cloudlet.control.platform import Platform, ensure_personal_team
from cloudlet.store.models import App, Deployment, User
from cloudlet.store.names import unique_slug

SKIP = {".venv", "__pycache__", ".git", ".fastapicloud", ".mypy_cache", ".pytest_cache"}


def pack_directory(root: Path) -> bytes:
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w", format=tarfile.GNU_FORMAT) as tar:
        for folder, dirs, files in os.walk(root):
            dirs[:] = sorted(d for d in dirs if d not in SKIP)
            for name in sorted(files):
                if name.endswith(".pyc") or name == ".env" or name.startswith(".env."):
                    continue
                path = Path(folder) / name
                info = tar.gettarinfo(str(path), arcname=path.relative_to(root).as_posix())
                info.uid = info.gid = 0
                info.uname = info.gname = ""
                with open(path, "rb") as f:
                    tar.addfile(info, f)
    return zstandard.ZstdCompressor().compress(raw.getvalue())


async def deploy_directory(
    platform: Platform, email: str, name: str, folder: Path, *, unless_live: bool = False
) -> tuple[App, bool]:
    """Create (or reuse) the app `name` in the user's personal team and deploy `folder`.

    With `unless_live`, an app that already serves a revision is left alone. Returns the app
    and whether a deployment was started.
    """
    archive = pack_directory(folder)
    async with platform.sessions() as session:
        user = await session.scalar(select(User).where(User.email == email))
        if user is None:
            raise LookupError(f"no user {email}")
        team = await ensure_personal_team(session, user)
        app = await session.scalar(select(App).where(App.team_id == team.id, App.name == name))
        if app is None:
            app = App(team_id=team.id, name=name, slug=await unique_slug(session, name))
            session.add(app)
            await session.flush()
        elif unless_live and app.live_deployment_id is not None:
            return app, False
        deployment = Deployment(
            app_id=app.id,
            slug=f"{app.slug}-{secrets.token_hex(3)}",
            status="ready_for_build",
            uploaded=True,
            archive_size_bytes=len(archive),
        )
        session.add(deployment)
        await session.flush()
        path = platform.archive_path(deployment.id)
        partial = path.with_name(path.name + ".part")
        partial.write_bytes(archive)
        os.replace(partial, path)
        await session.commit()
    platform.pipeline.enqueue(deployment.id)
    return app, True
