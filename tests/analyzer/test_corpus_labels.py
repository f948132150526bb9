"""The blocking-call analyzer corpus (tests/analyzer_corpus) is well formed and the scorer agrees.

These tests check the labels only and run no analyzer. See tests/analyzer_corpus/README.md.
"""

from __future__ import annotations

import ast
import json
import subprocess
import sys
import tokenize
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

HERE = Path(__file__).resolve().parent
CORPUS = HERE.parent / "analyzer_corpus"
CASES_DIR = CORPUS / "cases"
SCORER = HERE / "score.py"

TOP_KEYS = {
    "case",
    "category",
    "description",
    "expected_findings",
    "expected_non_findings",
    "neutral_lines",
}
FINDING_KEYS = {
    "id",
    "kind",
    "file",
    "line",
    "sinks",
    "call_sites",
    "chain",
    "severity",
    "hard",
    "fix_hints",
}
KINDS = {
    "sleep",
    "file-io",
    "http",
    "subprocess",
    "socket",
    "dns",
    "db",
    "smtp",
    "cpu",
    "cloud-sdk",
    "dataframe",
    "lock",
}
# Every execution context FastAPI runs on the event loop must have positive cases.
CONTEXT_CATEGORIES = {
    "ctx-async-route",
    "ctx-async-dependency",
    "ctx-middleware-http",
    "ctx-base-http-middleware",
    "ctx-asgi-middleware",
    "ctx-lifespan",
    "ctx-on-event",
    "ctx-background-task",
    "ctx-create-task",
    "ctx-websocket",
    "ctx-exception-handler",
    "ctx-streaming",
    "ctx-body-validator",
    "ctx-async-decorator",
}
REACH_CATEGORIES = {
    "reach-helper-same-module",
    "reach-cross-module",
    "reach-reexport",
    "reach-method",
    "reach-decorator",
    "reach-context-manager",
    "reach-property",
    "reach-callable",
}
# case-name prefix -> category prefix
PREFIXES = {
    "ctx_": "ctx-",
    "reach_": "reach-",
    "catalog_": "catalog",
    "neg_": "neg-",
    "pragma_": "pragma",
    "mixed_app_": "mixed-app",
}
PRAGMA = "# sync-ok"

Loc = tuple[str, int]


def _load() -> dict[str, dict[str, Any]]:
    return {
        p.parent.name: json.loads(p.read_text()) for p in sorted(CASES_DIR.glob("*/labels.json"))
    }


LABELS = _load()


def _locs(items: list[dict[str, Any]]) -> list[Loc]:
    return [(item["file"], item["line"]) for item in items]


def _all_locs(lab: dict[str, Any]) -> dict[str, list[Loc]]:
    out: dict[str, list[Loc]] = {
        "expected_non_findings": _locs(lab["expected_non_findings"]),
        "neutral_lines": _locs(lab["neutral_lines"]),
    }
    for f in lab["expected_findings"]:
        for key in ("sinks", "call_sites", "chain"):
            out[f"{f['id']}.{key}"] = _locs(f[key])
    return out


def test_corpus_size_and_coverage() -> None:
    assert len(LABELS) >= 80
    categories = Counter(lab["category"] for lab in LABELS.values())
    positive = Counter(lab["category"] for lab in LABELS.values() if lab["expected_findings"])
    for cat in CONTEXT_CATEGORIES | REACH_CATEGORIES | {"catalog", "pragma"}:
        assert positive[cat] >= 1, f"no positive case in category {cat}"
    negative_only = [n for n, lab in LABELS.items() if not lab["expected_findings"]]
    assert len(negative_only) >= len(LABELS) // 5, "keep about a quarter of the cases negative-only"
    assert sum(n for c, n in categories.items() if c.startswith("neg-")) == len(negative_only)


