"""The "Blocking calls" section of a deployment page, and its summary on the app page.

Both read the blocking-call analyzer's report as the build stored it (`Deployment.analysis`,
see cloudlet.control.analysis), the same report `GET /api/v1/deployments/{id}/analysis`
serves. The report is the analyzer's JSON form of the user's code: every field is read
defensively (a missing key shows as nothing, never as a 500) and everything is escaped by the
templates; `code_spans` is the one place that makes markup, from escaped text.

Findings are grouped by their entry point (the route, dependency, middleware... the event loop
runs them from), like `cloudlet analyze` prints them. Startup-only entry points (lifespan,
startup handlers) run once, so their findings are shown as less urgent and listed last.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from markupsafe import Markup, escape

from cloudlet.statuses import IN_BUILD
from cloudlet.store.models import Deployment

SECTION_ID = "blocking-calls"

# "low" is what the analyzer writes for code that runs once at startup or shutdown; "warn" is
# accepted as the same.
LESS_URGENT = frozenset({"low", "warn"})

# status -> (badge label, badge tone)
STATUS_BADGES: dict[str, tuple[str, str]] = {
    "pending": ("Pending", "busy"),
    "none": ("None found", "ok"),
    "found": ("Found", "warn"),
    "failed": ("Analysis failed", "idle"),
    "not_run": ("Not run", "idle"),
}

_CODE_SPAN = re.compile(r"`([^`\n]+)`")


def code_spans(text: object) -> Markup:
    """The text escaped, with its `backticked` parts as <code>. The analyzer's messages and
    fixes quote code that way. Safe: the pattern only sees already-escaped text."""
    escaped = str(escape("" if text is None else str(text)))
    return Markup(_CODE_SPAN.sub(r"<code>\1</code>", escaped))


def analysis_status(deployment: Deployment) -> str:
    """pending | complete | failed | not_run: what `GET .../analysis` answers."""
    report = deployment.analysis
    if report is None:
        waiting = deployment.status in IN_BUILD or deployment.status == "waiting_upload"
        return "pending" if waiting else "not_run"
    status = report.get("status")
    return status if status in ("complete", "failed") else "failed"


# -- reading the report ----------------------------------------------------------------------


def _text(data: Mapping[str, Any], key: str) -> str:
    value = data.get(key)
    if isinstance(value, str):
        return value
    if isinstance(value, int | float) and not isinstance(value, bool):
        return str(value)
    return ""


def _line(data: Mapping[str, Any], key: str = "line") -> int | None:
    value = data.get(key)
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def _mapping(value: Any) -> Mapping[str, Any]:
    return value if isinstance(value, Mapping) else {}


def _rows(value: Any) -> list[Mapping[str, Any]]:
    if not isinstance(value, list):
        return []
    return [row for row in value if isinstance(row, Mapping)]


def location(file: str, line: int | None) -> str:
    if not file:
        return "" if line is None else f"line {line}"
    return file if line is None else f"{file}:{line}"


def duration(seconds: Any) -> str:
    """0.123 -> "0.12 s", 42.4 -> "42 s"; "" when unknown."""
    if not isinstance(seconds, int | float) or isinstance(seconds, bool) or seconds < 0:
        return ""
    return f"{seconds:.2f} s" if seconds < 10 else f"{seconds:.0f} s"


def plural(n: int, word: str) -> str:
    return f"{n:,} {word}{'' if n == 1 else 's'}"


# -- the view ----------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Step:
    """One line of a call chain: the entry point, a call on the way, or the blocking call."""

    function: str
    calls: str  # "" for the entry point
    where: str  # file:line
    note: str = ""  # the entry point's reason
    blocking: bool = False


@dataclass(frozen=True, slots=True)
class FindingView:
    api: str
    kind: str
    where: str
    message: str
    fix: str
    chain: tuple[Step, ...]
    less_urgent: bool


@dataclass(frozen=True, slots=True)
class Group:
    """The findings of one entry point (a route, most of the time)."""

    anchor: str
    label: str
    reason: str
    function: str
    where: str
    routes: tuple[str, ...]  # the routes a dependency serves
    findings: tuple[FindingView, ...]

    @property
    def less_urgent(self) -> bool:
        return all(f.less_urgent for f in self.findings)

    @property
    def count(self) -> int:
        return len(self.findings)


def _chain(finding: Mapping[str, Any], entry: Mapping[str, Any]) -> tuple[Step, ...]:
    steps = []
    if entry:
        steps.append(
            Step(
                function=_text(entry, "function"),
                calls="",
                where=location(_text(entry, "file"), _line(entry)),
                note=_text(entry, "reason"),
            )
        )
    for hop in _rows(finding.get("chain")):
        steps.append(
            Step(
                function=_text(hop, "function"),
                calls=_text(hop, "calls"),
                where=location(_text(hop, "file"), _line(hop)),
            )
        )
    steps.append(
        Step(
            function=_text(finding, "function"),
            calls=_text(finding, "api") or _text(finding, "kind") or "a blocking call",
            where=location(_text(finding, "file"), _line(finding)),
            blocking=True,
        )
    )
    return tuple(steps)


def _finding(finding: Mapping[str, Any], entry: Mapping[str, Any]) -> FindingView:
    severity = _text(finding, "severity") or _text(entry, "severity")
    return FindingView(
        api=_text(finding, "api") or _text(finding, "kind") or "blocking call",
        kind=_text(finding, "kind"),
        where=location(_text(finding, "file"), _line(finding)),
        message=_text(finding, "message"),
        fix=_text(finding, "fix"),
        chain=_chain(finding, entry),
        less_urgent=severity in LESS_URGENT,
    )


def groups_of(findings: Sequence[Any]) -> list[Group]:
    """The findings by entry point: routes (and everything else per request) first, then
    startup-only code; in source order within each; findings in the report's order."""
    keyed: dict[tuple[str, str, int], list[Mapping[str, Any]]] = {}
    for finding in _rows(list(findings)):
        entry = _mapping(finding.get("entry"))
        key = (_text(entry, "label"), _text(entry, "file"), _line(entry) or 0)
        keyed.setdefault(key, []).append(finding)
    built = []
    for (label, file, line), rows in keyed.items():
        entry = _mapping(rows[0].get("entry"))
        views = tuple(_finding(row, entry) for row in rows)
        routes = entry.get("routes")
        built.append(
            (
                (all(v.less_urgent for v in views), file, line, label),
                label,
                entry,
                views,
                tuple(r for r in routes if isinstance(r, str)) if isinstance(routes, list) else (),
            )
        )
    built.sort(key=lambda item: item[0])
    return [
        Group(
            anchor=f"{SECTION_ID}-{n}",
            label=label or "Unknown entry point",
            reason=_text(entry, "reason"),
            function=_text(entry, "function"),
            where=location(_text(entry, "file"), _line(entry)),
            routes=routes,
            findings=views,
        )
        for n, (_, label, entry, views, routes) in enumerate(built, start=1)
    ]


