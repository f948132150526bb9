"""Findings: one blocking call reached from one function the event loop runs."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True, order=True)
class Location:
    file: str  # posix, relative to the analyzed project's root
    line: int

    def __str__(self) -> str:
        return f"{self.file}:{self.line}"


@dataclass(frozen=True)
class Hop:
    """One call on the way from the entry point to the blocking call."""

    file: str
    line: int
    function: str  # the function making this call
    callee: str  # what it runs
    how: str = "calls"  # or "enters" (with), "iterates" (for), "reads" (a property)
    # How to hand the callee to the threadpool (`fetch_rates`, `<UserService>.list`), when it
    # is a plain sync function or method.
    offload: str | None = None

    def to_json(self) -> dict[str, Any]:
        return {
            "file": self.file,
            "line": self.line,
            "function": self.function,
            "calls": self.callee,
            "how": self.how,
        }


@dataclass(frozen=True)
class Entry:
    """Where the chain starts: a function the event loop runs, and why it does."""

    file: str
    line: int
    function: str
    reason: str
    label: str
    severity: str = "normal"
    users: tuple[str, ...] = ()

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "file": self.file,
            "line": self.line,
            "function": self.function,
            "reason": self.reason,
            "label": self.label,
        }
        if self.users:
            out["routes"] = list(self.users)
        return out


@dataclass(frozen=True)
class Finding:
    file: str  # the blocking call
    line: int
    column: int
    api: str  # what it is: "requests.get", "sqlalchemy.orm.Session.execute"
    kind: str  # "http", "db", "file-io", ...
    message: str
    fix: str
    entry: Entry
    function: str  # the function making the blocking call
    call_site: Location  # the line in the entry function where the chain starts
    chain: tuple[Hop, ...] = ()
    severity: str = "normal"
    rewrite: str | None = None  # a provably safe --fix rewrite, when there is one

    @property
    def location(self) -> Location:
        return Location(self.file, self.line)

    @property
    def group(self) -> str:
        """The route (or other loop entry) this finding is reported under."""
        return self.entry.label

    def to_json(self) -> dict[str, Any]:
        return {
            "file": self.file,
            "line": self.line,
            "column": self.column,
            "kind": self.kind,
            "api": self.api,
            "message": self.message,
            "fix": self.fix,
            "severity": self.severity,
            "function": self.function,
            "call_site": {"file": self.call_site.file, "line": self.call_site.line},
            "entry": self.entry.to_json(),
            "chain": [hop.to_json() for hop in self.chain],
        }


def dedupe(findings: list[Finding]) -> list[Finding]:
    """One finding per (entry, blocking call): the shortest chain wins; stable order."""
    best: dict[tuple[str, str, int, str], Finding] = {}
    for finding in findings:
        key = (finding.entry.function, finding.file, finding.line, finding.api)
        known = best.get(key)
        if known is None or len(finding.chain) < len(known.chain):
            best[key] = finding
    return sorted(
        best.values(),
        key=lambda f: (f.entry.file, f.entry.line, f.entry.function, f.file, f.line, f.api),
    )
