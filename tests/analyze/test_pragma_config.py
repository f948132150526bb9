"""`# sync-ok` silences exactly what it marks; `[tool.cloudlet.analyze]` extends the analysis."""

from __future__ import annotations

import pytest

from cloudlet.analyze import Config, ConfigError, run
from cloudlet.analyze.facts import pragma_lines

PRAGMAS = """
import subprocess
import requests
from fastapi import Depends, FastAPI
app = FastAPI()

def audit():
    requests.post("http://audit")  # BLOCKS

def hostname():
    return subprocess.check_output(["hostname"])  # sync-ok: 1 ms, cached

def quiet():  # sync-ok
    requests.get("http://quiet")  # FINE

def long_signature(
    a: int = 1,
):  # sync-ok: the whole function
    open("x")  # FINE

@app.get("/a")
async def a():
    audit()  # sync-ok: reported once at the sibling call below
    audit()
    hostname()
    quiet()
    long_signature()

@app.get("/b")
async def b():
    requests.get("http://b", data="# sync-ok")  # BLOCKS
    subprocess.run(["ls"])  # noqa: ASYNC221
    subprocess.run(["ls", "-l"])  # noqa: E501  # BLOCKS
"""


def test_pragma_scope(workbench) -> None:
    found = {line for _, line in workbench.reported({"app/main.py": PRAGMAS})}
    expected = workbench.marked(PRAGMAS, "# BLOCKS")
    assert found == expected


def test_pragma_on_the_only_call_site_silences_the_path(workbench) -> None:
    source = """
        import time
        from fastapi import FastAPI
        app = FastAPI()

        def wait():
            time.sleep(1)

        @app.get("/")
        async def index():
            wait()  # sync-ok
    """
    assert workbench.reported({"app/main.py": source}) == set()


def test_pragma_lines_only_in_comments() -> None:
    source = 'x = "# sync-ok"\ny = 1  # sync-ok: because\n# sync-ok\nz = 2  # noqa: ASYNC210\n'
    assert pragma_lines(source) == frozenset({2, 3, 4})
    assert pragma_lines("x = 1\n") == frozenset()


PROJECT = {
    "app/main.py": """
        import time
        import legacy
        from fastapi import FastAPI
        from app.generated import slow
        app = FastAPI()

        @app.get("/")
        async def index():
            legacy.fetch_all()
            time.sleep(1)
            slow()
    """,
    "app/generated/__init__.py": """
        import time

        def slow():
            time.sleep(2)
    """,
}


def test_config_adds_blocking_apis_and_ignores_paths(workbench) -> None:
    root = workbench.write(
        {
            **PROJECT,
            "pyproject.toml": """
                [tool.cloudlet.analyze]
                exclude = ["app/generated"]
                non-blocking = ["time.sleep"]

                [tool.cloudlet.analyze.blocking]
                "legacy.fetch_all" = { kind = "http", fix = "use legacy.async_fetch_all" }
            """,
        }
    )
    (finding,) = run(root, use_cache=False).findings
    assert (finding.line, finding.api, finding.kind) == (9, "legacy.fetch_all", "http")
    assert finding.fix.endswith("use legacy.async_fetch_all")


def test_without_config_the_defaults_apply(workbench) -> None:
    root = workbench.write(PROJECT)
    assert {(f.file, f.line) for f in run(root, use_cache=False).findings} == {
        ("app/main.py", 10),
        ("app/generated/__init__.py", 4),
    }


@pytest.mark.parametrize(
    "table",
    [
        {"exclude": "tests"},
        {"blocking": {"x.y": 3}},
        {"unknown-key": True},
        {"cache-dir": 1},
    ],
)
def test_bad_config_is_a_clear_error(table: dict[str, object]) -> None:
    with pytest.raises(ConfigError):
        Config.from_table(table)


def test_bad_pyproject_is_a_clear_error(workbench) -> None:
    root = workbench.write({"pyproject.toml": "[tool.cloudlet.analyze\n"})
    with pytest.raises(ConfigError):
        Config.from_project(root)
