"""Find a project's modules, name them the way its imports do, and load their facts (cached)."""

from __future__ import annotations

import fnmatch
import os
import sys
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

from cloudlet.analyze.cache import FactsCache
from cloudlet.analyze.facts import ClassFacts, FunctionFacts, ModuleFacts, extract

# Folders that never hold the project's own code.
SKIP_DIRS = frozenset(
    {
        ".git",
        ".hg",
        ".svn",
        ".venv",
        "venv",
        "node_modules",
        "__pycache__",
        ".tox",
        ".nox",
        ".mypy_cache",
        ".pytest_cache",
        ".ruff_cache",
        "site-packages",
        ".eggs",
        ".cloudlet-cache",
        ".cloudlet",
    }
)
STDLIB = frozenset(sys.stdlib_module_names)


@dataclass(frozen=True)
class SourceFile:
    path: Path
    rel: str  # posix, relative to the project root
    module: str
    is_package: bool
    alias: str  # the name relative to the project root (namespace packages import it so)


def _excluded(rel: str, patterns: Iterable[str]) -> bool:
    for pattern in patterns:
        pattern = pattern.rstrip("/")
        if fnmatch.fnmatch(rel, pattern) or fnmatch.fnmatch(rel, pattern + "/*"):
            return True
        if rel.startswith(pattern + "/"):
            return True
    return False


def find_sources(root: Path, exclude: Iterable[str] = ()) -> Iterator[SourceFile]:
    """Every `.py` file under root, with the module name its package layout gives it."""
    patterns = tuple(exclude)
    for dirpath, dirnames, filenames in os.walk(root):
        here = Path(dirpath)
        # A virtualenv is recognised by its pyvenv.cfg, whatever the folder is called.
        dirnames[:] = sorted(
            d
            for d in dirnames
            if d not in SKIP_DIRS
            and not d.endswith(".egg-info")
            and not (here / d / "pyvenv.cfg").exists()
        )
        rel_dir = here.relative_to(root).as_posix()
        if rel_dir == ".":
            rel_dir = ""
        if patterns and rel_dir and _excluded(rel_dir, patterns):
            dirnames[:] = []
            continue
        has_init = "__init__.py" in filenames
        for filename in sorted(filenames):
            if not filename.endswith(".py"):
                continue
            rel = f"{rel_dir}/{filename}" if rel_dir else filename
            if patterns and _excluded(rel, patterns):
                continue
            is_package = filename == "__init__.py"
            module = _module_name(root, rel, has_init)
            alias = ".".join(p for p in rel[:-3].split("/") if p != "__init__")
            yield SourceFile(here / filename, rel, module, is_package and has_init, alias)


def _module_name(root: Path, rel: str, in_package: bool) -> str:
    parts = rel[:-3].split("/")
    if parts[-1] == "__init__":
        parts.pop()
    if in_package:
        # Inside a package: the import root is the folder above its topmost __init__.py.
        dirs = rel.split("/")[:-1]
        top = len(dirs)
        while top > 0 and (root.joinpath(*dirs[:top], "__init__.py")).exists():
            top -= 1
        parts = parts[top:]
    elif parts and parts[0] == "src" and len(parts) > 1:
        parts = parts[1:]
    return ".".join(parts) or "__init__"


@dataclass
class Project:
    """All the facts of one project, indexed for name resolution."""

    root: Path
    modules: dict[str, ModuleFacts] = field(default_factory=dict)
    functions: dict[str, FunctionFacts] = field(default_factory=dict)
    classes: dict[str, ClassFacts] = field(default_factory=dict)
    module_of: dict[str, ModuleFacts] = field(default_factory=dict)  # qualname -> its module
    by_path: dict[str, ModuleFacts] = field(default_factory=dict)
    stats: dict[str, int] = field(default_factory=dict)

    def add(self, facts: ModuleFacts, alias: str = "") -> None:
        # Two files may claim one module name (scripts in different folders): the first keeps
        # it, and each stays reachable by its path-derived alias.
        self.modules.setdefault(facts.name, facts)
        if alias and alias != facts.name:
            self.modules.setdefault(alias, facts)
        self.by_path[facts.path] = facts
        for qualname, function in facts.functions.items():
            self.functions[qualname] = function
            self.module_of[qualname] = facts
        for qualname, cls in facts.classes.items():
            self.classes[qualname] = cls
            self.module_of[qualname] = facts

    def find_module(self, dotted: str, importer: ModuleFacts | None = None) -> str | None:
        """The project module an absolute import means, trying the importer's folders too.

        `from routers import items` in a script `backend/main.py` works when uvicorn runs from
        backend/, so there an import that names no project module is retried below the
        importer's folders (not inside a package, and never for a standard library name).
        """
        if dotted in self.modules:
            return dotted
        if importer is None or dotted.partition(".")[0] in STDLIB:
            return None
        folders = importer.path.split("/")[:-1]
        if "/".join([*folders, "__init__.py"]) in self.by_path:
            return None  # inside a package, Python 3 imports are absolute: no sibling lookup
        while folders:
            candidate = ".".join([*folders, dotted])
            if candidate in self.modules:
                return candidate
            folders.pop()
        return None


def load_project(
    root: Path,
    exclude: Iterable[str] = (),
    cache_dir: Path | None = None,
    sources: Iterable[SourceFile] | None = None,
) -> Project:
    """Parse (or take from the cache) every module of the project at root."""
    root = root.resolve()
    project = Project(root=root)
    cache = FactsCache.open(cache_dir, root) if cache_dir is not None else None
    parsed = reused = 0
    for source in sources if sources is not None else find_sources(root, exclude):
        facts, data = None, None
        if cache is not None:
            facts, data = cache.get(source.rel, source.path, source.module, source.is_package)
        if facts is None:
            if data is None:
                try:
                    data = source.path.read_bytes()
                except OSError:
                    continue
            facts = extract(data, source.module, source.rel, source.is_package)
            parsed += 1
            if cache is not None:
                cache.put(source.rel, source.path, data, facts)
        else:
            reused += 1
        project.add(facts, source.alias)
    if cache is not None:
        cache.save()
    project.stats.update(files=parsed + reused, parsed=parsed, cached=reused)
    return project