@pytest.mark.parametrize("name", sorted(LABELS))
def test_case_labels(name: str) -> None:
    lab = LABELS[name]
    root = CASES_DIR / name
    assert set(lab) == TOP_KEYS
    assert lab["case"] == name
    assert isinstance(lab["description"], str) and lab["description"].strip()
    prefix = next((p for p in PREFIXES if name.startswith(p)), None)
    assert prefix is not None, f"case name {name} lacks a category prefix"
    assert lab["category"].startswith(PREFIXES[prefix])
    if lab["category"].startswith("neg-"):
        assert lab["expected_findings"] == [], "neg-* cases are negative-only"
        assert lab["expected_non_findings"], "a negative case must label its non-findings"
    else:
        assert lab["expected_findings"], "positive categories need at least one finding"

    ids = [f["id"] for f in lab["expected_findings"]]
    assert len(ids) == len(set(ids)), "finding ids must be unique within a case"
    for f in lab["expected_findings"]:
        assert set(f) == FINDING_KEYS, f["id"]
        assert f["kind"] in KINDS, f["kind"]
        assert f["severity"] in {"normal", "low"}
        assert isinstance(f["hard"], bool)
        assert f["sinks"] and f["call_sites"], f"{f['id']} needs sinks and call sites"
        assert (f["file"], f["line"]) == (f["sinks"][0]["file"], f["sinks"][0]["line"])
        hints = f["fix_hints"]
        assert hints and all(isinstance(h, str) and h.strip() for h in hints), f["id"]

    texts: dict[str, list[str]] = {}
    for key, locs in _all_locs(lab).items():
        for file, line in locs:
            assert isinstance(line, int) and line >= 1, (key, file, line)
            path = root / file
            assert path.is_file(), f"{key}: {file} does not exist"
            lines = texts.setdefault(file, path.read_text().splitlines())
            assert line <= len(lines), f"{key}: {file}:{line} is past the end of the file"
            text = lines[line - 1].strip()
            assert text and not text.startswith("#"), f"{key}: {file}:{line} is blank or a comment"

    hit = {loc for f in lab["expected_findings"] for loc in _locs(f["sinks"] + f["call_sites"])}
    negatives = set(_locs(lab["expected_non_findings"]))
    assert not hit & negatives, "a sink or call site is also labelled as a non-finding"
    assert not hit & set(_locs(lab["neutral_lines"])), "a sink or call site is also neutral"

    if lab["category"] == "pragma":
        marked = _pragma_lines(root)
        assert marked, "a pragma case uses the `# sync-ok` override comment"
        assert marked <= negatives, "every line carrying `# sync-ok` is an expected non-finding"


def _pragma_lines(root: Path) -> set[Loc]:
    """(file, line) of every real comment (not string) containing the override token."""
    found: set[Loc] = set()
    for path in sorted(root.rglob("*.py")):
        with path.open("rb") as fh:
            for tok in tokenize.tokenize(fh.readline):
                if tok.type == tokenize.COMMENT and PRAGMA in tok.string:
                    found.add((path.relative_to(root).as_posix(), tok.start[0]))
    return found


@pytest.mark.parametrize("name", sorted(LABELS))
def test_case_sources_are_python_311(name: str) -> None:
    root = CASES_DIR / name
    files = sorted(root.rglob("*.py"))
    assert files, "a case is a small project"
    for path in files:
        # pytest must never collect corpus files as tests
        assert not path.name.startswith("test_") and path.name != "conftest.py", path
        ast.parse(path.read_text(), filename=str(path), feature_version=(3, 11))


def _score(findings: list[dict[str, Any]], tmp_path: Path) -> dict[str, Any]:
    findings_path = tmp_path / "findings.json"
    out_path = tmp_path / "score.json"
    findings_path.write_text(json.dumps(findings))
    subprocess.run(
        [
            sys.executable,
            str(SCORER),
            str(findings_path),
            "--corpus",
            str(CORPUS),
            "--quiet",
            "--json-out",
            str(out_path),
        ],
        check=True,
        capture_output=True,
        text=True,
    )
    result: dict[str, Any] = json.loads(out_path.read_text())
    return result


def test_scorer_empty_findings(tmp_path: Path) -> None:
    overall = _score([], tmp_path)["overall"]
    assert overall["recall"] == 0
    assert overall["expected"] == sum(len(lab["expected_findings"]) for lab in LABELS.values())


def test_scorer_all_sinks_is_perfect(tmp_path: Path) -> None:
    findings = [
        {"file": f"{name}/{s['file']}", "line": s["line"]}
        for name, lab in LABELS.items()
        for f in lab["expected_findings"]
        for s in f["sinks"]
    ]
    result = _score(findings, tmp_path)
    assert result["stray_findings"] == 0
    assert result["overall"]["recall"] == 1.0
    assert result["overall"]["precision"] == 1.0
    assert result["overall"]["negative_violations"] == 0


def test_scorer_all_call_sites_is_perfect(tmp_path: Path) -> None:
    findings = [
        {"file": f"cases/{name}/{c['file']}", "line": c["line"]}
        for name, lab in LABELS.items()
        for f in lab["expected_findings"]
        for c in f["call_sites"]
    ]
    overall = _score(findings, tmp_path)["overall"]
    assert overall["recall"] == 1.0
    assert overall["precision"] == 1.0


def test_scorer_counts_every_non_finding_as_violation(tmp_path: Path) -> None:
    negatives = [
        {"file": f"{name}/{n['file']}", "line": n["line"]}
        for name, lab in LABELS.items()
        for n in lab["expected_non_findings"]
    ]
    overall = _score(negatives, tmp_path)["overall"]
    assert overall["recall"] == 0
    assert overall["tp_reports"] == 0
    assert (
        overall["negative_violations"]
        == overall["negatives"]
        == len({(n["file"], n["line"]) for n in negatives})
    )
