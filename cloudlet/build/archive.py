"""Safe extraction of the `.tar.zst` upload that `fastapi deploy` sends.

The CLI writes a zstd-compressed GNU tar of regular files with relative POSIX names. Anything else
is refused: the archive is untrusted input, so sizes are counted from the bytes actually produced
(never from headers), links and special files are rejected, and every name must stay inside `dest`.
"""

from __future__ import annotations

import errno
import os
import shutil
import stat
import tarfile
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Self

import zstandard

from cloudlet.build.errors import BuildError

__all__ = ["ArchiveLimits", "extract_archive"]

ZSTD_MAGIC = b"\x28\xb5\x2f\xfd"

# libzstd's default window limit, stated explicitly: a frame may not demand more memory than this.
_MAX_WINDOW_BYTES = 1 << 27
# Decompressed bytes allowed per member on top of file contents: a 512-byte header, up to 511
# bytes of padding, and room for a GNU long-name record.
_MEMBER_OVERHEAD_BYTES = 4096
# tarfile reads long-name and PAX records whole into memory, so their size is capped.
_MAX_METADATA_BYTES = 1 << 16
_METADATA_TYPES = frozenset(
    {
        tarfile.GNUTYPE_LONGNAME,
        tarfile.GNUTYPE_LONGLINK,
        tarfile.XHDTYPE,
        tarfile.XGLTYPE,
        tarfile.SOLARIS_XHDTYPE,
    }
)
_REGULAR_TYPES = frozenset({tarfile.REGTYPE, tarfile.AREGTYPE})
# Well under PATH_MAX (4096) once the build folder's own path is in front.
_MAX_NAME_BYTES = 1024
_MAX_NAME_PART_BYTES = 255
_CHUNK_BYTES = 1 << 16

_IGNORE_HINT = (
    "Exclude what the app does not need at runtime (virtualenvs, node_modules, datasets, media, "
    "build output) with a .fastapicloudignore file (gitignore syntax) in the project folder, "
    "then deploy again."
)
_CLI_HINT = (
    "Deploy with the official `fastapi deploy` CLI, which uploads only regular files with "
    "relative paths. If you build the archive yourself, do the same."
)


@dataclass(frozen=True)
class ArchiveLimits:
    max_files: int = 10_000
    max_unpacked_bytes: int = 100 * 1024 * 1024
    max_compressed_bytes: int = 100 * 1024 * 1024  # the upload itself


def extract_archive(archive: Path, dest: Path, limits: ArchiveLimits = ArchiveLimits()) -> int:
    """Extract `archive` into `dest` (which must not exist yet) and return the number of files.

    Files are written into a private folder beside `dest` that is renamed to `dest` only once
    everything checked out, so a failure leaves nothing behind. Raises `BuildError`.
    """
    compressed_bytes = archive.stat().st_size
    if compressed_bytes > limits.max_compressed_bytes:
        raise _too_large(
            f"The upload is {_human_size(compressed_bytes)}, more than the "
            f"{_human_size(limits.max_compressed_bytes)} limit."
        )
    if dest.exists():
        raise FileExistsError(f"{dest} already exists")
    dest.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{dest.name}.", suffix=".partial", dir=dest.parent))
    try:
        with archive.open("rb") as upload:
            if upload.read(len(ZSTD_MAGIC)) != ZSTD_MAGIC:
                raise _corrupt("The upload is not zstd-compressed.")
            upload.seek(0)
            file_count = _extract_stream(upload, staging, limits)
        staging.chmod(0o755)
        staging.rename(dest)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return file_count


def _extract_stream(upload: IO[bytes], staging: Path, limits: ArchiveLimits) -> int:
    # Bounds everything tarfile reads, headers included, so a decompression bomb stops early.
    budget = limits.max_unpacked_bytes + (limits.max_files + 2) * _MEMBER_OVERHEAD_BYTES
    decompressor = zstandard.ZstdDecompressor(max_window_size=_MAX_WINDOW_BYTES)
    try:
        with decompressor.stream_reader(upload, read_across_frames=True) as plain:
            bounded = _BoundedReader(plain, budget, limits.max_unpacked_bytes)
            with tarfile.open(
                fileobj=bounded,
                mode="r|",
                tarinfo=_CheckedTarInfo,
                encoding="utf-8",
                errors="surrogateescape",
            ) as tar:
                file_count = _write_members(tar, staging, limits)
    except zstandard.ZstdError as exc:
        raise _corrupt(f"The zstd data is damaged ({exc}).") from None
    except (tarfile.TarError, EOFError) as exc:
        raise _corrupt(f"The tar data is damaged or truncated ({exc}).") from None
    if file_count == 0:
        raise BuildError(
            "extracting_failed",
            "archive_empty",
            "Empty upload",
            "The upload contains no files.",
            "Check that .fastapicloudignore (or .gitignore in a git repository) does not "
            "exclude the whole project.",
        )
    return file_count