def section_context(deployment: Deployment) -> dict[str, Any]:
    """Everything the "Blocking calls" section shows."""
    status = analysis_status(deployment)
    report = deployment.analysis or {}
    groups = groups_of(report.get("findings") or []) if status == "complete" else []
    count = sum(g.count for g in groups)
    startup_only = sum(1 for g in groups for f in g.findings if f.less_urgent)
    shown = status
    if status == "complete":
        shown = "found" if count else "none"
    label, tone = STATUS_BADGES[shown]
    if shown == "found":
        label = f"{count:,} found"
    return {
        "id": SECTION_ID,
        "status": status,
        "shown": shown,
        "badge": label,
        "tone": tone,
        "count": count,
        "count_text": plural(count, "blocking call"),
        "startup_only": startup_only,
        "took": duration(report.get("duration_s")),
        "error": _text(report, "error") if status == "failed" else "",
        "groups": groups,
    }


def live_summary(deployment: Deployment | None, page_url: str) -> dict[str, Any] | None:
    """The app page's box for the live deployment: one row per entry point with a finding,
    each linking to its group on the deployment page; None when there is nothing to show."""
    if deployment is None or analysis_status(deployment) != "complete":
        return None
    groups = groups_of((deployment.analysis or {}).get("findings") or [])
    if not groups:
        return None
    return {
        "url": f"{page_url}#{SECTION_ID}",
        "count": sum(g.count for g in groups),
        "rows": [
            {
                "label": g.label,
                "reason": g.reason,
                "routes": g.routes,
                "count_text": plural(g.count, "blocking call"),
                "less_urgent": g.less_urgent,
                "url": f"{page_url}#{g.anchor}",
            }
            for g in groups
        ],
    }
