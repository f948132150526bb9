"""The environment an app runs with: its own variables, never Cloudlet's (which hold secrets)."""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path

from .base import RevisionSpec

PORT = "8000"
# What a process needs to behave normally on this machine; nothing else is inherited.
INHERITED = ("PATH", "HOME", "LANG", "LC_ALL", "LC_CTYPE", "TZ", "TMPDIR")
DEFAULT_PATH = "/usr/local/bin:/usr/bin:/bin"


def venv_of(python: Path) -> Path | None:
    """The virtual environment `python` belongs to (not resolving symlinks, which lead out)."""
    venv = python.parent.parent
    return venv if (venv / "pyvenv.cfg").is_file() else None


def app_environment(spec: RevisionSpec, host: Mapping[str, str] = os.environ) -> dict[str, str]:
    env = {name: host[name] for name in INHERITED if name in host}
    path = env.get("PATH", DEFAULT_PATH)
    venv = venv_of(spec.python)
    if venv is not None:
        env["VIRTUAL_ENV"] = str(venv)
        path = f"{venv / 'bin'}{os.pathsep}{path}"
    env["PATH"] = path
    env["PYTHONUNBUFFERED"] = "1"  # output reaches the logs as it is written
    env.update(spec.env)
    env["PORT"] = PORT
    return env