def _write_members(tar: tarfile.TarFile, staging: Path, limits: ArchiveLimits) -> int:
    entries = file_count = unpacked = 0
    for member in tar:
        entries += 1
        if entries > limits.max_files:
            raise BuildError(
                "extracting_failed",
                "archive_too_many_files",
                "Too many files",
                f"The upload contains more than {limits.max_files:,} files.",
                _IGNORE_HINT,
            )
        parts = _checked_parts(member.name)
        if member.isdir():
            if parts:
                directory = _make_dirs(staging, parts, member.name)
                directory.chmod((member.mode & 0o755) | 0o700)
            continue
        _check_regular(member)
        if not parts:
            raise _bad_name(member.name, "it is not a file name")
        remaining = limits.max_unpacked_bytes - unpacked
        if member.size > remaining:  # the header is only trusted to fail early, never to pass
            raise _unpacked_too_large(limits)
        content = tar.extractfile(member)
        if content is None:  # unreachable for regular files; keeps the type checker honest
            raise _corrupt(f"{member.name!r} has no content.")
        parent = _make_dirs(staging, parts[:-1], member.name)
        unpacked += _write_file(content, parent / parts[-1], member, remaining, limits)
        file_count += 1
    return file_count


def _checked_parts(name: str) -> tuple[str, ...]:
    """Split a member name into path parts, refusing anything that could leave the folder."""
    if "\x00" in name:
        raise _bad_name(name, "it contains a NUL byte")
    if any(ord(char) < 32 or ord(char) == 127 for char in name):
        raise _bad_name(name, "it contains control characters")
    if any("\udc80" <= char <= "\udcff" for char in name):
        raise _bad_name(name, "it is not valid UTF-8")
    if "\\" in name:
        raise _bad_name(name, "it contains a backslash")
    if name.startswith("/"):
        raise _unsafe_path(name, "it is an absolute path")
    parts = tuple(part for part in name.split("/") if part not in ("", "."))
    if ".." in parts:
        raise _unsafe_path(name, "it contains '..'")
    if len(name.encode()) > _MAX_NAME_BYTES or any(
        len(part.encode()) > _MAX_NAME_PART_BYTES for part in parts
    ):
        raise _bad_name(name, "it is too long")
    return parts


def _check_regular(member: tarfile.TarInfo) -> None:
    if member.type in _REGULAR_TYPES:
        return
    if member.issym() or member.islnk():
        kind = "a symbolic link" if member.issym() else "a hard link"
        raise BuildError(
            "extracting_failed",
            "archive_link",
            "Links are not supported",
            f"{member.name!r} is {kind}; uploads may contain only regular files.",
            "Replace the link with a copy of the file it points to, or exclude it with "
            ".fastapicloudignore.",
        )
    if member.ischr() or member.isblk() or member.isfifo():
        kind = "a FIFO" if member.isfifo() else "a device file"
        message = f"{member.name!r} is {kind}; uploads may contain only regular files."
    else:
        message = f"{member.name!r} is an unsupported tar entry (type {member.type!r})."
    raise BuildError(
        "extracting_failed",
        "archive_special_file",
        "Unsupported file in the upload",
        message,
        f"Exclude it with .fastapicloudignore. {_CLI_HINT}",
    )


def _make_dirs(root: Path, parts: tuple[str, ...], name: str) -> Path:
    current = root
    for part in parts:
        current = current / part
        try:
            current.mkdir(mode=0o755)
        except FileExistsError:
            if not stat.S_ISDIR(current.lstat().st_mode):
                raise _conflict(name) from None
        except OSError as exc:
            if exc.errno == errno.ENAMETOOLONG:
                raise _bad_name(name, "it is too long") from None
            raise
    return current


