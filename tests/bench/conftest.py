"""What the benchmark smoke tests share: their marks, and running one `cloudlet bench NAME
--quick` as a subprocess. No timing is ever asserted: the numbers of a --quick run on a
shared machine mean nothing."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

REPO = Path(__file__).resolve().parents[2]

MARKS = [
    pytest.mark.slow,
    pytest.mark.skipif(
        shutil.which("wrk") is None,
        reason="wrk is not installed (Debian: apt-get install wrk; `dev.py test` does as root)",
    ),
    pytest.mark.skipif(not sys.platform.startswith("linux"), reason="the benchmarks read /proc"),
]


def run_bench(name: str, results: Path, *args: str) -> tuple[str, dict[str, Any]]:
    """`cloudlet bench NAME --quick ARGS`: its output and the one valid JSON it wrote."""
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "cloudlet.cli",
            "bench",
            name,
            "--quick",
            *args,
            "--results-dir",
            results,
        ],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=900,
    )
    output = done.stdout + done.stderr
    assert done.returncode == 0, output
    files = sorted(results.glob(f"{name}-*.json"))
    assert len(files) == 1, output
    assert not list(results.glob("*.tmp")), "a half-written result was left behind"
    data: dict[str, Any] = json.loads(files[0].read_text())
    assert data["benchmark"] == name
    assert data["machine"]["cores"] >= 1
    assert data["machine"]["versions"]["uvicorn"]
    return output, data
