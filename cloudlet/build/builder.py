"""Building one revision: upload → extracted source → venv → located app."""

from __future__ import annotations

import asyncio
import os
import shutil
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from cloudlet.build.archive import ArchiveLimits, extract_archive
from cloudlet.build.dependencies import plan_dependencies
from cloudlet.build.entrypoint import find_app
from cloudlet.build.errors import BuildError
from cloudlet.build.install import install_dependencies, uv_environment
from cloudlet.build.process import LogSink

__all__ = ["BuildResult", "LogSink", "build_revision"]


@dataclass(frozen=True)
class BuildResult:
    python: Path  # the revision venv's python executable
    venv: Path
    project_dir: Path  # the app's working directory (extracted source / app `directory`)
    import_root: Path  # the folder to put first on sys.path
    entrypoint: str  # "module.sub:attr"


async def build_revision(
    archive: Path,
    revision_dir: Path,
    *,
    app_directory: str | None,
    uv_cache: Path,
    log: LogSink,
    limits: ArchiveLimits = ArchiveLimits(),
    timeout_s: float = 900.0,
    env: Mapping[str, str] | None = None,
) -> BuildResult:
    """Build the uploaded `archive` into `revision_dir` (`source/` and `venv/`).

    `log` receives every build-log line as it happens. `env` is the base environment for uv
    (default: this process's), e.g. to point it at a package mirror. Raises `BuildError` for
    anything the user can fix; the whole build is bounded by `timeout_s`.
    """
    started = time.monotonic()
    try:
        async with asyncio.timeout(timeout_s):
            result = await _build(
                archive,
                revision_dir,
                app_directory=app_directory,
                uv_cache=uv_cache,
                log=log,
                limits=limits,
                env=os.environ if env is None else env,
            )
    except TimeoutError:
        raise BuildError(
            "building_image_failed_timeout",
            "build_timeout",
            "Build timed out",
            f"The build took longer than {timeout_s:g} seconds and was stopped.",
            "Commit a uv.lock (or pin versions in requirements.txt) so nothing has to be "
            "resolved, and prefer packages that ship wheels, so nothing is compiled.",
        ) from None
    await log(f"Build finished in {time.monotonic() - started:.1f}s")
    return result


async def _build(
    archive: Path,
    revision_dir: Path,
    *,
    app_directory: str | None,
    uv_cache: Path,
    log: LogSink,
    limits: ArchiveLimits,
    env: Mapping[str, str],
) -> BuildResult:
    archive, revision_dir, uv_cache = await asyncio.to_thread(
        _prepare, archive, revision_dir, uv_cache
    )
    source = revision_dir / "source"
    venv = revision_dir / "venv"

    await log("Extracting upload…")
    # A timeout cannot stop this thread early, but `limits` bound how long it can take.
    file_count = await asyncio.to_thread(extract_archive, archive, source, limits)
    await log(f"Extracted {file_count} files.")

    project_dir = _project_dir(source, app_directory)
    if project_dir != source:
        await log(f"Building from the app directory {app_directory!r}.")
    plan = await asyncio.to_thread(plan_dependencies, project_dir)
    if plan.exclude_newer:
        await log(f"Ignoring packages released after {plan.exclude_newer} ([tool.cloudlet]).")
    app = await asyncio.to_thread(find_app, project_dir)
    await log(f"Found app: {app.entrypoint} ({app.reason})")

    env_file = project_dir / ".env"
    if not env_file.exists():
        # `fastapi deploy` never uploads .env; apps that read one would crash without it.
        env_file.touch()
        await log("Created an empty .env file (.env files are never uploaded).")

    python = await install_dependencies(
        plan, project_dir, venv, env=uv_environment(env, uv_cache), log=log
    )
    return BuildResult(
        python=python,
        venv=venv,
        project_dir=project_dir,
        import_root=app.import_root,
        entrypoint=app.entrypoint,
    )


def _project_dir(source: Path, app_directory: str | None) -> Path:
    directory = (app_directory or "").strip().strip("/")
    if not directory or directory == ".":
        return source
    relative = PurePosixPath(directory)
    project_dir = source.joinpath(*relative.parts)
    if not relative.is_absolute() and ".." not in relative.parts and project_dir.is_dir():
        return project_dir
    raise BuildError(
        "building_image_failed",
        "app_directory_not_found",
        "App directory not found",
        f"The app's directory is set to {app_directory!r}, but the upload has no such folder.",
        "Deploy from the folder that contains it, or change the app's directory with "
        "`fastapi cloud apps update --directory <folder>` (relative to the folder you deploy; "
        'use --directory "" to clear it).',
    )


def _prepare(archive: Path, revision_dir: Path, uv_cache: Path) -> tuple[Path, Path, Path]:
    # Absolute, because uv runs with the project as its working directory.
    archive, revision_dir, uv_cache = (
        path.absolute() for path in (archive, revision_dir, uv_cache)
    )
    revision_dir.mkdir(parents=True, exist_ok=True)
    uv_cache.mkdir(parents=True, exist_ok=True)
    # Whatever an interrupted earlier attempt at this revision may have left goes.
    for leftover in (revision_dir / "source", revision_dir / "venv"):
        if leftover.is_dir() and not leftover.is_symlink():
            shutil.rmtree(leftover)
        elif leftover.exists() or leftover.is_symlink():
            leftover.unlink()
    return archive, revision_dir, uv_cache
