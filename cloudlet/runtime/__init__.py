"""The runtime: runs instances of a revision (see DESIGN.md, "Runtime")."""

from .base import (
    ZYGOTE,
    Backend,
    Instance,
    LogRecord,
    RevisionSpec,
    RuntimeEvent,
    StartError,
)
from .local import LocalRuntime

__all__ = [
    "ZYGOTE",
    "Backend",
    "Instance",
    "LocalRuntime",
    "LogRecord",
    "RevisionSpec",
    "RuntimeEvent",
    "StartError",
]
