"""Deployments, the upload hand-off and the build-log stream (contract §4.4, §5.1, §6)."""

from __future__ import annotations

import asyncio
import hmac
import json
import os
import secrets
import time
from collections.abc import AsyncIterator
from typing import Any

from fastapi import APIRouter, HTTPException, Query, Request
from fastapi.responses import StreamingResponse
from pydantic import BaseModel, Field
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession
from starlette.datastructures import UploadFile

from cloudlet.api.auth import (
    Caller,
    CallerDep,
    PlatformDep,
    SessionDep,
    UserDep,
    app_for_caller,
    app_for_user,
)
from cloudlet.api.errors import bad_request, not_found
from cloudlet.api.login import public_base
from cloudlet.api.serialize import deployment_json
from cloudlet.control.platform import Platform
from cloudlet.statuses import BUILD_COMPLETED, BUILD_ENDED_WITHOUT_IMAGE, IN_BUILD
from cloudlet.store.crypto import hash_token
from cloudlet.store.models import App, BuildLogLine, Deployment, Team

router = APIRouter()

# The CLI's read timeout on the build-log stream is 60 s (§5.1): heartbeat well inside it and
# end each long-poll with a "timeout" line before it.
HEARTBEAT_S = 15.0
LONG_POLL_S = 45.0
UPLOAD_CHUNK = 1024 * 1024


class DeploymentCreate(BaseModel):
    archive_size_bytes: int = Field(default=0, ge=0)


async def _render(
    session: AsyncSession, platform: Platform, request: Request, deployment: Deployment
) -> dict[str, Any]:
    app = await session.get(App, deployment.app_id)
    assert app is not None
    team = await session.get(Team, app.team_id)
    assert team is not None
    base = public_base(request, platform.settings.public_api_url)
    return deployment_json(deployment, app, team, platform.settings, base)


async def deployment_for_caller(
    session: AsyncSession, caller: Caller, deployment_id: str
) -> Deployment:
    deployment = await session.get(Deployment, deployment_id)
    if deployment is None:
        raise not_found("Deployment")
    try:
        await app_for_caller(session, caller, deployment.app_id)
    except Exception as exc:
        raise not_found("Deployment") from exc
    return deployment


def too_large_detail(size: int, limit: int) -> str:
    return (
        f"The app source code is {size / 1e6:.1f} MB, more than this Cloudlet accepts "
        f"({limit / 1e6:.0f} MB). Leave out files the app does not need with .fastapicloudignore."
    )


@router.post("/apps/{app_id}/deployments/", status_code=201)
async def create_deployment(
    app_id: str,
    body: DeploymentCreate,
    request: Request,
    platform: PlatformDep,
    caller: CallerDep,
    session: SessionDep,
) -> dict[str, Any]:
    app = await app_for_caller(session, caller, app_id)
    limit = platform.settings.max_archive_bytes
    if body.archive_size_bytes > limit:
        raise HTTPException(413, too_large_detail(body.archive_size_bytes, limit))
    deployment = Deployment(app_id=app.id, archive_size_bytes=body.archive_size_bytes)
    deployment.slug = f"{app.slug}-{secrets.token_hex(3)}"
    session.add(deployment)
    await session.commit()
    return await _render(session, platform, request, deployment)


@router.get("/apps/{app_id}/deployments/")
async def list_deployments(
    app_id: str,
    request: Request,
    platform: PlatformDep,
    user: UserDep,
    session: SessionDep,
    limit: int = Query(default=100, ge=1, le=1000),
    skip: int = Query(default=0, ge=0),
) -> dict[str, Any]:
    app = await app_for_user(session, user, app_id)
    total = await session.scalar(
        select(func.count()).select_from(Deployment).where(Deployment.app_id == app.id)
    )
    rows = await session.scalars(
        select(Deployment)
        .where(Deployment.app_id == app.id)
        .order_by(Deployment.created_at.desc(), Deployment.id.desc())
        .limit(limit)
        .offset(skip)
    )
    data = [await _render(session, platform, request, d) for d in rows.all()]
    return {"data": data, "count": total or 0}


