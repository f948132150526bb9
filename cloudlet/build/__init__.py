"""The builder: an uploaded `.tar.zst` in, a runnable revision (source, venv, entrypoint) out."""

from cloudlet.build.archive import ArchiveLimits, extract_archive
from cloudlet.build.builder import BuildResult, LogSink, build_revision
from cloudlet.build.errors import BuildError

__all__ = [
    "ArchiveLimits",
    "BuildError",
    "BuildResult",
    "LogSink",
    "build_revision",
    "extract_archive",
]
