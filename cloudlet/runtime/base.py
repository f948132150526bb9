"""The runtime interface: what the controller asks of any backend (local processes, Kubernetes)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Protocol

# RuntimeEvent.instance_id of events about a revision's zygote rather than one of its instances.
ZYGOTE = "zygote"


@dataclass(frozen=True)
class RevisionSpec:
    revision_id: str
    app_id: str
    python: Path  # the revision venv's python (not Cloudlet's own interpreter)
    project_dir: Path  # working directory of the app
    import_root: Path  # first on sys.path
    entrypoint: str  # "module.sub:attr"
    env: Mapping[str, str]  # the app's environment variables; the runtime adds PORT=8000
    memory_limit_mb: int = 512


@dataclass(frozen=True)
class Instance:
    id: str
    revision_id: str
    socket_path: Path  # uvicorn listens here (Unix socket)
    pid: int


class StartError(Exception):
    """A revision or an instance could not be started.

    `message` is one line for people; `detail` is the app's own output tail (usually a traceback);
    `oom` says the process went over its memory limit.
    """

    def __init__(self, message: str, detail: str = "", *, oom: bool = False) -> None:
        super().__init__(message)
        self.message = message
        self.detail = detail
        self.oom = oom


@dataclass(frozen=True)
class LogRecord:
    app_id: str
    revision_id: str
    instance_id: str | None  # None: the revision's zygote
    timestamp: datetime  # UTC, timezone-aware
    level: str  # "debug" | "info" | "warning" | "error" | "critical"
    message: str


@dataclass(frozen=True)
class RuntimeEvent:
    revision_id: str
    instance_id: str  # ZYGOTE for the revision's zygote
    kind: str  # "exited" | "oom" | "restarted" | "gave_up"
    detail: str


class Backend(Protocol):
    async def prepare(self, spec: RevisionSpec) -> None:
        """Start the revision's zygote, which imports the app once.

        Raises StartError: an import error carries the traceback in `detail`; an import that
        goes over the memory limit has `oom=True`.
        """
        ...

    async def start_instance(self, revision_id: str) -> Instance:
        """Fork an instance from the zygote and return it once it answers HTTP on its socket.

        Raises StartError on a timeout, a crash at lifespan startup or an OOM.
        """
        ...

    async def stop_instance(
        self, revision_id: str, instance_id: str, *, drain_s: float = 30
    ) -> None:
        """SIGTERM (uvicorn finishes in-flight requests), then SIGKILL after drain_s."""
        ...

    async def stop_revision(self, revision_id: str, *, drain_s: float = 30) -> None:
        """Stop all instances of the revision, then its zygote."""
        ...

    def instances(self, revision_id: str) -> list[Instance]:
        """The revision's ready instances."""
        ...

    def is_prepared(self, revision_id: str) -> bool:
        """The revision's zygote is up (or starting): an instance needs no prepare()."""
        ...

    async def close(self) -> None:
        """Stop everything."""
        ...
