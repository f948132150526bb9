#!/usr/bin/env python3
"""Set up and run Cloudlet from a fresh clone with nothing but Python 3.11+.

    python3 dev.py run     # set up, then run the platform with a demo app
    python3 dev.py test    # set up, then run the whole test suite
    python3 dev.py check   # ruff + mypy

Setup makes .venv, installs uv into it, and lets uv install the locked dependencies.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent
VENV = ROOT / ".venv"
BIN = VENV / ("Scripts" if os.name == "nt" else "bin")
STAMP = VENV / ".cloudlet-setup"
PARALLEL = ["-n", "2", "--dist", "loadscope"]


def run(*cmd: str | Path, env: dict[str, str] | None = None) -> None:
    print("+", " ".join(str(c) for c in cmd), flush=True)
    subprocess.run([str(c) for c in cmd], check=True, cwd=ROOT, env=env)


def setup() -> None:
    if sys.version_info < (3, 11):  # noqa: UP036 - dev.py runs on any python3
        sys.exit(f"Cloudlet needs Python 3.11 or newer; this is {sys.version.split()[0]}.")
    lock = (ROOT / "uv.lock").read_bytes() + (ROOT / "pyproject.toml").read_bytes()
    digest = hashlib.sha256(lock).hexdigest()
    if STAMP.exists() and STAMP.read_text() == digest:
        return
    if not (BIN / "python").exists():
        run(sys.executable, "-m", "venv", VENV)
    run(BIN / "python", "-m", "pip", "install", "--quiet", "--disable-pip-version-check", "uv")
    run(BIN / "uv", "sync", "--frozen", "--python", BIN / "python")
    STAMP.write_text(digest)


def ensure_chromium() -> None:
    """The dashboard's browser tests drive Debian's Chromium (no browser download works here)."""
    if shutil.which("chromium") or not shutil.which("apt-get") or os.geteuid() != 0:
        return
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    run("apt-get", "update", "-qq", env=env)
    run("apt-get", "install", "-y", "-qq", "chromium", env=env)


def ensure_bench_tools() -> None:
    """The benchmark smoke tests drive Debian's wrk and nginx (`cloudlet bench ...`)."""
    missing = [
        p for p in ("wrk", "nginx") if not (shutil.which(p) or Path(f"/usr/sbin/{p}").exists())
    ]
    if not missing or not shutil.which("apt-get") or os.geteuid() != 0:
        return
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    # The benches start nginx themselves on 127.0.0.1; Debian's package would also start the
    # system service on port 80 of every interface unless a policy-rc.d forbids it.
    policy = Path("/usr/sbin/policy-rc.d")
    added = not policy.exists()
    if added:
        policy.write_text("#!/bin/sh\nexit 101\n")
        policy.chmod(0o755)
    try:
        run("apt-get", "update", "-qq", env=env)
        run("apt-get", "install", "-y", "-qq", *missing, env=env)
    finally:
        if added:
            policy.unlink()


def main() -> None:
    command = sys.argv[1] if len(sys.argv) > 1 else "help"
    args = sys.argv[2:]
    if command == "run":
        setup()
        os.execv(BIN / "cloudlet", [str(BIN / "cloudlet"), "up", "--demo", *args])
    elif command == "test":
        setup()
        ensure_chromium()
        ensure_bench_tools()
        # Two workers: end-to-end tests mostly wait on builds and processes. loadscope keeps
        # each module on one worker, so tests sharing a module's platform stay together.
        parallel = [] if any(a.startswith(("-n", "--numprocesses")) for a in args) else PARALLEL
        os.execv(BIN / "python", [str(BIN / "python"), "-m", "pytest", *parallel, *args])
    elif command == "check":
        setup()
        run(BIN / "ruff", "format", "--check", ".")
        run(BIN / "ruff", "check", ".")
        run(BIN / "mypy")
    else:
        print(__doc__)
        sys.exit(0 if command == "help" else 2)


if __name__ == "__main__":
    main()