@router.get("/deployments/{deployment_id}")
async def get_deployment(
    deployment_id: str,
    request: Request,
    platform: PlatformDep,
    caller: CallerDep,
    session: SessionDep,
) -> dict[str, Any]:
    deployment = await deployment_for_caller(session, caller, deployment_id)
    return await _render(session, platform, request, deployment)


@router.get("/deployments/{deployment_id}/analysis")
async def get_analysis(
    deployment_id: str, caller: CallerDep, session: SessionDep
) -> dict[str, Any]:
    """The blocking-call analyzer's report on this deployment's source (a Cloudlet addition).

    ``status``: ``pending`` (not built yet), ``complete``, ``failed`` (the analyzer could not
    finish; the deploy went on) or ``not_run`` (built before the analyzer existed, or the app
    failed to import first)."""
    deployment = await deployment_for_caller(session, caller, deployment_id)
    report = deployment.analysis
    if report is None:
        waiting = deployment.status in IN_BUILD or deployment.status == "waiting_upload"
        status = "pending" if waiting else "not_run"
        report = {"status": status, "findings": []}
    return {"deployment_id": deployment.id, **report, "count": len(report["findings"])}


@router.post("/deployments/{deployment_id}/upload")
async def request_upload(
    deployment_id: str,
    request: Request,
    platform: PlatformDep,
    caller: CallerDep,
    session: SessionDep,
) -> dict[str, Any]:
    deployment = await deployment_for_caller(session, caller, deployment_id)
    if deployment.status != "waiting_upload":
        raise bad_request(f"This deployment is {deployment.status}; it no longer takes an upload.")
    token = secrets.token_urlsafe(32)
    deployment.upload_token_hash = hash_token(token)
    await session.commit()
    base = public_base(request, platform.settings.public_api_url)
    return {"url": f"{base}/api/v1/deployments/{deployment.id}/archive", "fields": {"token": token}}


@router.post("/deployments/{deployment_id}/archive", status_code=204)
async def receive_archive(
    deployment_id: str, request: Request, platform: PlatformDep, session: SessionDep
) -> None:
    """Cloudlet's presigned-style upload target: no bearer, a one-time token instead (§4.4 #15)."""
    limit = platform.settings.max_archive_bytes
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit + 64 * 1024:
        raise HTTPException(413, too_large_detail(int(declared), limit))
    deployment = await session.get(Deployment, deployment_id)
    if deployment is None:
        raise not_found("Deployment")
    form = await request.form(max_files=1, max_fields=20)
    try:
        token = form.get("token")
        upload = form.get("file")
        if (
            not isinstance(token, str)
            or deployment.upload_token_hash is None
            or not hmac.compare_digest(hash_token(token), deployment.upload_token_hash)
        ):
            raise HTTPException(403, "The upload token is missing, wrong or already used.")
        if not isinstance(upload, UploadFile):
            raise bad_request("The upload has no `file` part.")
        if deployment.status != "waiting_upload":
            raise bad_request(
                f"This deployment is {deployment.status}; it no longer takes an upload."
            )
        size = await asyncio.to_thread(store_archive, upload, platform, deployment.id, limit)
        if size is None:
            raise HTTPException(413, too_large_detail(limit + 1, limit))
    finally:
        await form.close()
    deployment.upload_token_hash = None  # one-time
    deployment.uploaded = True
    deployment.archive_size_bytes = size
    await session.commit()


