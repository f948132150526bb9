"""`cloudlet analyze`: output formats, exit codes, --fix, and the facts cache."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

from typer.testing import CliRunner

from cloudlet.analyze import Config, run
from cloudlet.analyze.fixes import plan_fixes
from cloudlet.cli import app

runner = CliRunner()

PROJECT = {
    "app/__init__.py": "",
    "app/main.py": """
        import time
        from fastapi import FastAPI
        from app.services import fetch_rates

        app = FastAPI()


        @app.get("/rates")
        async def rates():
            time.sleep(0.5)
            return fetch_rates()


        @app.get("/ok")
        def ok():
            time.sleep(0.5)
    """,
    "app/services.py": """
        import requests


        def fetch_rates():
            return requests.get("https://rates.example").json()
    """,
}
CLEAN = {
    "app/__init__.py": "",
    "app/main.py": """
        import asyncio
        from fastapi import FastAPI

        app = FastAPI()


        @app.get("/")
        async def index():
            await asyncio.sleep(0)
    """,
}


def test_json_format_and_exit_code(workbench) -> None:
    root = workbench.write(PROJECT)
    result = runner.invoke(app, ["analyze", str(root), "--format", "json", "--no-cache"])
    assert result.exit_code == 1, result.output
    rows = json.loads(result.stdout)
    assert {(Path(r["file"]).name, r["line"]) for r in rows} == {
        ("main.py", 10),
        ("services.py", 5),
    }
    for row in rows:
        assert {"file", "line", "call_site", "chain", "kind", "message", "fix"} <= row.keys()
        assert row["fix"]
        assert set(row["call_site"]) == {"file", "line"}
    http = next(r for r in rows if r["kind"] == "http")
    assert http["call_site"]["line"] == 11
    assert http["entry"]["label"] == "GET /rates"
    assert http["entry"]["reason"] == "async route"
    assert [hop["line"] for hop in http["chain"]] == [11]
    assert "httpx.AsyncClient" in http["fix"]


def test_paths_are_relative_to_the_folder_given(workbench, monkeypatch) -> None:
    root = workbench.write(PROJECT)
    monkeypatch.chdir(root.parent)
    result = runner.invoke(app, ["analyze", root.name, "-f", "json", "--no-cache"])
    files = {r["file"] for r in json.loads(result.stdout)}
    assert files == {f"{root.name}/app/main.py", f"{root.name}/app/services.py"}


def test_clean_project_exits_zero(workbench) -> None:
    root = workbench.write(CLEAN)
    result = runner.invoke(app, ["analyze", str(root), "--no-cache"])
    assert result.exit_code == 0, result.output
    assert "No blocking calls" in result.stdout


def test_text_report_groups_by_route(workbench) -> None:
    root = workbench.write(PROJECT)
    result = runner.invoke(app, ["analyze", str(root), "--no-cache"])
    assert result.exit_code == 1
    text = result.stdout
    assert text.count("GET /rates") == 1  # one group, two findings under it
    assert "time.sleep" in text and "requests.get" in text
    assert "fetch_rates" in text  # the chain
    assert "fix:" in text
    assert "GET /ok" not in text


def test_sarif_structure(workbench, tmp_path: Path) -> None:
    root = workbench.write(PROJECT)
    out = tmp_path / "report.sarif"
    result = runner.invoke(
        app, ["analyze", str(root), "--format", "sarif", "--output", str(out), "--no-cache"]
    )
    assert result.exit_code == 1
    log = json.loads(out.read_text())
    assert log["version"] == "2.1.0"
    assert log["$schema"].endswith("sarif-2.1.0.json")
    (sarif_run,) = log["runs"]
    driver = sarif_run["tool"]["driver"]
    assert driver["name"] == "cloudlet-analyze"
    rule_ids = [rule["id"] for rule in driver["rules"]]
    assert len(rule_ids) == len(set(rule_ids))
    assert sarif_run["originalUriBaseIds"]["%SRCROOT%"]["uri"].startswith("file://")
    results = sarif_run["results"]
    assert len(results) == 2
    for result_ in results:
        assert driver["rules"][result_["ruleIndex"]]["id"] == result_["ruleId"]
        assert result_["level"] in {"warning", "note"}
        assert result_["message"]["text"]
        (location,) = result_["locations"]
        physical = location["physicalLocation"]
        assert physical["artifactLocation"]["uriBaseId"] == "%SRCROOT%"
        assert not physical["artifactLocation"]["uri"].startswith("/")
        assert physical["region"]["startLine"] >= 1
        flow = result_["codeFlows"][0]["threadFlows"][0]["locations"]
        assert flow[-1]["location"]["physicalLocation"] == {
            **physical,
            "region": {"startLine": physical["region"]["startLine"]},
        }
        assert result_["partialFingerprints"]


def test_bad_input_exits_two(workbench, tmp_path: Path) -> None:
    assert runner.invoke(app, ["analyze", str(tmp_path / "missing")]).exit_code == 2
    root = workbench.write({"pyproject.toml": "[tool.cloudlet.analyze]\nexclude = 3\n"})
    result = runner.invoke(app, ["analyze", str(root)])
    assert result.exit_code == 2
    assert "exclude" in result.stderr


def test_fix_rewrites_sleep_and_shows_a_diff(workbench, tmp_path: Path) -> None:
    original = workbench.write(
        {
            "app/main.py": '''
                """Docstring."""
                import time
                from fastapi import FastAPI

                app = FastAPI()


                @app.get("/")
                async def index():
                    time.sleep(0.5)
                    if True:
                        time.sleep(1)
                    return {"ok": True}


                @app.get("/cli")
                async def not_safe():
                    return time.sleep(2)
            ''',
        }
    )
    copy = tmp_path / "copy"
    shutil.copytree(original, copy)
    result = runner.invoke(app, ["analyze", str(copy), "--fix", "--no-cache"])
    assert "+    await asyncio.sleep(0.5)" in result.stdout
    assert "-    time.sleep(0.5)" in result.stdout
    fixed = (copy / "app/main.py").read_text()
    assert "await asyncio.sleep(0.5)" in fixed and "await asyncio.sleep(1)" in fixed
    assert "return time.sleep(2)" in fixed  # a used value is not a statement: left alone
    assert fixed.splitlines()[1] == "import asyncio"
    compile(fixed, "main.py", "exec")
    assert result.exit_code == 1  # the `return time.sleep(2)` finding remains
    remaining = run(copy, Config(), use_cache=False).findings
    assert [f.line for f in remaining] == [19]
    assert plan_fixes(copy, remaining) == []


def test_fix_exits_zero_when_everything_was_fixed(workbench) -> None:
    root = workbench.write(
        {
            "app/main.py": """
                import asyncio
                from time import sleep
                from fastapi import FastAPI
                app = FastAPI()

                @app.get("/")
                async def index():
                    sleep(1)
            """
        }
    )
    result = runner.invoke(app, ["analyze", str(root), "--fix", "--no-cache"])
    assert result.exit_code == 0, result.output
    text = (root / "app/main.py").read_text()
    assert "await asyncio.sleep(1)" in text
    assert text.count("import asyncio") == 1


def test_cache_reuses_unchanged_files(workbench, tmp_path: Path) -> None:
    root = workbench.write(PROJECT)
    cache = tmp_path / "cache"
    first = run(root, Config(), cache_dir=cache)
    assert first.stats["parsed"] == 3 and first.stats["cached"] == 0
    second = run(root, Config(), cache_dir=cache)
    assert second.stats["parsed"] == 0 and second.stats["cached"] == 3
    assert [f.to_json() for f in second.findings] == [f.to_json() for f in first.findings]

    services = root / "app/services.py"
    services.write_text(services.read_text())  # same content, new mtime: re-read, not re-parsed
    assert run(root, Config(), cache_dir=cache).stats["parsed"] == 0

    services.write_text("def fetch_rates():\n    return 1\n")
    third = run(root, Config(), cache_dir=cache)
    assert third.stats["parsed"] == 1
    assert {f.api for f in third.findings} == {"time.sleep"}

    (root / "app/__init__.py").unlink()
    assert run(root, Config(), cache_dir=cache).stats["files"] == 2


def test_default_cache_lives_in_the_project(workbench) -> None:
    root = workbench.write(CLEAN)
    run(root, Config())
    assert (root / ".cloudlet-cache" / ".gitignore").read_text().strip().endswith("*")
    assert run(root, Config()).stats["cached"] == 2
