#!/usr/bin/env python3
# Vendored unchanged from shared/analyzer/score.py (the blocking-call analyzer scorer) so that CI on a
# clean clone does not depend on /work/shared; only this header comment was added. Keep it in sync
# with upstream rather than editing it here.
# ruff: noqa
# mypy: ignore-errors
# fmt: off
"""Score an analyzer's findings against the hidden FastAPI blocking-call corpus.

Usage:
    python score.py FINDINGS.json [--corpus DIR] [--name TOOL] [--json-out FILE]
                                  [--exclude-low] [--exclude-hard] [--quiet]

FINDINGS.json: a JSON list of {"file": <path>, "line": <int>, ...}; extra keys are ignored.
`file` may be relative to the cases/ directory ("d01_requests_direct/app/main.py"),
relative to the corpus root ("cases/d01_.../app/main.py"), or absolute.

Label convention (see README.md):
  * one expected finding = one blocking operation reached from code that runs on the event loop;
  * it has sink lines (lines that perform the blocking call) and call-site lines (the line inside
    the loop-run function -- async def route/dependency/middleware/lifespan/task, or a sync
    callback the loop runs -- where the chain to the sink starts; equal to the sink when direct);
  * a reported (file, line) that equals ANY sink line OR ANY call-site line of a finding detects
    that finding (one report may detect several findings that share a sink/call site);
  * reports on intermediate chain lines or on lines labelled neutral are ignored;
  * every other report is a false positive; those on lines labelled expected-non-finding are
    additionally counted as "negative violations".
Recall = detected findings / expected findings.
Precision = matching report lines / (matching report lines + false-positive report lines),
with reports de-duplicated by (file, line).
"""
import argparse
import json
import os
import sys
from collections import defaultdict
from pathlib import Path


def load_cases(corpus: Path):
    cases = {}
    for labels_path in sorted((corpus / "cases").glob("*/labels.json")):
        cases[labels_path.parent.name] = json.loads(labels_path.read_text())
    if not cases:
        sys.exit(f"no cases found under {corpus / 'cases'}")
    return cases


def normalise(path: str, corpus: Path):
    p = path.replace("\\", "/")
    cases_abs = str((corpus / "cases").resolve()).replace("\\", "/") + "/"
    if os.path.isabs(p):
        p = str(Path(p).resolve()).replace("\\", "/")
        if p.startswith(cases_abs):
            p = p[len(cases_abs):]
    while p.startswith("./"):
        p = p[2:]
    if p.startswith("cases/"):
        p = p[len("cases/"):]
    case, _, rel = p.partition("/")
    return case, rel


def f1(p, r):
    if p is None or r is None or (p + r) == 0:
        return None
    return 2 * p * r / (p + r)


def ratio(a, b):
    return a / b if b else None


def fmt(x):
    return "  n/a" if x is None else f"{x:5.2f}"


def evaluate(cases, findings, corpus, exclude_low=False, exclude_hard=False):
    reports = defaultdict(set)
    stray = 0
    for f in findings:
        case, rel = normalise(str(f["file"]), corpus)
        if case not in cases:
            stray += 1
            continue
        reports[case].add((rel, int(f["line"])))

    per_case = {}
    for name, lab in cases.items():
        exp = [e for e in lab["expected_findings"]
               if not (exclude_low and e.get("severity") == "low")
               and not (exclude_hard and e.get("hard"))]
        skipped = [e for e in lab["expected_findings"] if e not in exp]
        loc_to_ids = defaultdict(set)
        for e in exp:
            for loc in e["sinks"] + e["call_sites"]:
                loc_to_ids[(loc["file"], loc["line"])].add(e["id"])
        ignored = {(l["file"], l["line"]) for e in lab["expected_findings"] for l in e["chain"]}
        ignored |= {(l["file"], l["line"]) for l in lab["neutral_lines"]}
        for e in skipped:  # excluded findings: reporting them is neither rewarded nor punished
            ignored |= {(l["file"], l["line"]) for l in e["sinks"] + e["call_sites"]}
        negatives = {(l["file"], l["line"]) for l in lab["expected_non_findings"]}
        detected, tp, fp, neg_viol, fp_lines = set(), 0, 0, 0, []
        for loc in sorted(reports.get(name, ())):
            ids = loc_to_ids.get(loc)
            if ids:
                detected |= ids
                tp += 1
            elif loc in ignored:
                continue
            else:
                fp += 1
                fp_lines.append(f"{loc[0]}:{loc[1]}")
                if loc in negatives:
                    neg_viol += 1
        per_case[name] = dict(
            category=lab["category"], expected=len(exp), detected=len(detected),
            missed=[f"{e['id']}({e['kind']}) {e['sinks'][0]['file']}:{e['sinks'][0]['line']}"
                    for e in exp if e["id"] not in detected],
            kinds={e["id"]: e["kind"] for e in exp}, detected_ids=sorted(detected),
            tp_reports=tp, fp_reports=fp, fp_lines=fp_lines,
            negatives=len(negatives), negative_violations=neg_viol,
        )
    return per_case, stray


