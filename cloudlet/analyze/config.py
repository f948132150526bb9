"""`[tool.cloudlet.analyze]` in a project's pyproject.toml.

[tool.cloudlet.analyze]
exclude = ["scripts/**", "tests"]          # paths (globs) the analyzer never reads
non-blocking = ["mylib.fast_lookup"]        # catalog entries this project does not want
cache-dir = ".cloudlet-cache"               # relative to the project

[tool.cloudlet.analyze.blocking]            # more blocking APIs: name = kind, or a table
"mycompany.legacy.fetch" = "http"
"mycompany.reports.render" = { kind = "cpu", fix = "await run_in_threadpool(render, ...)" }
"""

from __future__ import annotations

import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

DEFAULT_CACHE_DIR = ".cloudlet-cache"


class ConfigError(ValueError):
    """pyproject.toml has a `[tool.cloudlet.analyze]` table the analyzer cannot use."""


@dataclass(frozen=True)
class Config:
    exclude: tuple[str, ...] = ()
    blocking: Mapping[str, str | Mapping[str, str]] = field(default_factory=dict)
    non_blocking: tuple[str, ...] = ()
    cache_dir: str = DEFAULT_CACHE_DIR

    @classmethod
    def from_table(
        cls, table: Mapping[str, Any], source: str = "[tool.cloudlet.analyze]"
    ) -> Config:
        known = {"exclude", "blocking", "non-blocking", "cache-dir"}
        unknown = sorted(set(table) - known)
        if unknown:
            raise ConfigError(
                f"{source}: unknown key(s) {', '.join(unknown)}; known: {sorted(known)}"
            )
        exclude = _strings(table.get("exclude", []), f"{source}.exclude")
        non_blocking = _strings(table.get("non-blocking", []), f"{source}.non-blocking")
        blocking_table = table.get("blocking", {})
        if not isinstance(blocking_table, Mapping):
            raise ConfigError(f"{source}.blocking must be a table of name = kind")
        blocking: dict[str, str | Mapping[str, str]] = {}
        for name, spec in blocking_table.items():
            if isinstance(spec, str):
                blocking[name] = spec
            elif isinstance(spec, Mapping) and all(
                k in {"kind", "message", "fix"} and isinstance(v, str) for k, v in spec.items()
            ):
                blocking[name] = dict(spec)
            else:
                raise ConfigError(
                    f'{source}.blocking.{name!r}: expected a kind such as "http" or a table '
                    "with kind / message / fix strings"
                )
        cache_dir = table.get("cache-dir", DEFAULT_CACHE_DIR)
        if not isinstance(cache_dir, str):
            raise ConfigError(f"{source}.cache-dir must be a string")
        return cls(tuple(exclude), blocking, tuple(non_blocking), cache_dir)

    @classmethod
    def from_project(cls, root: Path) -> Config:
        """The project's configuration (defaults when pyproject.toml has none)."""
        pyproject = root / "pyproject.toml"
        if not pyproject.is_file():
            return cls()
        try:
            data = tomllib.loads(pyproject.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
            raise ConfigError(f"{pyproject}: {exc}") from exc
        table = data.get("tool", {}).get("cloudlet", {}).get("analyze")
        if table is None:
            return cls()
        if not isinstance(table, Mapping):
            raise ConfigError(f"{pyproject}: [tool.cloudlet.analyze] must be a table")
        return cls.from_table(table, f"{pyproject.name} [tool.cloudlet.analyze]")


def _strings(value: object, where: str) -> list[str]:
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise ConfigError(f"{where} must be a list of strings")
    return list(value)
