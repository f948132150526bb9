"""The runtime's small parts, without processes."""

from __future__ import annotations

import ast
import json
import logging
from datetime import UTC, datetime
from pathlib import Path

import pytest

from cloudlet.runtime import RevisionSpec, paths
from cloudlet.runtime.backoff import RestartBackoff
from cloudlet.runtime.environment import app_environment
from cloudlet.runtime.logs import OutputTail, level_name, parse_line
from cloudlet.runtime.zygote import RECORD_MARK

ZYGOTE_SOURCE = Path(__file__).parents[2] / "cloudlet" / "runtime" / "zygote.py"


def record_line(levelno: int, message: str, created: float = 1_700_000_000.5) -> str:
    return RECORD_MARK + json.dumps({"t": created, "n": levelno, "m": message})


def test_record_lines_keep_level_time_and_lines() -> None:
    timestamp, level, message = parse_line(record_line(logging.WARNING, "a\nb"), "stderr")
    assert (level, message) == ("warning", "a\nb")
    assert timestamp == datetime.fromtimestamp(1_700_000_000.5, UTC)


def test_plain_lines_take_the_stream_level_unless_prefixed() -> None:
    assert parse_line("hello", "stdout")[1:] == ("info", "hello")
    assert parse_line("Traceback (most recent call last):", "stderr")[1:] == (
        "error",
        "Traceback (most recent call last):",
    )
    assert parse_line("INFO:     Started server process [1]", "stderr")[1:] == (
        "info",
        "Started server process [1]",
    )
    assert parse_line("WARNING:root:careful", "stderr")[1:] == ("warning", "root:careful")
    assert parse_line("ERROR: no", "stdout")[1:] == ("error", "no")
    assert parse_line(RECORD_MARK + "not json", "stdout")[1] == "info"
    assert parse_line("x", "stdout")[0].tzinfo is UTC


def test_custom_levels_map_to_the_nearest_name_above() -> None:
    assert [level_name(n) for n in (5, 10, 15, 20, 25, 30, 35, 40, 45, 50, 60)] == [
        "debug",
        "debug",
        "info",
        "info",
        "warning",
        "warning",
        "error",
        "error",
        "critical",
        "critical",
        "critical",
    ]


def test_output_tail_keeps_the_last_lines() -> None:
    tail = OutputTail(lines=3)
    for message in ("one", "two\nthree", "four"):
        tail.add(message)
    assert tail.text() == "two\nthree\nfour"
    assert tail.text(1) == "four"


def test_backoff_doubles_up_to_the_cap_and_resets_after_a_long_run() -> None:
    backoff = RestartBackoff()
    assert [backoff.next_delay(0) for _ in range(9)] == [0.5, 1, 2, 4, 8, 16, 30, 30, 30]
    assert backoff.next_delay(59) == 30
    assert backoff.next_delay(60) == 0.5
    assert backoff.next_delay(1) == 1


def test_app_environment_is_the_apps_own(tmp_path: Path) -> None:
    venv = tmp_path / "venv"
    (venv / "bin").mkdir(parents=True)
    (venv / "pyvenv.cfg").write_text("home = /usr/bin\n")
    spec = RevisionSpec(
        revision_id="r",
        app_id="a",
        python=venv / "bin" / "python",
        project_dir=tmp_path,
        import_root=tmp_path,
        entrypoint="main:app",
        env={"DATABASE_URL": "sqlite://", "PORT": "9999", "LANG": "C.UTF-8"},
    )
    host = {"PATH": "/usr/bin", "HOME": "/root", "LANG": "en_US.UTF-8", "CLOUDLET_TOKEN": "x"}
    env = app_environment(spec, host)
    assert env == {
        "PATH": f"{venv / 'bin'}:/usr/bin",
        "HOME": "/root",
        "LANG": "C.UTF-8",
        "VIRTUAL_ENV": str(venv),
        "PYTHONUNBUFFERED": "1",
        "DATABASE_URL": "sqlite://",
        "PORT": "8000",
    }


def test_socket_paths_are_checked() -> None:
    paths.check_run_dir(Path("/tmp/cloudlet"))
    with pytest.raises(ValueError, match="is 111 bytes; the limit is 107"):
        paths.check_socket_path(Path("/" + "s" * 110))


def test_revision_keys_are_short_stable_and_distinct() -> None:
    key = paths.revision_key("rev-1", set())
    assert len(key) == paths.KEY_LENGTH
    assert paths.revision_key("rev-1", set()) == key
    assert paths.revision_key("rev-1", {key}) != key


def test_zygote_stands_alone_and_runs_on_old_pythons() -> None:
    tree = ast.parse(ZYGOTE_SOURCE.read_text(), feature_version=(3, 8))
    imported = {
        alias.name.split(".")[0]
        for node in ast.walk(tree)
        if isinstance(node, ast.Import)
        for alias in node.names
    }
    imported |= {
        (node.module or "").split(".")[0]
        for node in ast.walk(tree)
        if isinstance(node, ast.ImportFrom)
    }
    assert "cloudlet" not in imported and "" not in imported  # no relative imports either
    assert imported - {"__future__"} <= {
        "argparse",
        "contextlib",
        "ctypes",
        "gc",
        "importlib",
        "inspect",
        "json",
        "logging",
        "os",
        "selectors",
        "signal",
        "socket",
        "sys",
        "threading",
        "time",
        "traceback",
        "typing",
        "uvicorn",
    }