def aggregate(rows):
    exp = sum(r["expected"] for r in rows)
    det = sum(r["detected"] for r in rows)
    tp = sum(r["tp_reports"] for r in rows)
    fp = sum(r["fp_reports"] for r in rows)
    neg = sum(r["negatives"] for r in rows)
    nv = sum(r["negative_violations"] for r in rows)
    rec = ratio(det, exp)
    prec = ratio(tp, tp + fp)
    return dict(cases=len(rows), expected=exp, detected=det, recall=rec, tp_reports=tp,
                fp_reports=fp, precision=prec, f1=f1(prec, rec), negatives=neg,
                negative_violations=nv, negatives_clean=ratio(neg - nv, neg))


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("findings")
    ap.add_argument("--corpus", default=str(Path(__file__).resolve().parent))
    ap.add_argument("--name", default=None)
    ap.add_argument("--json-out", default=None)
    ap.add_argument("--exclude-low", action="store_true", help="drop severity=low findings (startup-only blocking)")
    ap.add_argument("--exclude-hard", action="store_true", help="drop findings tagged hard")
    ap.add_argument("--quiet", action="store_true", help="only the overall lines")
    ap.add_argument("--show-misses", action="store_true", help="list missed findings and false positives per case")
    args = ap.parse_args()

    corpus = Path(args.corpus)
    cases = load_cases(corpus)
    findings = json.loads(Path(args.findings).read_text())
    per_case, stray = evaluate(cases, findings, corpus, args.exclude_low, args.exclude_hard)

    cats = defaultdict(list)
    for row in per_case.values():
        cats[row["category"]].append(row)
    by_cat = {c: aggregate(rows) for c, rows in sorted(cats.items())}
    overall = aggregate(list(per_case.values()))
    no_pragma = aggregate([r for r in per_case.values() if r["category"] != "pragma"])

    kinds = defaultdict(lambda: [0, 0])
    for row in per_case.values():
        for fid, kind in row["kinds"].items():
            kinds[kind][0] += 1
            kinds[kind][1] += fid in row["detected_ids"]

    name = args.name or Path(args.findings).stem
    if not args.quiet:
        print(f"== {name}: {len(findings)} findings read, {stray} outside the corpus")
        hdr = f"{'category':<26}{'cases':>6}{'exp':>5}{'hit':>5}{'recall':>8}{'TP':>5}{'FP':>5}{'prec':>7}{'F1':>7}{'neg-clean':>11}"
        print(hdr)
        print("-" * len(hdr))
        for c, a in by_cat.items():
            print(f"{c:<26}{a['cases']:>6}{a['expected']:>5}{a['detected']:>5}{fmt(a['recall']):>8}{a['tp_reports']:>5}"
                  f"{a['fp_reports']:>5}{fmt(a['precision']):>7}{fmt(a['f1']):>7}"
                  f"{(fmt(a['negatives_clean']) + ' (' + str(a['negatives']) + ')'):>11}")
        print("-" * len(hdr))
        print("recall by kind: " + ", ".join(f"{k} {d}/{n}" for k, (n, d) in sorted(kinds.items())))
        if args.show_misses:
            for cname, row in sorted(per_case.items()):
                if row["missed"] or row["fp_lines"]:
                    print(f"  {cname}: missed={row['missed']} fp={row['fp_lines']}")
    for label, a in (("OVERALL", overall), ("OVERALL excl. pragma", no_pragma)):
        print(f"{label} [{name}]: recall {fmt(a['recall'])} ({a['detected']}/{a['expected']})  "
              f"precision {fmt(a['precision'])} (TP {a['tp_reports']}, FP {a['fp_reports']})  F1 {fmt(a['f1'])}  "
              f"expected-non-findings kept clean {a['negatives'] - a['negative_violations']}/{a['negatives']}")
    if args.json_out:
        Path(args.json_out).write_text(json.dumps(dict(
            tool=name, overall=overall, overall_excl_pragma=no_pragma, by_category=by_cat,
            recall_by_kind={k: {"expected": n, "detected": d} for k, (n, d) in kinds.items()},
            per_case=per_case, stray_findings=stray,
            options=dict(exclude_low=args.exclude_low, exclude_hard=args.exclude_hard)), indent=2))


if __name__ == "__main__":
    main()
