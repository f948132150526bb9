"""Fixes: the suggestion printed with every finding, and the rewrites `--fix` applies.

`--fix` only applies rewrites that are provably safe: `time.sleep(x)` as a statement directly in
an `async def` becomes `await asyncio.sleep(x)` (same duration, but the loop keeps serving), with
`import asyncio` added when missing. Everything else is a suggestion for a human.
"""

from __future__ import annotations

import ast
import difflib
import os
import tempfile
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from cloudlet.analyze.catalog import BlockingApi
from cloudlet.analyze.facts import FunctionFacts

if TYPE_CHECKING:
    from cloudlet.analyze.entrypoints import EntryPoint
    from cloudlet.analyze.findings import Finding, Hop

# Entry points that could simply be a plain `def` (FastAPI then runs them in the threadpool).
CAN_BE_DEF = frozenset({"async route", "async dependency"})


def suggest_fix(
    api: BlockingApi, entry: EntryPoint, entry_fn: FunctionFacts, hops: Sequence[Hop]
) -> str:
    fix = api.fix
    if hops and hops[0].offload is not None:
        fix += f"; or offload the helper call: `await run_in_threadpool({hops[0].offload}, ...)`"
    if entry.reason in CAN_BE_DEF and not entry_fn.has_await and entry_fn.is_async:
        return (
            f"make `{entry_fn.name}` a plain `def` (it awaits nothing, so FastAPI runs it in "
            f"the threadpool); or {fix}"
        )
    return fix


@dataclass(frozen=True)
class FileFix:
    path: Path
    rel: str
    before: str
    after: str
    applied: int

    @property
    def diff(self) -> str:
        return "".join(
            difflib.unified_diff(
                self.before.splitlines(keepends=True),
                self.after.splitlines(keepends=True),
                fromfile=f"a/{self.rel}",
                tofile=f"b/{self.rel}",
            )
        )


def plan_fixes(root: Path, findings: Iterable[Finding]) -> list[FileFix]:
    """The safe rewrites for these findings, per file (nothing is written)."""
    by_file: dict[str, set[tuple[int, int]]] = {}
    for finding in findings:
        if finding.rewrite == "asyncio.sleep":
            by_file.setdefault(finding.file, set()).add((finding.line, finding.column))
    out = []
    for rel, positions in sorted(by_file.items()):
        path = root / rel
        try:
            before = path.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError):
            continue
        after, applied = _rewrite_sleeps(before, positions)
        if applied:
            out.append(FileFix(path, rel, before, after, applied))
    return out


def apply_fixes(fixes: Iterable[FileFix]) -> None:
    """Write each fixed file: to a temporary file beside it, then rename over it."""
    for fix in fixes:
        fd, tmp = tempfile.mkstemp(dir=fix.path.parent, prefix=f".{fix.path.name}.")
        try:
            with os.fdopen(fd, "w", encoding="utf-8", newline="") as f:
                f.write(fix.after)
            os.chmod(tmp, fix.path.stat().st_mode & 0o7777)
            os.replace(tmp, fix.path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise


def _rewrite_sleeps(source: str, positions: set[tuple[int, int]]) -> tuple[str, int]:
    try:
        tree = ast.parse(source)
    except SyntaxError:
        return source, 0
    edits: list[tuple[int, int, int, int, str]] = []
    for fn in ast.walk(tree):
        if not isinstance(fn, ast.AsyncFunctionDef):
            continue
        for stmt in _direct_statements(fn.body):
            call = stmt.value if isinstance(stmt, ast.Expr) else None
            if not isinstance(call, ast.Call) or (call.lineno, call.col_offset) not in positions:
                continue
            if len(call.args) != 1 or call.keywords or isinstance(call.args[0], ast.Starred):
                continue
            if call.end_lineno is None or call.end_col_offset is None:
                continue
            argument = ast.get_source_segment(source, call.args[0])
            if argument is None:
                continue
            edits.append(
                (
                    call.lineno,
                    call.col_offset,
                    call.end_lineno,
                    call.end_col_offset,
                    f"await asyncio.sleep({argument})",
                )
            )
    if not edits:
        return source, 0
    lines = source.splitlines(keepends=True)
    for line, col, end_line, end_col, text in sorted(edits, reverse=True):
        first, last = lines[line - 1], lines[end_line - 1]
        # ast columns are UTF-8 byte offsets.
        head = first.encode()[:col].decode()
        tail = last.encode()[end_col:].decode()
        lines[line - 1 : end_line] = [head + text + tail]
    result = "".join(lines)
    if not _imports_asyncio(tree):
        result = _add_import(result, tree)
    return result, len(edits)


def _direct_statements(body: list[ast.stmt]) -> Iterable[ast.stmt]:
    """Statements of this function's own body (into if/for/with/try, not nested defs)."""
    stack = list(reversed(body))
    while stack:
        stmt = stack.pop()
        yield stmt
        if isinstance(stmt, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
            continue
        for field in ("body", "orelse", "finalbody"):
            children = getattr(stmt, field, None)
            if isinstance(children, list):
                stack.extend(reversed([c for c in children if isinstance(c, ast.stmt)]))
        for handler in getattr(stmt, "handlers", []):
            stack.extend(reversed(handler.body))
        for case in getattr(stmt, "cases", []):
            stack.extend(reversed(case.body))


def _imports_asyncio(tree: ast.Module) -> bool:
    return any(
        isinstance(stmt, ast.Import)
        and any(a.name == "asyncio" and not a.asname for a in stmt.names)
        for stmt in tree.body
    )


def _add_import(source: str, tree: ast.Module) -> str:
    """Insert `import asyncio` after the docstring and `__future__` imports, before the others
    (where isort puts it: `asyncio` sorts first among most imports)."""
    insert_after = 0
    for index, stmt in enumerate(tree.body):
        is_docstring = (
            index == 0
            and isinstance(stmt, ast.Expr)
            and isinstance(stmt.value, ast.Constant)
            and isinstance(stmt.value.value, str)
        )
        is_future = isinstance(stmt, ast.ImportFrom) and stmt.module == "__future__"
        if not (is_docstring or is_future):
            if isinstance(stmt, ast.Import | ast.ImportFrom):
                insert_after = stmt.lineno - 1  # right above the first import, below comments
            break
        insert_after = stmt.end_lineno or stmt.lineno
    lines = source.splitlines(keepends=True)
    lines.insert(insert_after, "import asyncio\n")
    return "".join(lines)
