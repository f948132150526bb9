"""Finding the app to serve, statically: nothing from the upload is imported at build time.

The order: `[tool.fastapi] entrypoint` in pyproject.toml, then `fastapi run`'s own discovery
(default files, `app` / `api` / first FastAPI instance), then a `uvicorn.run("module:app")` in that
default file, then a scan of every Python file for a module-level FastAPI instance.

`fastapi run` imports its default file and checks with isinstance(), which sees through any
FastAPI subclass from any package; a static reader cannot. So in a default file a module-level
`app` (else `api`) is taken even when nothing shows it is a FastAPI instance, unless it visibly is
something else (a literal, a Typer, an APIRouter ...): importing the revision checks it. The
project-wide scan only takes what is visibly a FastAPI instance.
"""

from __future__ import annotations

import ast
import keyword
import os
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from cloudlet.build.errors import BuildError
from cloudlet.build.pyproject import load_pyproject, optional_string, table

__all__ = ["DEFAULT_FILES", "AppLocation", "find_app"]

# fastapi-cli's default files, in its order (fastapi_cli/discover.py).
DEFAULT_FILES = ("main.py", "app.py", "api.py", "app/main.py", "app/app.py", "app/api.py")
_PREFERRED_NAMES = ("app", "api")
# Calls that visibly build something other than an ASGI app, by qualified name.
_NOT_APPS = frozenset(
    {
        "argparse.ArgumentParser",
        "celery.Celery",
        "click.Command",
        "click.Group",
        "click.command",
        "click.group",
        "django.core.wsgi.get_wsgi_application",
        "fastapi.APIRouter",
        "fastapi.routing.APIRouter",
        "flask.Flask",
        "typer.Typer",
    }
)
_LITERALS = (
    ast.Constant,
    ast.JoinedStr,
    ast.List,
    ast.Tuple,
    ast.Dict,
    ast.Set,
    ast.ListComp,
    ast.SetComp,
    ast.DictComp,
    ast.GeneratorExp,
)
_SKIPPED_DIRS = frozenset(
    {"__pycache__", "node_modules", "site-packages", "tests", "test", "venv", "env", "virtualenv"}
)
_SKIPPED_FILES = frozenset({"conftest.py", "setup.py", "noxfile.py"})
_MAX_SCANNED_FILES = 5000
_MAX_FILE_BYTES = 1 << 20
_MAX_IMPORT_HOPS = 4
_IDENTIFIER = r"[A-Za-z_][A-Za-z0-9_]*"
_ENTRYPOINT = re.compile(rf"{_IDENTIFIER}(\.{_IDENTIFIER})*:{_IDENTIFIER}(\.{_IDENTIFIER})*")
_HINT = (
    "Tell Cloudlet where the app is in pyproject.toml:\n\n"
    '[tool.fastapi]\nentrypoint = "main:app"\n\n'
    '("main" is the module, "app" the variable holding FastAPI().) If the app lives in a '
    "sub-folder of what you deploy, set that folder with "
    "`fastapi cloud apps update --directory <folder>`."
)


@dataclass(frozen=True)
class AppLocation:
    import_root: Path  # the folder to put first on sys.path
    entrypoint: str  # "module.sub:attr"
    reason: str  # how it was found, for the build log


def find_app(project_dir: Path) -> AppLocation:
    """Locate the FastAPI app in `project_dir`. Raises `BuildError` when there is none."""
    finder = _Finder(project_dir)
    configured = optional_string(
        table(load_pyproject(project_dir), "tool", "fastapi"), "entrypoint", "[tool.fastapi]"
    )
    if configured is not None:
        return finder.configured(configured)

    default_file = next((name for name in DEFAULT_FILES if (project_dir / name).is_file()), None)
    if default_file is not None:
        path = project_dir / default_file
        module, root, moved = finder.import_name(path)
        if names := finder.apps_in(path):
            attr = _preferred(names)
            reason = f"`{attr}` in {default_file}, found like `fastapi run` does{moved}"
            return AppLocation(root, f"{module}:{attr}", reason)
        if guess := finder.named_app(path):
            attr, value = guess
            reason = (
                f"`{attr}` in {default_file}, taken by its name like `fastapi run` does; its "
                f"value ({value}) is not visibly a FastAPI() instance, so importing the app "
                f"checks it{moved}"
            )
            return AppLocation(root, f"{module}:{attr}", reason)
        if located := finder.uvicorn_target(path, default_file):
            return located

    located, scanned = finder.scan()
    if located is not None:
        return located
    default_files = ", ".join(DEFAULT_FILES)
    seen = (
        f"{default_file} has no FastAPI app, nor an `app` or `api` that could be one"
        if default_file
        else "none of them exists"
    )
    raise BuildError(
        "building_image_failed",
        "app_not_found",
        "No FastAPI app found",
        "Looked for [tool.fastapi] entrypoint in pyproject.toml (not set), then for "
        f"`fastapi run`'s default files {default_files} ({seen}), then scanned {scanned} "
        "Python files for a module-level FastAPI() instance, and found none.",
        _HINT,
    )


