"""Findings as text for a terminal (grouped by route), as JSON, and as SARIF 2.1.0."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.markup import escape

from cloudlet.analyze.findings import Finding, Hop, Location

TOOL_NAME = "cloudlet-analyze"
TOOL_URI = "https://github.com/cloudlet/cloudlet"
SARIF_SCHEMA = "https://json.schemastore.org/sarif-2.1.0.json"

# One rule per kind of blocking call; a noqa comment naming the code silences a line.
RULES: dict[str, tuple[str, str]] = {
    "http": ("CLB101", "Synchronous HTTP request on the event loop"),
    "file-io": ("CLB102", "Synchronous file I/O on the event loop"),
    "subprocess": ("CLB103", "Subprocess waited for on the event loop"),
    "sleep": ("CLB104", "time.sleep on the event loop"),
    "db": ("CLB105", "Synchronous database call on the event loop"),
    "cloud-sdk": ("CLB106", "Synchronous cloud SDK call on the event loop"),
    "cpu": ("CLB107", "CPU-heavy call on the event loop"),
    "dns": ("CLB108", "Synchronous DNS lookup on the event loop"),
    "smtp": ("CLB109", "Synchronous SMTP on the event loop"),
    "socket": ("CLB110", "Blocking socket call on the event loop"),
    "dataframe": ("CLB111", "pandas file I/O on the event loop"),
    "lock": ("CLB112", "Thread lock, queue or future waited on on the event loop"),
    "io": ("CLB113", "Terminal input on the event loop"),
    "custom": ("CLB199", "Project-configured blocking call on the event loop"),
}


def rule_for(kind: str) -> tuple[str, str]:
    return RULES.get(kind, RULES["custom"])


def relocate(findings: Sequence[Finding], prefix: str) -> list[Finding]:
    """The findings with every path under `prefix` (the folder as the user typed it)."""
    if prefix in {"", "."}:
        return list(findings)

    def move(path: str) -> str:
        return f"{prefix.rstrip('/')}/{path}"

    out = []
    for f in findings:
        out.append(
            replace(
                f,
                file=move(f.file),
                call_site=Location(move(f.call_site.file), f.call_site.line),
                chain=tuple(replace(h, file=move(h.file)) for h in f.chain),
                entry=replace(f.entry, file=move(f.entry.file)),
            )
        )
    return out


# -- JSON --


def to_json(findings: Sequence[Finding]) -> str:
    rows = []
    for finding in findings:
        row = finding.to_json()
        row["rule"] = rule_for(finding.kind)[0]
        rows.append(row)
    return json.dumps(rows, indent=2)


# -- text --


def chain_text(finding: Finding) -> str:
    """`route [main.py:26] → helper [services.py:7] → requests.get`: each function with the
    line where it makes the next call."""
    steps = [hop.function for hop in finding.chain] or [finding.entry.function]
    lines = [f"{hop.file}:{hop.line}" for hop in finding.chain]
    lines.append(f"{finding.file}:{finding.line}")
    if finding.chain:
        steps.append(finding.chain[-1].callee)
    parts = [f"{step} [{line}]" for step, line in zip(steps, lines, strict=True)]
    return " → ".join([*parts, finding.api])


def print_text(findings: Sequence[Finding], console: Console, summary: str = "") -> None:
    groups: dict[tuple[str, str, int], list[Finding]] = {}
    for finding in findings:
        key = (finding.entry.label, finding.entry.file, finding.entry.line)
        groups.setdefault(key, []).append(finding)
    for (label, _, _), group in sorted(groups.items(), key=lambda kv: (kv[0][1], kv[0][2])):
        entry = group[0].entry
        users = f" · used by {', '.join(entry.users)}" if entry.users else ""
        console.print(
            f"[bold]{escape(label)}[/bold]  [dim]{escape(entry.file)}:{entry.line}[/dim]  "
            f"({escape(entry.reason)} `{escape(entry.function)}`{escape(users)})"
        )
        for finding in group:
            code = rule_for(finding.kind)[0]
            low = " [dim](startup only)[/dim]" if finding.severity == "low" else ""
            console.print(
                f"  [yellow]{escape(finding.file)}:{finding.line}[/yellow]  "
                f"[bold]{escape(finding.api)}[/bold]  [dim]{code} {escape(finding.kind)}[/dim]{low}"
            )
            console.print(f"    {escape(finding.message)}")
            console.print(f"    [dim]chain:[/dim] {escape(chain_text(finding))}")
            if finding.call_site != finding.location:
                console.print(f"    [dim]call site:[/dim] {escape(str(finding.call_site))}")
            console.print(f"    [green]fix:[/green] {escape(finding.fix)}")
        console.print()
    if summary:
        console.print(summary)


# -- SARIF 2.1.0 --


def _physical(path: str, line: int, column: int | None = None) -> dict[str, Any]:
    region: dict[str, Any] = {"startLine": line}
    if column is not None:
        region["startColumn"] = column + 1
    return {
        "physicalLocation": {
            "artifactLocation": {"uri": path, "uriBaseId": "%SRCROOT%"},
            "region": region,
        }
    }


def _flow_location(hop_or_entry: Hop | Location, text: str) -> dict[str, Any]:
    location = _physical(hop_or_entry.file, hop_or_entry.line)
    location["message"] = {"text": text}
    return {"location": location}


def to_sarif(findings: Sequence[Finding], root: Path, version: str = "0.1.0") -> str:
    kinds = sorted({f.kind for f in findings} | {"http", "file-io", "db"})
    rules: list[dict[str, Any]] = []
    index: dict[str, int] = {}
    for kind in kinds:
        code, title = rule_for(kind)
        if code in index:
            continue
        index[code] = len(rules)
        rules.append(
            {
                "id": code,
                "name": title.replace(" ", ""),
                "shortDescription": {"text": title},
                "fullDescription": {
                    "text": f"{title}: while it runs, no other request is served by this worker."
                },
                "defaultConfiguration": {"level": "warning"},
                "properties": {"kind": kind, "tags": ["performance", "asyncio", "fastapi"]},
            }
        )
    results = []
    for f in findings:
        code, _ = rule_for(f.kind)
        flow = [
            _flow_location(
                Location(f.entry.file, f.entry.line), f"{f.entry.reason}: {f.entry.label}"
            )
        ]
        flow.extend(_flow_location(h, f"{h.function} calls {h.callee}") for h in f.chain)
        flow.append(_flow_location(Location(f.file, f.line), f"blocking call {f.api}"))
        fingerprint = hashlib.sha256(
            f"{f.kind}|{f.api}|{f.file}|{f.function}|{f.entry.function}".encode()
        ).hexdigest()[:32]
        results.append(
            {
                "ruleId": code,
                "ruleIndex": index[code],
                "level": "note" if f.severity == "low" else "warning",
                "message": {
                    "text": f"{f.message} (from {f.entry.reason} {f.entry.label}). Fix: {f.fix}"
                },
                "locations": [_physical(f.file, f.line, f.column)],
                "relatedLocations": [
                    {
                        "id": 1,
                        **_physical(f.entry.file, f.entry.line),
                        "message": {"text": f"entry point: {f.entry.reason} {f.entry.label}"},
                    }
                ],
                "codeFlows": [{"threadFlows": [{"locations": flow}]}],
                "partialFingerprints": {"cloudletBlockingCall/v1": fingerprint},
                "properties": {
                    "kind": f.kind,
                    "api": f.api,
                    "severity": f.severity,
                    "callSite": {"file": f.call_site.file, "line": f.call_site.line},
                },
            }
        )
    log = {
        "$schema": SARIF_SCHEMA,
        "version": "2.1.0",
        "runs": [
            {
                "tool": {
                    "driver": {
                        "name": TOOL_NAME,
                        "informationUri": TOOL_URI,
                        "version": version,
                        "rules": rules,
                    }
                },
                "originalUriBaseIds": {"%SRCROOT%": {"uri": root.resolve().as_uri() + "/"}},
                "columnKind": "unicodeCodePoints",
                "results": results,
            }
        ],
    }
    return json.dumps(log, indent=2)
