"""Reading the uploaded project's pyproject.toml."""

from __future__ import annotations

import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from cloudlet.build.errors import BuildError

__all__ = ["load_pyproject", "optional_string", "table"]


def load_pyproject(project_dir: Path) -> dict[str, Any]:
    """The parsed pyproject.toml of `project_dir`, or `{}` when there is none."""
    path = project_dir / "pyproject.toml"
    if not path.is_file():
        return {}
    try:
        with path.open("rb") as file:
            return tomllib.load(file)
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise invalid_pyproject(f"pyproject.toml could not be parsed: {exc}.") from None


def table(data: Mapping[str, Any], *keys: str) -> dict[str, Any]:
    """The nested table at `keys`, or `{}` when a level is missing or is not a table."""
    current: Any = data
    for key in keys:
        current = current.get(key) if isinstance(current, Mapping) else None
    return dict(current) if isinstance(current, Mapping) else {}


def optional_string(section: Mapping[str, Any], key: str, where: str) -> str | None:
    """`section[key]` if it is a non-empty string, `None` if absent; anything else is an error."""
    value = section.get(key)
    if value is None:
        return None
    if not isinstance(value, str) or not value.strip():
        raise invalid_pyproject(f"`{key}` in {where} must be a non-empty string, not {value!r}.")
    return value.strip()


def invalid_pyproject(message: str) -> BuildError:
    return BuildError(
        "building_image_failed",
        "invalid_pyproject",
        "Invalid pyproject.toml",
        message,
        "Fix pyproject.toml and deploy again. `uv lock` run locally reports the exact line of a "
        "syntax error.",
    )
