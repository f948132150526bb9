"""Every build runs the blocking-call analyzer on the uploaded source.

The report is stored on the deployment (``Deployment.analysis``) and summarised in the build
log. The analysis never fails a build: an error or a timeout is recorded as such. It runs in
a thread beside the app's import, so it adds little to a deploy.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

# How many findings the build log spells out; the rest are in the API and the dashboard.
LOG_FINDINGS = 5
TIMEOUT_S = 60.0


async def analyze_source(project_dir: Path, timeout_s: float = TIMEOUT_S) -> dict[str, Any]:
    """The report: ``{"status": "complete" | "failed", "findings": [...], "error"?,
    "duration_s"}``. Findings are the analyzer's JSON form (file, line, call_site, chain,
    kind, message, fix, entry point)."""
    started = time.monotonic()
    try:
        # A thread cannot be stopped at the timeout; the archive limits (10,000 files,
        # 100 MB) bound how long it can go on.
        findings = await asyncio.wait_for(asyncio.to_thread(_run, project_dir), timeout_s)
    except TimeoutError:
        return _failed(f"the analysis took longer than {timeout_s:g} s", started)
    except Exception as error:  # the analyzer's own bug must not fail a deploy
        return _failed(f"{type(error).__name__}: {error}", started)
    return {
        "status": "complete",
        "findings": findings,
        "duration_s": round(time.monotonic() - started, 3),
    }


def _run(project_dir: Path) -> list[dict[str, Any]]:
    from cloudlet.analyze import analyze  # imported on first use: builds may never need it

    return [finding.to_json() for finding in analyze(project_dir)]


def _failed(error: str, started: float) -> dict[str, Any]:
    return {
        "status": "failed",
        "findings": [],
        "error": error,
        "duration_s": round(time.monotonic() - started, 3),
    }


async def log_summary(report: dict[str, Any], log: Callable[[str], Awaitable[None]]) -> None:
    """A few lines for the build log: how many, the first ones, where the rest are."""
    if report["status"] != "complete":
        await log(f"Blocking-call analysis skipped: {report.get('error', 'unknown error')}")
        return
    findings = report["findings"]
    took = report["duration_s"]
    if not findings:
        await log(f"No blocking calls found on async paths ({took:.1f}s).")
        return
    noun = "call" if len(findings) == 1 else "calls"
    await log(
        f"Found {len(findings)} blocking {noun} on async paths ({took:.1f}s): each one stalls "
        "every request of its instance while it runs."
    )
    for finding in findings[:LOG_FINDINGS]:
        await log(f"  {_one_line(finding)}")
    if len(findings) > LOG_FINDINGS:
        await log(f"  ... and {len(findings) - LOG_FINDINGS} more.")
    await log(
        "See them all, with the call chain and the fix, in the dashboard or at "
        "GET /api/v1/deployments/<id>/analysis; `cloudlet analyze .` runs the same check locally."
    )


def _one_line(finding: dict[str, Any]) -> str:
    where = f"{finding.get('file')}:{finding.get('line')}"
    text = f"{where} {finding.get('message', finding.get('kind', 'blocking call'))}"
    entry = finding.get("entry") or {}
    if entry.get("label"):
        text += f" (in {entry['label']})"
    fix = finding.get("fix")
    return f"{text} → {fix}" if fix else text