def store_archive(
    upload: UploadFile, platform: Platform, deployment_id: str, limit: int
) -> int | None:
    """Copy the upload into the blob store: written to a temporary name, then renamed."""
    final = platform.archive_path(deployment_id)
    final.parent.mkdir(parents=True, exist_ok=True)
    partial = final.with_name(final.name + ".part")
    size = 0
    upload.file.seek(0)
    with open(partial, "wb") as out:
        while chunk := upload.file.read(UPLOAD_CHUNK):
            size += len(chunk)
            if size > limit:
                out.close()
                os.unlink(partial)
                return None
            out.write(chunk)
        out.flush()
        os.fsync(out.fileno())
    os.replace(partial, final)
    return size


@router.post("/deployments/{deployment_id}/upload-complete")
async def upload_complete(
    deployment_id: str,
    request: Request,
    platform: PlatformDep,
    caller: CallerDep,
    session: SessionDep,
) -> dict[str, Any]:
    deployment = await deployment_for_caller(session, caller, deployment_id)
    if deployment.status == "waiting_upload":
        if not deployment.uploaded or not platform.archive_path(deployment.id).exists():
            raise bad_request("The archive was not uploaded yet: upload it, then complete.")
        deployment.status = "ready_for_build"
        await session.commit()
        platform.pipeline.enqueue(deployment.id)
    return await _render(session, platform, request, deployment)


@router.post("/deployments/{deployment_id}/upload-cancelled")
async def upload_cancelled(
    deployment_id: str,
    request: Request,
    platform: PlatformDep,
    caller: CallerDep,
    session: SessionDep,
) -> dict[str, Any]:
    deployment = await deployment_for_caller(session, caller, deployment_id)
    if deployment.status == "waiting_upload":
        deployment.status = "upload_cancelled"
        deployment.upload_token_hash = None
        await session.commit()
        platform.archive_path(deployment.id).unlink(missing_ok=True)
    return await _render(session, platform, request, deployment)


def _line(payload: dict[str, Any]) -> bytes:
    return (json.dumps(payload, ensure_ascii=False) + "\n").encode()


@router.get("/deployments/{deployment_id}/build-logs")
async def build_logs(
    deployment_id: str,
    platform: PlatformDep,
    caller: CallerDep,
    session: SessionDep,
    last_id: str | None = None,
) -> StreamingResponse:
    deployment = await deployment_for_caller(session, caller, deployment_id)
    try:
        after = int(last_id) if last_id else 0
    except ValueError:
        raise bad_request("last_id must be an id from this stream.") from None
    return StreamingResponse(
        stream_build_log(platform, deployment.id, after), media_type="application/x-ndjson"
    )


async def stream_build_log(
    platform: Platform, deployment_id: str, after: int
) -> AsyncIterator[bytes]:
    """Replay lines after `after`, tail live ones, end with complete/failed or a timeout line."""
    started = time.monotonic()
    last_beat = started
    last_seq = after
    while True:
        async with platform.sessions() as session:
            lines = (
                await session.scalars(
                    select(BuildLogLine)
                    .where(BuildLogLine.deployment_id == deployment_id, BuildLogLine.seq > last_seq)
                    .order_by(BuildLogLine.seq)
                    .limit(500)
                )
            ).all()
            status = await session.scalar(
                select(Deployment.status).where(Deployment.id == deployment_id)
            )
        for line in lines:
            last_seq = line.seq
            yield _line({"type": "message", "message": line.message, "id": str(line.seq)})
        if len(lines) == 500:
            continue
        # Status was read after the lines: a terminal status here means no line can follow.
        if status in BUILD_COMPLETED:
            yield _line({"type": "complete", "id": str(last_seq)})
            return
        if status in BUILD_ENDED_WITHOUT_IMAGE or status is None:
            yield _line({"type": "failed", "id": str(last_seq)})
            return
        now = time.monotonic()
        if now - started > LONG_POLL_S:
            yield _line({"type": "timeout", "id": str(last_seq)})
            return
        if now - last_beat > HEARTBEAT_S:
            last_beat = now
            yield _line({"type": "heartbeat", "id": str(last_seq)})
        await platform.buildlogs.wait(deployment_id, at_most_s=1.0)