@dataclass
class _Symbols:
    """What one module binds at its top level, as far as finding the app is concerned."""

    apps: set[str] = field(default_factory=set)  # bound to a FastAPI instance here
    # bound by an assignment to something that may be an app, with that value, for the log
    maybe_apps: dict[str, str] = field(default_factory=dict)
    factories: set[str] = field(default_factory=set)  # functions here that build a FastAPI app
    imported: dict[str, tuple[int, str, str]] = field(default_factory=dict)  # (level, module, name)
    calls: dict[str, str] = field(default_factory=dict)  # `name = imported_function(...)`
    names: set[str] = field(default_factory=set)  # every top-level name
    stored: set[str] = field(default_factory=set)  # every name assigned anywhere in the file
    dynamic: bool = False  # `import *` or globals(): top-level names cannot be listed
    uvicorn_targets: list[str] = field(default_factory=list)
    absolute_imports: set[tuple[str, ...]] = field(default_factory=set)  # `from a.b import c`


class _Finder:
    def __init__(self, project_dir: Path) -> None:
        self.project_dir = project_dir
        self._symbols: dict[Path, _Symbols | None] = {}

    def configured(self, entrypoint: str) -> AppLocation:
        if not _ENTRYPOINT.fullmatch(entrypoint):
            raise BuildError(
                "building_image_failed",
                "invalid_entrypoint",
                "Invalid entrypoint",
                f'[tool.fastapi] entrypoint = "{entrypoint}" is not of the form "module:variable".',
                _HINT,
            )
        module, _, attr = entrypoint.partition(":")
        if module.endswith(".py"):  # a file name where a module name belongs: main.py:app
            suggestion = f"{module.removesuffix('.py')}:{attr}"
            raise BuildError(
                "building_image_failed",
                "invalid_entrypoint",
                "Invalid entrypoint",
                f'[tool.fastapi] entrypoint = "{entrypoint}" names a file, not a module.',
                f'Use the module\'s import name: entrypoint = "{suggestion}".',
            )
        reason = "[tool.fastapi] entrypoint"
        for root in (self.project_dir, self.project_dir / "src"):
            path = _module_file(root, module.split("."))
            if path is None:
                continue
            symbols = self.symbols(path)
            name = attr.split(".")[0]
            if symbols is not None and not symbols.dynamic and name not in symbols.stored:
                raise BuildError(
                    "building_image_failed",
                    "invalid_entrypoint",
                    "Entrypoint not found",
                    f'[tool.fastapi] entrypoint = "{entrypoint}", but '
                    f"{path.relative_to(self.project_dir).as_posix()} never defines `{name}`.",
                    "Point entrypoint at the variable that holds your FastAPI() instance.",
                )
            return AppLocation(root, entrypoint, reason)
        # Not in the upload: it may come from an installed package, as `fastapi run` allows.
        return AppLocation(self.project_dir, entrypoint, f"{reason}, from an installed package")

    def uvicorn_target(self, path: Path, relative: str) -> AppLocation | None:
        """A `uvicorn.run("pkg.server:app")` in a script, when that module exists here."""
        symbols = self.symbols(path)
        for target in symbols.uvicorn_targets if symbols else []:
            module, _, attr = target.partition(":")
            # `python main.py` puts main.py's folder first on sys.path.
            for root in dict.fromkeys((path.parent, self.project_dir)):
                target_path = _module_file(root, module.split("."))
                target_symbols = self.symbols(target_path) if target_path else None
                if target_symbols is None:
                    continue
                if target_symbols.dynamic or attr.split(".")[0] in target_symbols.stored:
                    return AppLocation(root, target, f'uvicorn.run("{target}") in {relative}')
        return None

    def import_name(self, path: Path) -> tuple[str, Path, str]:
        """The import name of `path`, the folder to put on sys.path, and why, for the log.

        First fastapi-cli's rule (`_module_name`). But a namespace package (a folder without
        `__init__.py`) stops that walk too early: `titiler/application/main.py` comes out as
        `application.main`, while its code does `from titiler.application import ...`, which
        would import it a second time under the other name. So when the module's own absolute
        imports start with the name of a folder above it (inside the project, and not `src`)
        that leads into the project, the import root moves up to that folder's parent.
        """
        module, root = _module_name(path, self.project_dir)
        symbols = self.symbols(path)
        if symbols is None:
            return module, root, ""
        chosen: Path | None = None
        folder = root
        while folder != self.project_dir and folder.is_relative_to(self.project_dir):
            prefix = root.relative_to(folder.parent).parts
            if (
                folder.name != "src"
                and all(_importable(part) for part in prefix)
                and any(_leads_into(folder, parts) for parts in symbols.absolute_imports)
            ):
                chosen = folder  # keep going: the outermost one wins
            folder = folder.parent
        if chosen is None:
            return module, root, ""
        prefix = root.relative_to(chosen.parent).parts
        name = ".".join([*prefix, module])
        return (
            name,
            chosen.parent,
            f"; imported as {name}, since its own imports use `{chosen.name}.`",
        )

    def named_app(self, path: Path) -> tuple[str, str] | None:
        """`app`, else `api`, bound at the top of `path` to what may be an app, and its value."""
        for name in _PREFERRED_NAMES:
            if (value := self._maybe_app(path, name, 0)) is not None:
                return name, value
        return None

    def _maybe_app(self, path: Path, name: str, hops: int) -> str | None:
        symbols = self.symbols(path)
        if symbols is None or hops > _MAX_IMPORT_HOPS:
            return None
        if name in symbols.maybe_apps:
            return symbols.maybe_apps[name]
        if name not in symbols.imported:
            return None
        level, module, attr = symbols.imported[name]
        source = f"imported from {'.' * level}{module}"
        target = self._resolve(path, level, module)
        if target is None:  # an installed package, most likely
            return source if level == 0 else None
        target_symbols = self.symbols(target)
        if target_symbols is None:
            return None
        if target_symbols.dynamic or self._is_app(target, attr, hops + 1):
            return source
        return None if self._maybe_app(target, attr, hops + 1) is None else source

    def scan(self) -> tuple[AppLocation | None, int]:
        """The best module-level FastAPI instance in the project: shallow paths, `app`/`api`."""
        best: tuple[tuple[int, int, str], AppLocation] | None = None
        scanned = 0
        for path in _python_files(self.project_dir):
            scanned += 1
            # Moving the import root up only adds importable parts in front.
            if not all(
                _importable(part) for part in _module_name(path, self.project_dir)[0].split(".")
            ):
                continue  # not importable under that name
            names = self.apps_in(path)
            if not names:
                continue
            module, root, moved = self.import_name(path)
            attr = _preferred(names)
            relative = path.relative_to(self.project_dir)
            # A src/ layout is as shallow as the same files at the top.
            depth = len(relative.parts) - (relative.parts[0] == "src")
            rank = _PREFERRED_NAMES.index(attr) if attr in _PREFERRED_NAMES else 2
            key = (depth, rank, relative.as_posix())
            if best is None or key < best[0]:
                reason = f"`{attr}` in {relative.as_posix()}, found by scanning the project{moved}"
                best = (key, AppLocation(root, f"{module}:{attr}", reason))
        return (best[1] if best else None), scanned

    def apps_in(self, path: Path) -> list[str]:
        symbols = self.symbols(path)
        if symbols is None:
            return []
        return sorted(name for name in symbols.names if self._is_app(path, name, 0))

    def symbols(self, path: Path) -> _Symbols | None:
        if path not in self._symbols:
            self._symbols[path] = _read_symbols(path)
        return self._symbols[path]

    def _is_app(self, path: Path, name: str, hops: int) -> bool:
        symbols = self.symbols(path)
        if symbols is None or hops > _MAX_IMPORT_HOPS:
            return False
        if name in symbols.apps:
            return True
        if name in symbols.calls:  # app = create_app(), with create_app imported
            level, module, attr = symbols.imported[symbols.calls[name]]
            target = self._resolve(path, level, module)
            return target is not None and self._is_factory(target, attr, hops + 1)
        if name in symbols.imported:  # from .core import app
            level, module, attr = symbols.imported[name]
            target = self._resolve(path, level, module)
            return target is not None and self._is_app(target, attr, hops + 1)
        return False

    def _is_factory(self, path: Path, name: str, hops: int) -> bool:
        symbols = self.symbols(path)
        if symbols is None or hops > _MAX_IMPORT_HOPS:
            return False
        if name in symbols.factories:
            return True
        if name in symbols.imported:
            level, module, attr = symbols.imported[name]
            target = self._resolve(path, level, module)
            return target is not None and self._is_factory(target, attr, hops + 1)
        return False

    def _resolve(self, importer: Path, level: int, module: str) -> Path | None:
        """The file an import in `importer` refers to, if it is part of the project."""
        name, root = _module_name(importer, self.project_dir)
        wanted = module.split(".") if module else []
        if level == 0:
            roots = dict.fromkeys((root, self.project_dir, self.project_dir / "src"))
            return next(
                (path for r in roots if (path := _module_file(r, wanted)) is not None), None
            )
        package = name.split(".")
        if importer.name != "__init__.py":
            package = package[:-1]
        if level - 1 > len(package):
            return None
        return _module_file(root, [*package[: len(package) - (level - 1)], *wanted])