def _write_file(
    content: IO[bytes],
    target: Path,
    member: tarfile.TarInfo,
    remaining: int,
    limits: ArchiveLimits,
) -> int:
    # O_EXCL: a name that already exists (a duplicate entry, or a folder) is a conflict, never an
    # overwrite. O_NOFOLLOW: defence in depth, although no links are ever created here.
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC
    try:
        fd = os.open(target, flags, 0o600)
    except FileExistsError:
        raise _conflict(member.name) from None
    except OSError as exc:
        if exc.errno == errno.ENAMETOOLONG:
            raise _bad_name(member.name, "it is too long") from None
        raise
    written = 0
    with os.fdopen(fd, "wb") as out:
        while chunk := content.read(_CHUNK_BYTES):
            written += len(chunk)
            if written > remaining:
                raise _unpacked_too_large(limits)
            out.write(chunk)
    # Keep the executable bits; drop setuid/setgid/sticky and group/other write; owner can rw.
    target.chmod((member.mode & 0o755) | 0o600)
    mtime = max(0, int(member.mtime))
    os.utime(target, (mtime, mtime))
    return written


class _CheckedTarInfo(tarfile.TarInfo):
    @classmethod
    def frombuf(cls, buf: bytes | bytearray, encoding: str, errors: str) -> Self:
        info = super().frombuf(buf, encoding, errors)
        if info.type in _METADATA_TYPES and info.size > _MAX_METADATA_BYTES:
            raise _corrupt(f"A tar metadata record claims {info.size:,} bytes.")
        return info


class _BoundedReader:
    """A read-only file object that refuses to produce more than `budget` bytes."""

    def __init__(self, source: IO[bytes], budget: int, max_unpacked_bytes: int) -> None:
        self._source = source
        self._budget = budget
        self._max_unpacked_bytes = max_unpacked_bytes
        self._position = 0

    def read(self, size: int = -1, /) -> bytes:
        allowed = self._budget - self._position + 1  # one byte more reveals an overrun
        data = self._source.read(allowed if size < 0 else min(size, allowed))
        self._position += len(data)
        if self._position > self._budget:
            raise BuildError(
                "extracting_failed_archive_too_large",
                "archive_too_large",
                "Upload too large",
                f"The upload unpacks to more than {_human_size(self._max_unpacked_bytes)}.",
                _IGNORE_HINT,
            )
        return data

    def tell(self) -> int:
        return self._position

    def write(self, data: bytes, /) -> int:
        raise OSError("read-only stream")

    def seek(self, position: int, /) -> int:
        raise OSError("stream is not seekable")

    def close(self) -> None:
        self._source.close()


def _too_large(message: str) -> BuildError:
    return BuildError(
        "extracting_failed_archive_too_large",
        "archive_too_large",
        "Upload too large",
        message,
        _IGNORE_HINT,
    )


def _unpacked_too_large(limits: ArchiveLimits) -> BuildError:
    return _too_large(f"The upload unpacks to more than {_human_size(limits.max_unpacked_bytes)}.")


def _corrupt(detail: str) -> BuildError:
    return BuildError(
        "extracting_failed",
        "archive_corrupt",
        "Upload could not be read",
        f"The upload is not a valid zstd-compressed tar archive. {detail}",
        "Deploy again with `fastapi deploy`. If it keeps failing, the upload may have been cut "
        "off or altered on the way.",
    )


def _unsafe_path(name: str, reason: str) -> BuildError:
    return BuildError(
        "extracting_failed",
        "archive_unsafe_path",
        "Unsafe path in the upload",
        f"The upload contains {name!r}, which is refused because {reason}: every path must stay "
        "inside the project folder.",
        _CLI_HINT,
    )


def _bad_name(name: str, reason: str) -> BuildError:
    return BuildError(
        "extracting_failed",
        "archive_bad_name",
        "Unsupported file name in the upload",
        f"The upload contains {name!r}, which is refused because {reason}.",
        "Rename the file (plain UTF-8 names with '/' as the separator), or exclude it with "
        ".fastapicloudignore.",
    )


def _conflict(name: str) -> BuildError:
    return BuildError(
        "extracting_failed",
        "archive_conflict",
        "Conflicting files in the upload",
        f"{name!r} appears twice in the upload, or clashes with a folder or file of the same name.",
        _CLI_HINT,
    )


def _human_size(size: int) -> str:
    if size < 1024:
        return f"{size} bytes"
    if size < 1024 * 1024:
        return f"{size / 1024:.0f} KiB"
    return f"{size / (1024 * 1024):.0f} MiB"
