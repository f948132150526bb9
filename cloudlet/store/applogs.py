"""Runtime logs of apps: one append-only NDJSON file per app and day, plus live followers.

Files rather than database rows: logs are write-heavy and read by time range, and keeping them
out of the store keeps the control plane's transactions small.
"""

from __future__ import annotations

import asyncio
import json
import os
from collections import defaultdict, deque
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import IO


@dataclass(frozen=True, slots=True)
class AppLogEntry:
    timestamp: datetime
    level: str
    message: str

    def to_json(self) -> dict[str, str]:
        return {
            "timestamp": self.timestamp.astimezone(UTC).isoformat().replace("+00:00", "Z"),
            "level": self.level,
            "message": self.message,
        }


class AppLogStore:
    def __init__(self, root: Path, retention_days: int = 14) -> None:
        self.root = root
        self.retention = timedelta(days=retention_days)
        self._files: dict[tuple[str, str], IO[str]] = {}
        self._followers: dict[str, set[asyncio.Queue[AppLogEntry]]] = defaultdict(set)

    def _path(self, app_id: str, day: str) -> Path:
        return self.root / app_id / f"{day}.ndjson"

    def append(self, app_id: str, entry: AppLogEntry) -> None:
        day = entry.timestamp.strftime("%Y-%m-%d")
        handle = self._files.get((app_id, day))
        if handle is None:
            for key in [k for k in self._files if k[0] == app_id]:
                self._files.pop(key).close()
            path = self._path(app_id, day)
            path.parent.mkdir(parents=True, exist_ok=True)
            handle = self._files[(app_id, day)] = open(path, "a", encoding="utf-8")  # noqa: SIM115
        handle.write(json.dumps(entry.to_json(), ensure_ascii=False) + "\n")
        handle.flush()
        for queue in self._followers.get(app_id, ()):
            if queue.qsize() < 10_000:  # a stuck follower must not grow memory without bound
                queue.put_nowait(entry)

    def read(self, app_id: str, *, since: datetime, tail: int) -> list[AppLogEntry]:
        """The newest `tail` entries at or after `since`, oldest first."""
        folder = self.root / app_id
        if not folder.is_dir():
            return []
        days = sorted(
            p.stem for p in folder.glob("*.ndjson") if p.stem >= since.strftime("%Y-%m-%d")
        )
        found: deque[AppLogEntry] = deque(maxlen=tail)
        for day in days:
            with open(self._path(app_id, day), encoding="utf-8") as f:
                for line in f:
                    try:
                        raw = json.loads(line)
                        ts = datetime.fromisoformat(raw["timestamp"].replace("Z", "+00:00"))
                    except (ValueError, KeyError, TypeError):
                        continue  # a line torn by a crash mid-write
                    if ts >= since:
                        found.append(AppLogEntry(ts, raw.get("level", "info"), raw["message"]))
        return list(found)

    def subscribe(self, app_id: str) -> asyncio.Queue[AppLogEntry]:
        queue: asyncio.Queue[AppLogEntry] = asyncio.Queue()
        self._followers[app_id].add(queue)
        return queue

    def unsubscribe(self, app_id: str, queue: asyncio.Queue[AppLogEntry]) -> None:
        self._followers[app_id].discard(queue)

    def prune(self, now: datetime | None = None) -> None:
        cutoff = ((now or datetime.now(UTC)) - self.retention).strftime("%Y-%m-%d")
        if not self.root.is_dir():
            return
        for path in self.root.glob("*/*.ndjson"):
            if path.stem < cutoff:
                os.unlink(path)

    def close(self) -> None:
        for handle in self._files.values():
            handle.close()
        self._files.clear()