def _read_symbols(path: Path) -> _Symbols | None:
    try:
        if path.stat().st_size > _MAX_FILE_BYTES:
            return None
        tree = ast.parse(path.read_bytes(), filename=str(path))
    except (OSError, SyntaxError, ValueError, RecursionError):
        return None
    return _SymbolReader().read(tree)


class _SymbolReader:
    def __init__(self) -> None:
        self.symbols = _Symbols()
        self.fastapi_classes: set[str] = set()  # names of FastAPI (aliases, subclasses)
        self.fastapi_modules: set[str] = set()  # names of the fastapi module
        self.modules: dict[str, str] = {}  # `import a.b as x`: x -> a.b; `import a.b`: a -> a
        self.defined: set[str] = set()  # top-level functions and classes
        self.uvicorn_modules: set[str] = set()
        self.uvicorn_runs: set[str] = set()  # `from uvicorn import run`

    def read(self, tree: ast.Module) -> _Symbols:
        statements = list(_top_level(tree.body))
        for statement in statements:  # imports, classes and functions first: they name things
            if isinstance(statement, ast.Import | ast.ImportFrom):
                self._import(statement)
            elif isinstance(statement, ast.ClassDef):
                self.symbols.names.add(statement.name)
                self.defined.add(statement.name)
                if any(self._is_fastapi(base) for base in statement.bases):
                    self.fastapi_classes.add(statement.name)
            elif isinstance(statement, ast.FunctionDef | ast.AsyncFunctionDef):
                self.symbols.names.add(statement.name)
                self.defined.add(statement.name)
                if isinstance(statement, ast.FunctionDef) and self._builds_app(statement):
                    self.symbols.factories.add(statement.name)
        for statement in statements:
            if isinstance(statement, ast.Assign | ast.AnnAssign):
                self._assign(statement)
        for node in ast.walk(tree):
            self._everywhere(node)
        return self.symbols

    def _import(self, node: ast.Import | ast.ImportFrom) -> None:
        for alias in node.names:
            if isinstance(node, ast.Import):
                bound = alias.asname or alias.name.split(".")[0]
                if alias.name == "fastapi":
                    self.fastapi_modules.add(bound)
                if alias.name == "uvicorn":
                    self.uvicorn_modules.add(bound)
                self.modules[bound] = alias.name if alias.asname else bound
                self.symbols.names.add(bound)
                continue
            if alias.name == "*":
                self.symbols.dynamic = True
                continue
            bound = alias.asname or alias.name
            source = node.module or ""
            if node.level == 0 and alias.name == "FastAPI" and source.startswith("fastapi"):
                self.fastapi_classes.add(bound)
            if node.level == 0 and source == "uvicorn" and alias.name == "run":
                self.uvicorn_runs.add(bound)
            self.symbols.names.add(bound)
            self.symbols.imported[bound] = (node.level, source, alias.name)

    def _assign(self, node: ast.Assign | ast.AnnAssign) -> None:
        targets = node.targets if isinstance(node, ast.Assign) else [node.target]
        names = [target.id for target in targets if isinstance(target, ast.Name)]
        self.symbols.names.update(names)
        value = node.value
        is_app = (
            isinstance(node, ast.AnnAssign)
            and value is not None
            and self._is_fastapi(node.annotation)
        )
        imported_callee = None
        if isinstance(value, ast.Call):
            func = value.func
            local_factory = isinstance(func, ast.Name) and func.id in self.symbols.factories
            if self._is_fastapi(func) or local_factory:
                is_app = True
            elif isinstance(func, ast.Name) and func.id in self.symbols.imported:
                imported_callee = func.id
        for name in names:
            if is_app:
                self.symbols.apps.add(name)
            elif imported_callee is not None:
                self.symbols.calls[name] = imported_callee
            if not is_app and value is not None and not self._not_an_app(value):
                self.symbols.maybe_apps.setdefault(name, _describe(value))

    def _not_an_app(self, value: ast.expr) -> bool:
        """Whether `value` visibly is no app instance: a literal, a Typer(), a bare function."""
        if isinstance(value, _LITERALS):
            return True
        if isinstance(value, ast.Name) and (
            value.id in self.defined or value.id in self.fastapi_classes
        ):
            return True  # a function or class, not an instance of one
        return isinstance(value, ast.Call) and self._qualified(value.func) in _NOT_APPS

    def _qualified(self, expr: ast.expr) -> str | None:
        """`typer.Typer` for `typer.Typer`, `Typer` from `from typer import Typer` ..."""
        if isinstance(expr, ast.Attribute):
            owner = self._qualified(expr.value)
            return None if owner is None else f"{owner}.{expr.attr}"
        if not isinstance(expr, ast.Name):
            return None
        if expr.id in self.modules:
            return self.modules[expr.id]
        level, module, name = self.symbols.imported.get(expr.id, (1, "", ""))
        return f"{module}.{name}" if level == 0 else None

    def _everywhere(self, node: ast.AST) -> None:
        if isinstance(node, ast.Name) and isinstance(node.ctx, ast.Store):
            self.symbols.stored.add(node.id)
        elif isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
            self.symbols.stored.add(node.name)
        elif isinstance(node, ast.alias):
            self.symbols.stored.add(node.asname or node.name.split(".")[0])
        elif isinstance(node, ast.Import):
            self.symbols.absolute_imports.update(tuple(a.name.split(".")) for a in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            module = tuple(node.module.split("."))
            self.symbols.absolute_imports.update(
                module if alias.name == "*" else (*module, alias.name) for alias in node.names
            )
        elif isinstance(node, ast.Call):
            if isinstance(node.func, ast.Name) and node.func.id == "globals":
                self.symbols.dynamic = True
            elif self._is_uvicorn_run(node.func):
                self._uvicorn_run(node)

    def _uvicorn_run(self, call: ast.Call) -> None:
        keywords = {keyword.arg: keyword.value for keyword in call.keywords if keyword.arg}
        factory = keywords.get("factory")
        if isinstance(factory, ast.Constant) and factory.value is True:
            return  # names a function that builds the app, not the app
        target = call.args[0] if call.args else keywords.get("app")
        if (
            isinstance(target, ast.Constant)
            and isinstance(target.value, str)
            and _ENTRYPOINT.fullmatch(target.value)
        ):
            self.symbols.uvicorn_targets.append(target.value)

    def _is_uvicorn_run(self, func: ast.expr) -> bool:
        if isinstance(func, ast.Name):
            return func.id in self.uvicorn_runs
        return (
            isinstance(func, ast.Attribute)
            and func.attr == "run"
            and isinstance(func.value, ast.Name)
            and func.value.id in self.uvicorn_modules
        )

    def _is_fastapi(self, expr: ast.expr) -> bool:
        if isinstance(expr, ast.Name):
            return expr.id in self.fastapi_classes
        if isinstance(expr, ast.Constant):  # a string annotation: app: "FastAPI" = ...
            return isinstance(expr.value, str) and expr.value in self.fastapi_classes
        return (
            isinstance(expr, ast.Attribute)
            and expr.attr == "FastAPI"
            and isinstance(expr.value, ast.Name)
            and expr.value.id in self.fastapi_modules
        )

    def _builds_app(self, function: ast.FunctionDef) -> bool:
        if function.returns is not None and self._is_fastapi(function.returns):
            return True
        return any(
            isinstance(node, ast.Call) and self._is_fastapi(node.func)
            for node in ast.walk(function)
        )


def _top_level(statements: list[ast.stmt]) -> Iterator[ast.stmt]:
    """Statements that run at import time: the body, and inside if/try/with, not in functions."""
    for statement in statements:
        yield statement
        if isinstance(statement, ast.If):
            yield from _top_level(statement.body)
            yield from _top_level(statement.orelse)
        elif isinstance(statement, ast.Try | ast.TryStar):
            yield from _top_level(statement.body)
            for handler in statement.handlers:
                yield from _top_level(handler.body)
            yield from _top_level(statement.orelse)
            yield from _top_level(statement.finalbody)
        elif isinstance(statement, ast.With):
            yield from _top_level(statement.body)


def _module_name(path: Path, project_dir: Path) -> tuple[str, Path]:
    """The import name of `path` and the folder to put on sys.path, like fastapi-cli does.

    Parent folders count as packages while they contain an `__init__.py`, but never above the
    project folder, which is where the app runs.
    """
    module_path = path.parent if path.name == "__init__.py" else path
    parts = [module_path.stem if module_path.is_file() else module_path.name]
    root = module_path.parent
    while (
        root != project_dir
        and root.is_relative_to(project_dir)
        and (root / "__init__.py").is_file()
    ):
        parts.insert(0, root.name)
        root = root.parent
    return ".".join(parts), root


def _importable(name: str) -> bool:
    return name.isidentifier() and not keyword.iskeyword(name)


def _leads_into(folder: Path, parts: tuple[str, ...]) -> bool:
    """Whether an import of `parts` (`folder.name`, then more) reaches into `folder`."""
    if len(parts) < 2 or parts[0] != folder.name:
        return False
    return (folder / parts[1]).is_dir() or (folder / f"{parts[1]}.py").is_file()


def _describe(value: ast.expr) -> str:
    text = f"{ast.unparse(value.func)}(...)" if isinstance(value, ast.Call) else ast.unparse(value)
    return text if len(text) <= 60 else f"{text[:57]}..."


def _module_file(root: Path, parts: list[str]) -> Path | None:
    if not parts or not all(part.isidentifier() for part in parts):
        return None
    package = root.joinpath(*parts, "__init__.py")
    if package.is_file():
        return package
    module = root.joinpath(*parts[:-1], f"{parts[-1]}.py")
    return module if module.is_file() else None


def _python_files(project_dir: Path) -> Iterator[Path]:
    yielded = 0
    for folder, dirs, files in os.walk(project_dir):
        dirs[:] = sorted(
            name
            for name in dirs
            if not name.startswith(".")
            and name not in _SKIPPED_DIRS
            and not os.path.exists(os.path.join(folder, name, "pyvenv.cfg"))
        )
        for name in sorted(files):
            if (
                not name.endswith(".py")
                or name in _SKIPPED_FILES
                or name.startswith("test_")
                or name.endswith("_test.py")
            ):
                continue
            yield Path(folder, name)
            yielded += 1
            if yielded >= _MAX_SCANNED_FILES:
                return


def _preferred(names: list[str]) -> str:
    """`app`, else `api`, else the first in alphabetical order (fastapi-cli walks `dir()`)."""
    return next((name for name in _PREFERRED_NAMES if name in names), names[0])
