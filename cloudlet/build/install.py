"""Installing a project's dependencies into the revision's venv with uv."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from pathlib import Path

from uv import find_uv_bin

from cloudlet.build.dependencies import DependencyPlan
from cloudlet.build.errors import BuildError
from cloudlet.build.process import LogSink, run_process

__all__ = ["RUNTIME_REQUIREMENT", "install_dependencies", "uv_environment"]

# What every instance needs besides the app: uvicorn with uvloop and httptools.
RUNTIME_REQUIREMENT = "uvicorn[standard]"
_RUNTIME_CHECK = "import uvicorn, uvloop, httptools"

# Variables that would send uv (or the venv's Python) somewhere other than the revision's venv.
_INHERITED_BUT_IGNORED = frozenset(
    {
        "VIRTUAL_ENV",
        "CONDA_PREFIX",
        "UV_PROJECT_ENVIRONMENT",
        "UV_SYSTEM_PYTHON",
        "UV_PYTHON",
        "PYTHONPATH",
        "PYTHONHOME",
        "FORCE_COLOR",
        "CLICOLOR_FORCE",
    }
)
_EXAMPLE_DATE = "2024-06-01"


def uv_environment(base: Mapping[str, str], uv_cache: Path) -> dict[str, str]:
    env = {key: value for key, value in base.items() if key not in _INHERITED_BUT_IGNORED}
    # Copies, not hard links, from the shared cache: an app that writes into its own
    # site-packages must not be able to change what other apps' builds install.
    env.setdefault("UV_LINK_MODE", "copy")
    # Bytecode compiled once at build time, so instances do not pay for it on every cold start.
    env.setdefault("UV_COMPILE_BYTECODE", "1")
    env.update(
        UV_CACHE_DIR=str(uv_cache),
        UV_PYTHON_DOWNLOADS="never",  # nothing can download a Python here; use what is installed
        UV_NO_PROGRESS="1",
        NO_COLOR="1",
    )
    return env


async def install_dependencies(
    plan: DependencyPlan,
    project_dir: Path,
    venv: Path,
    *,
    env: Mapping[str, str],
    log: LogSink,
) -> Path:
    """Create `venv` (an absolute path), install the project's dependencies and the runtime's.

    Returns the venv's python. Raises `BuildError` with uv's own error lines when uv fails.
    """
    uv = find_uv_bin()
    await _create_venv(uv, plan, project_dir, venv, env, log)
    python = venv / "bin" / "python"

    await log(f"Installing dependencies from {plan.description} with uv…")
    command, extra_env = _install_command(uv, plan, project_dir, python)
    if command:
        result = await run_process(command, cwd=project_dir, env={**env, **extra_env}, log=log)
        if result.returncode != 0:
            raise _install_failed(plan, result.tail, venv)

    check = await run_process(
        [str(python), "-I", "-c", _RUNTIME_CHECK], cwd=venv, env=env, log=None
    )
    if check.returncode == 0:
        await log("Runtime packages present: uvicorn, uvloop, httptools.")
        return python
    await log(f"Adding {RUNTIME_REQUIREMENT} (uvicorn, uvloop, httptools) for the runtime…")
    command = [uv, "pip", "install", "--python", str(python), RUNTIME_REQUIREMENT]
    command += _exclude_newer_args(plan)
    result = await run_process(command, cwd=project_dir, env=env, log=log)
    if result.returncode != 0:
        raise _install_failed(plan, result.tail, venv, what=RUNTIME_REQUIREMENT)
    return python


async def _create_venv(
    uv: str,
    plan: DependencyPlan,
    project_dir: Path,
    venv: Path,
    env: Mapping[str, str],
    log: LogSink,
) -> None:
    command = [uv, "venv", str(venv)]
    if plan.requires_python:
        command += ["--python", plan.requires_python]
    # Run in the project so uv also honours a .python-version file there.
    result = await run_process(command, cwd=project_dir, env=env, log=log)
    if result.returncode == 0:
        return
    if not any("No interpreter found" in line for line in result.tail):
        raise BuildError(
            "building_image_failed",
            "venv_failed",
            "Could not create the virtual environment",
            _excerpt(result.tail),
            "This is most likely a problem on the server; ask your Cloudlet operator.",
        )
    available = await _available_pythons(uv, project_dir, env)
    have = ", ".join(available) if available else "none"
    if plan.requires_python:
        wanted = f"Python {plan.requires_python} ({plan.requires_python_origin})"
    else:
        wanted = "the Python version in .python-version"
    newest = ".".join(available[0].split(".")[:2]) if available else "3.12"
    raise BuildError(
        "building_image_failed",
        "python_not_available",
        "Python version not available",
        f"The project asks for {wanted}, but this server has Python {have}.",
        f'Allow one of the available versions, for example requires-python = ">={newest}" in '
        "pyproject.toml, or ask your Cloudlet operator to install the Python version you need.",
    )


async def _available_pythons(uv: str, cwd: Path, env: Mapping[str, str]) -> list[str]:
    command = [uv, "python", "list", "--only-installed", "--output-format", "json"]
    result = await run_process(command, cwd=cwd, env=env, log=None, keep_lines=10_000)
    versions: set[str] = set()
    for line in result.tail:
        if line.startswith("["):  # the JSON document is one line; warnings may surround it
            try:
                entries = json.loads(line)
            except ValueError:
                continue
            versions.update(str(entry["version"]) for entry in entries if "version" in entry)

    def key(version: str) -> tuple[int, ...]:
        return tuple(int(part) if part.isdigit() else 0 for part in version.split("."))

    return sorted(versions, key=key, reverse=True)


def _install_command(
    uv: str, plan: DependencyPlan, project_dir: Path, python: Path
) -> tuple[list[str], dict[str, str]]:
    """The uv command for `plan` and the variables it needs (an empty command: nothing to do)."""
    if plan.source == "uv.lock":
        # The lock decides every version; --frozen installs exactly it without re-resolving.
        venv = python.parent.parent
        return [uv, "sync", "--frozen", "--no-dev"], {"UV_PROJECT_ENVIRONMENT": str(venv)}
    pip_install = [uv, "pip", "install", "--python", str(python)]
    if plan.source == "pylock.toml":
        return [*pip_install, "-r", "pylock.toml"], {}
    if plan.source == "requirements.txt":
        return [*pip_install, "-r", "requirements.txt", *_exclude_newer_args(plan)], {}
    if plan.install_project:
        return [*pip_install, str(project_dir), *_exclude_newer_args(plan)], {}
    if plan.requirements:
        return [*pip_install, *plan.requirements, *_exclude_newer_args(plan)], {}
    return [], {}


def _exclude_newer_args(plan: DependencyPlan) -> list[str]:
    return ["--exclude-newer", plan.exclude_newer] if plan.exclude_newer else []


def _venv_python_version(venv: Path) -> str:
    """The venv's Python version, from the pyvenv.cfg uv writes (`version_info = 3.12.4`)."""
    try:
        lines = (venv / "pyvenv.cfg").read_text().splitlines()
    except OSError:
        return "(unknown version)"
    for line in lines:
        key, _, value = line.partition("=")
        if key.strip() == "version_info":
            return value.strip()
    return "(unknown version)"


