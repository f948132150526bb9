"""The facts cache: a re-run only parses files whose content changed.

One pickle per project, keyed by file path; an entry is reused when mtime and size match, or,
when they do not, when the content hash still does (a `touch` or a checkout re-reads, never
re-parses). Files that disappeared are dropped on save. The file is written then renamed.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import pickle
import sys
import tempfile
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NamedTuple

from cloudlet.analyze.facts import ModuleFacts

# Bump when facts.py changes shape or meaning: old caches are then ignored.
FACTS_VERSION = 2
CACHE_FILE = "analyze-facts.pickle"
RESULT_FILE = "analyze-result.pickle"
ANALYZER_DIR = Path(__file__).parent


class Entry(NamedTuple):
    mtime_ns: int
    size: int
    digest: str
    module: str
    is_package: bool
    facts: ModuleFacts


def digest_of(data: bytes) -> str:
    return hashlib.blake2b(data, digest_size=16).hexdigest()


@dataclass
class FactsCache:
    file: Path
    header: tuple[object, ...]
    entries: dict[str, Entry] = field(default_factory=dict)
    seen: dict[str, Entry] = field(default_factory=dict)
    dirty: bool = False

    @classmethod
    def open(cls, cache_dir: Path, root: Path) -> FactsCache:
        header = (FACTS_VERSION, sys.version_info[:2], str(root))
        cache = cls(file=cache_dir / CACHE_FILE, header=header)
        try:
            with cache.file.open("rb") as f:
                stored_header, entries = pickle.load(f)
        except (OSError, EOFError, pickle.UnpicklingError, ValueError, TypeError, AttributeError):
            return cache
        if stored_header == header and isinstance(entries, dict):
            cache.entries = entries
        return cache

    def get(
        self, rel: str, path: Path, module: str, is_package: bool
    ) -> tuple[ModuleFacts | None, bytes | None]:
        """The cached facts, or None and (when already read) the file's bytes."""
        entry = self.entries.get(rel)
        try:
            stat = path.stat()
        except OSError:
            return None, None
        if entry is None or entry.module != module or entry.is_package != is_package:
            return None, None
        if entry.mtime_ns == stat.st_mtime_ns and entry.size == stat.st_size:
            self.seen[rel] = entry
            return entry.facts, None
        try:
            data = path.read_bytes()
        except OSError:
            return None, None
        if digest_of(data) == entry.digest:
            self.seen[rel] = entry._replace(mtime_ns=stat.st_mtime_ns, size=stat.st_size)
            self.dirty = True
            return entry.facts, None
        return None, data

    def put(self, rel: str, path: Path, data: bytes, facts: ModuleFacts) -> None:
        try:
            stat = path.stat()
        except OSError:
            return
        self.seen[rel] = Entry(
            stat.st_mtime_ns, len(data), digest_of(data), facts.name, facts.is_package, facts
        )
        self.dirty = True

    def save(self) -> None:
        if not self.dirty and self.seen.keys() == self.entries.keys():
            return
        tmp: str | None = None
        try:
            self.file.parent.mkdir(parents=True, exist_ok=True)
            ignore = self.file.parent / ".gitignore"
            if not ignore.exists():
                ignore.write_text("# Created by `cloudlet analyze`.\n*\n")
            fd, tmp = tempfile.mkstemp(dir=self.file.parent, prefix=".facts-")
            with os.fdopen(fd, "wb") as f:
                pickle.dump((self.header, self.seen), f, protocol=pickle.HIGHEST_PROTOCOL)
            os.replace(tmp, self.file)
        except OSError:
            # A read-only checkout still gets its analysis, only without a cache.
            if tmp is not None:
                with contextlib.suppress(OSError):
                    os.unlink(tmp)


# -- the whole result, when nothing changed ------------------------------------------------------


def snapshot(files: Iterable[tuple[str, str, Path]], settings: str) -> str | None:
    """A key for "the same files, unchanged, analyzed with the same settings and analyzer":
    (path, module, mtime, size) of every file plus the analyzer's own files."""
    h = hashlib.blake2b(digest_size=16)
    h.update(f"{FACTS_VERSION}|{sys.version_info[:2]}|{settings}\n".encode())
    try:
        for own in sorted(ANALYZER_DIR.iterdir()):
            if own.suffix in {".py", ".toml"}:
                stat = own.stat()
                h.update(f"{own.name}|{stat.st_mtime_ns}|{stat.st_size}\n".encode())
        for rel, module, path in files:
            stat = path.stat()
            h.update(f"{rel}|{module}|{stat.st_mtime_ns}|{stat.st_size}\n".encode())
    except OSError:
        return None
    return h.hexdigest()


def load_result(cache_dir: Path, key: str) -> Any:
    try:
        with (cache_dir / RESULT_FILE).open("rb") as f:
            stored_key, result = pickle.load(f)
    except (OSError, EOFError, pickle.UnpicklingError, ValueError, TypeError, AttributeError):
        return None
    return result if stored_key == key else None


def save_result(cache_dir: Path, key: str, result: object) -> None:
    tmp: str | None = None
    try:
        cache_dir.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=cache_dir, prefix=".result-")
        with os.fdopen(fd, "wb") as f:
            pickle.dump((key, result), f, protocol=pickle.HIGHEST_PROTOCOL)
        os.replace(tmp, cache_dir / RESULT_FILE)
    except OSError:
        if tmp is not None:
            with contextlib.suppress(OSError):
                os.unlink(tmp)
