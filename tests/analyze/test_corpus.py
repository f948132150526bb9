"""The analyzer over the labelled corpus in tests/analyzer_corpus: recall ≥ 0.92, precision ≥ 0.97.

Scored with the rules of shared/analyzer/score.py: a report matches a finding when its
(file, line) is one of the finding's sinks or call sites; reports on chain or neutral lines are
ignored; every other report is a false positive. Run as a script to write the findings file
score.py reads:

    .venv/bin/python tests/analyze/test_corpus.py /tmp/findings.json
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import pytest

from cloudlet.analyze import analyze

CORPUS = Path(__file__).resolve().parents[1] / "analyzer_corpus" / "cases"
MIN_CASES = 80


def case_dirs() -> list[Path]:
    return sorted(p.parent for p in CORPUS.glob("*/labels.json"))


def corpus_findings() -> list[dict[str, Any]]:
    """Every finding, with paths as `<case>/<path inside the case>`."""
    rows: list[dict[str, Any]] = []
    for case in case_dirs():
        for finding in analyze(case):
            row = finding.to_json()
            row["file"] = f"{case.name}/{finding.file}"
            row["call_site"]["file"] = f"{case.name}/{finding.call_site.file}"
            rows.append(row)
    return rows


def score(rows: list[dict[str, Any]]) -> dict[str, Any]:
    reports: dict[str, set[tuple[str, int]]] = {}
    for row in rows:
        case, _, rel = row["file"].partition("/")
        reports.setdefault(case, set()).add((rel, row["line"]))
    expected = detected = true_reports = false_reports = 0
    misses: list[str] = []
    false_positives: list[str] = []
    with_fix = sum(1 for row in rows if row["fix"])
    for case in case_dirs():
        labels = json.loads((case / "labels.json").read_text())
        by_location: dict[tuple[str, int], set[str]] = {}
        for finding in labels["expected_findings"]:
            for loc in finding["sinks"] + finding["call_sites"]:
                by_location.setdefault((loc["file"], loc["line"]), set()).add(finding["id"])
        ignored = {
            (loc["file"], loc["line"]) for f in labels["expected_findings"] for loc in f["chain"]
        }
        ignored |= {(loc["file"], loc["line"]) for loc in labels["neutral_lines"]}
        hit: set[str] = set()
        for location in sorted(reports.get(case.name, ())):
            ids = by_location.get(location)
            if ids:
                hit |= ids
                true_reports += 1
            elif location not in ignored:
                false_reports += 1
                false_positives.append(f"{case.name}/{location[0]}:{location[1]}")
        expected += len(labels["expected_findings"])
        detected += len(hit)
        misses.extend(
            f"{case.name}:{f['id']}" for f in labels["expected_findings"] if f["id"] not in hit
        )
    return {
        "cases": len(case_dirs()),
        "recall": detected / expected if expected else 1.0,
        "precision": true_reports / (true_reports + false_reports) if rows else 1.0,
        "fix_share": with_fix / len(rows) if rows else 1.0,
        "misses": misses,
        "false_positives": false_positives,
    }


def test_corpus_recall_and_precision() -> None:
    cases = case_dirs()
    if len(cases) < MIN_CASES:
        pytest.skip(f"the corpus has {len(cases)} cases so far; the bar applies from {MIN_CASES}")
    result = score(corpus_findings())
    assert result["recall"] >= 0.92, result["misses"]
    assert result["precision"] >= 0.97, result["false_positives"]
    assert result["fix_share"] >= 0.95


if __name__ == "__main__":
    findings = corpus_findings()
    target = Path(sys.argv[1] if len(sys.argv) > 1 else "corpus-findings.json")
    target.write_text(json.dumps(findings, indent=1))
    summary = score(findings)
    print(
        f"{summary['cases']} cases: recall {summary['recall']:.2f}, "
        f"precision {summary['precision']:.2f}; findings in {target}"
    )