def _install_failed(
    plan: DependencyPlan, tail: Sequence[str], venv: Path, what: str = ""
) -> BuildError:
    source = what or plan.description
    python = _venv_python_version(venv)
    if plan.source == "uv.lock" and not what:
        hint = (
            f"Check that `uv sync --frozen --no-dev` works locally with Python {python}. If "
            "uv.lock is out of date, run `uv lock`, commit it and deploy again."
        )
    elif plan.source == "pylock.toml" and not what:
        hint = (
            f"Check that `uv pip install -r pylock.toml` works locally with Python {python}, "
            "and regenerate pylock.toml if it is out of date."
        )
    else:
        hint = (
            "Fix the requirement named in the error: a typo, a version that does not exist, or "
            f"one with no release for Python {python}. If these requirements used to install "
            "and newer releases broke them, pin the versions that worked, or make uv ignore "
            "releases newer than a date by adding to pyproject.toml:\n\n"
            f'[tool.cloudlet]\nexclude-newer = "{_EXAMPLE_DATE}"'
        )
    return BuildError(
        "building_image_failed",
        "dependency_install_failed",
        "Dependency installation failed",
        f"uv could not install the dependencies from {source}:\n{_excerpt(tail)}",
        hint,
    )


def _excerpt(lines: Sequence[str], limit: int = 20) -> str:
    """The last lines of uv's output, starting at its first error marker when there is one."""
    markers = ("error:", "\N{MULTIPLICATION SIGN}")  # plain and fancy (terminal) uv output
    start = next((i for i, line in enumerate(lines) if line.lstrip().startswith(markers)), 0)
    relevant = [line for line in lines[start:] if line.strip()]
    return "\n".join(relevant[-limit:]) or "(uv printed nothing)"
