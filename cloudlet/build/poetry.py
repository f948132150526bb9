"""Translation of Poetry's `[tool.poetry.dependencies]` into PEP 508 requirements for uv.

Poetry has its own constraint syntax (`^1.2`, `~1.2.3`, `1.*`, `>=1 <2`, `^1 || ^2`); uv needs
PEP 440. The caret and tilde rules follow Poetry's documentation exactly. PEP 440 has no "or",
so `a || b` becomes the smallest single range that covers both (in markers, it stays an "or").
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

__all__ = ["poetry_requirements", "python_constraint_to_marker", "to_pep440"]

_OPERATOR_SPACE = re.compile(r"(===|==|!=|<=|>=|~=|<|>|=|\^|~)\s+")
_CLAUSE = re.compile(r"^(===|==|!=|<=|>=|~=|<|>|=|\^|~)?\s*v?([0-9][0-9A-Za-z.*+!_-]*)$")
_RELEASE = re.compile(r"^(\d+(?:\.\d+)*)")

Clause = tuple[str, str]  # (operator, version), both PEP 440


def to_pep440(constraint: str) -> str:
    """A Poetry version constraint as a PEP 440 specifier (`""` means any version)."""
    alternatives = _alternatives(constraint)
    if len(alternatives) == 1:
        return _join(alternatives[0])
    return _join(_span(alternatives))


def python_constraint_to_marker(constraint: str) -> str:
    """A Poetry `python = "..."` constraint as a PEP 508 marker (`""` means any Python)."""
    groups = []
    for clauses in _alternatives(constraint):
        if not clauses:
            return ""
        parts = [f'python_full_version {op} "{version}"' for op, version in clauses]
        groups.append(" and ".join(parts))
    if len(groups) == 1:
        return groups[0]
    return " or ".join(f"({group})" for group in groups)


def poetry_requirements(dependencies: Mapping[str, Any], project_dir: Path) -> list[str]:
    """PEP 508 requirement strings for `[tool.poetry.dependencies]` (without `python`).

    Optional dependencies are left out: they belong to extras, which a deployment does not request.
    """
    requirements: list[str] = []
    for name, spec in dependencies.items():
        if name.lower() == "python":
            continue
        specs = spec if isinstance(spec, list) else [spec]
        for one in specs:
            requirement = _requirement(name, one, project_dir)
            if requirement is not None:
                requirements.append(requirement)
    return requirements


def _requirement(name: str, spec: Any, project_dir: Path) -> str | None:
    if isinstance(spec, str):
        return f"{name}{to_pep440(spec)}"
    if not isinstance(spec, Mapping) or spec.get("optional") is True:
        return None
    extras = spec.get("extras")
    base = f"{name}[{','.join(extras)}]" if isinstance(extras, list) and extras else name
    if isinstance(git := spec.get("git"), str):
        url = git if git.startswith("git+") else f"git+{git}"
        ref = spec.get("rev") or spec.get("tag") or spec.get("branch")
        requirement = f"{base} @ {url}{f'@{ref}' if ref else ''}"
        if isinstance(subdirectory := spec.get("subdirectory"), str):
            requirement += f"#subdirectory={subdirectory}"
    elif isinstance(path := spec.get("path"), str):
        requirement = f"{base} @ {(project_dir / path).resolve().as_uri()}"
    elif isinstance(direct_url := spec.get("url"), str):
        requirement = f"{base} @ {direct_url}"
    else:
        version = spec.get("version")
        requirement = f"{base}{to_pep440(version) if isinstance(version, str) else ''}"
    markers = []
    if isinstance(python := spec.get("python"), str) and (
        marker := python_constraint_to_marker(python)
    ):
        markers.append(marker)
    if isinstance(platform := spec.get("platform"), str):
        markers.append(f'sys_platform == "{platform}"')
    if isinstance(extra_markers := spec.get("markers"), str) and extra_markers.strip():
        markers.append(extra_markers.strip())
    if not markers:
        return requirement
    # A direct URL needs a space before ";" or the marker is read as part of the URL.
    joined = " and ".join(f"({marker})" if len(markers) > 1 else marker for marker in markers)
    return f"{requirement} ; {joined}"


def _alternatives(constraint: str) -> list[list[Clause]]:
    return [_clauses(part) for part in constraint.split("||")]


def _clauses(constraint: str) -> list[Clause]:
    text = _OPERATOR_SPACE.sub(r"\1", constraint.strip())
    clauses: list[Clause] = []
    for token in re.split(r"[,\s]+", text):
        if token in ("", "*"):
            continue
        match = _CLAUSE.match(token)
        if match is None:
            raise ValueError(f"not a Poetry version constraint: {constraint!r}")
        op, version = match.group(1) or "", match.group(2)
        clauses.extend(_clause(op, version))
    return clauses


def _clause(op: str, version: str) -> list[Clause]:
    if op == "^":
        return [(">=", version), ("<", _caret_upper(version))]
    if op == "~":
        return [(">=", version), ("<", _bump(version, 1 if len(_release(version)) > 1 else 0))]
    if op == "~=" and len(_release(version)) < 2:  # PEP 440 needs two parts; Poetry allows one
        return [(">=", version), ("<", _bump(version, 0))]
    if op in ("", "="):
        return [("==", version)]
    return [(op, version)]


def _caret_upper(version: str) -> str:
    """`^` allows changes that do not modify the left-most non-zero part of the given version."""
    release = _release(version)
    index = next(
        (i for i, part in enumerate(release) if part != 0),
        len(release) - 1,
    )
    return _bump(version, index)


def _bump(version: str, index: int) -> str:
    release = _release(version)
    bumped = [*release[:index], release[index] + 1]
    bumped += [0] * (len(release) - len(bumped))
    return ".".join(str(part) for part in bumped)


def _release(version: str) -> list[int]:
    match = _RELEASE.match(version)
    if match is None:
        raise ValueError(f"not a version: {version!r}")
    return [int(part) for part in match.group(1).split(".")]


def _expand_wildcards(clauses: list[Clause]) -> list[Clause]:
    """`==1.2.*` as `>=1.2,<1.3`, so it has bounds that can be compared."""
    expanded: list[Clause] = []
    for op, version in clauses:
        if op == "==" and version.endswith(".*"):
            prefix = version.removesuffix(".*")
            expanded += [(">=", prefix), ("<", _bump(prefix, len(_release(prefix)) - 1))]
        else:
            expanded.append((op, version))
    return expanded


def _span(alternatives: list[list[Clause]]) -> list[Clause]:
    """The smallest single range containing every alternative (exclusions are dropped)."""
    bounds = [_bounds(_expand_wildcards(clauses)) for clauses in alternatives]
    lowers = [lower for lower, _ in bounds]
    uppers = [upper for _, upper in bounds]
    span: list[Clause] = []
    if all(lower is not None for lower in lowers):
        span.append(min(filter(None, lowers), key=lambda c: (_key(c[1]), c[0] == ">")))
    if all(upper is not None for upper in uppers):
        span.append(max(filter(None, uppers), key=lambda c: (_key(c[1]), c[0] == "<=")))
    return span


def _bounds(clauses: list[Clause]) -> tuple[Clause | None, Clause | None]:
    """The tightest lower and upper bound of clauses that all must hold."""
    lower: Clause | None = None
    upper: Clause | None = None
    for op, version in clauses:
        if op in (">=", ">", "==", "===", "~="):
            candidate = (">" if op == ">" else ">=", version)
            if lower is None or _key(version) > _key(lower[1]):
                lower = candidate
        if op in ("<", "<=", "==", "==="):
            candidate = ("<" if op == "<" else "<=", version)
            if upper is None or _key(version) < _key(upper[1]):
                upper = candidate
        if op == "~=":
            release = _release(version)
            candidate = ("<", _bump(version, len(release) - 2))
            if upper is None or _key(candidate[1]) < _key(upper[1]):
                upper = candidate
    return lower, upper


def _key(version: str) -> tuple[int, ...]:
    release = _release(version)
    return tuple(release + [0] * (8 - len(release)))


def _join(clauses: list[Clause]) -> str:
    return ",".join(f"{op}{version}" for op, version in clauses)
