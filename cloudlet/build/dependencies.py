"""Deciding where a project's dependencies come from, in FastAPI Cloud's order.

uv.lock → pyproject `[project]` → pylock.toml → requirements.txt → Poetry → `fastapi[standard]`.
Only files are read here; installing is `install.py`'s job.
"""

from __future__ import annotations

import datetime
from collections.abc import Mapping
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Literal

from cloudlet.build.poetry import poetry_requirements, to_pep440
from cloudlet.build.pyproject import invalid_pyproject, load_pyproject, optional_string, table

__all__ = ["DEFAULT_REQUIREMENTS", "DependencyPlan", "DependencySource", "plan_dependencies"]

DependencySource = Literal[
    "uv.lock", "pyproject.toml", "pylock.toml", "requirements.txt", "poetry", "default"
]

DEFAULT_REQUIREMENTS = ("fastapi[standard]",)

_DESCRIPTIONS: dict[DependencySource, str] = {
    "uv.lock": "uv.lock",
    "pyproject.toml": "pyproject.toml ([project] dependencies)",
    "pylock.toml": "pylock.toml",
    "requirements.txt": "requirements.txt",
    "poetry": "pyproject.toml ([tool.poetry.dependencies], translated to PEP 440)",
    "default": "no dependency file, so the default fastapi[standard]",
}


@dataclass(frozen=True)
class DependencyPlan:
    source: DependencySource
    requirements: tuple[str, ...] = ()  # what to `uv pip install`, for sources that are not files
    install_project: bool = False  # pyproject with a [build-system]: install the project itself
    requires_python: str | None = None
    requires_python_origin: str = ""  # where requires_python was written, for messages
    exclude_newer: str | None = None  # [tool.cloudlet] exclude-newer, passed to uv

    @property
    def description(self) -> str:
        return _DESCRIPTIONS[self.source]


def plan_dependencies(project_dir: Path) -> DependencyPlan:
    """Choose how to install `project_dir`'s dependencies. Raises `BuildError` for bad config."""
    pyproject = load_pyproject(project_dir)
    project = table(pyproject, "project")
    poetry = table(pyproject, "tool", "poetry", "dependencies")
    requires_python = optional_string(project, "requires-python", "[project]")
    origin = "requires-python in pyproject.toml" if requires_python else ""
    if requires_python is None and isinstance(poetry.get("python"), str):
        requires_python = _pep440(poetry["python"], "python in [tool.poetry.dependencies]") or None
        origin = "python in [tool.poetry.dependencies]"
    default = DependencyPlan(
        "default",
        DEFAULT_REQUIREMENTS,
        requires_python=requires_python,
        requires_python_origin=origin,
        exclude_newer=_exclude_newer(pyproject),
    )

    is_uv_project = "project" in pyproject or bool(table(pyproject, "tool", "uv", "workspace"))
    if is_uv_project and (project_dir / "uv.lock").is_file():
        return replace(default, source="uv.lock", requirements=())

    dependencies = _string_list(project.get("dependencies", []), "dependencies in [project]")
    buildable = "project" in pyproject and bool(table(pyproject, "build-system"))
    if dependencies or buildable:
        return replace(
            default,
            source="pyproject.toml",
            requirements=tuple(dependencies),
            install_project=buildable,
        )
    if (project_dir / "pylock.toml").is_file():
        return replace(default, source="pylock.toml", requirements=())
    if (project_dir / "requirements.txt").is_file():
        return replace(default, source="requirements.txt", requirements=())
    if any(name.lower() != "python" for name in poetry):
        try:
            requirements = poetry_requirements(poetry, project_dir)
        except ValueError as exc:
            raise invalid_pyproject(f"[tool.poetry.dependencies]: {exc}.") from None
        return replace(default, source="poetry", requirements=tuple(requirements))
    return default


def _exclude_newer(pyproject: Mapping[str, Any]) -> str | None:
    value = table(pyproject, "tool", "cloudlet").get("exclude-newer")
    # TOML has a native date type, so `exclude-newer = 2024-06-01` (unquoted) is a date already.
    if isinstance(value, datetime.date):
        return value.isoformat()
    if isinstance(value, str):
        for parse in (datetime.date.fromisoformat, datetime.datetime.fromisoformat):
            try:
                parse(value)
            except ValueError:
                continue
            return value
    if value is None:
        return None
    raise invalid_pyproject(
        f'exclude-newer in [tool.cloudlet] must be a date like "2024-06-01", not {value!r}.'
    )


def _string_list(value: Any, where: str) -> list[str]:
    if not isinstance(value, list) or not all(isinstance(item, str) for item in value):
        raise invalid_pyproject(f"{where} must be a list of requirement strings.")
    return [item for item in value if item.strip()]


def _pep440(constraint: str, where: str) -> str:
    try:
        return to_pep440(constraint)
    except ValueError as exc:
        raise invalid_pyproject(f"{where}: {exc}.") from None
