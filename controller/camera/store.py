"""Snapshots kept beside the logbook (`snapshots/` in the state directory), within a size and
an age limit, the oldest deleted first.

`prune` is the pure rule (which files go, given what is there, the time and the limits);
`SnapshotStore` does the file work, and the component runs it off the event loop.
A snapshot's file name carries its id, `<event id>-<camera>-<n>.jpg`, so the event that
references it, the MQTT message that carries it and the file on disk share one name.
"""

from __future__ import annotations

import hashlib
import os
import threading
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

SUFFIX = ".jpg"


@dataclass(frozen=True)
class Stored:
    name: str
    mtime: float  # seconds since the epoch, the daemon's clock when it was taken
    size: int


def snapshot_id(event_id: str, camera: str, n: int) -> str:
    return f"{event_id}-{camera}-{n}"


def prune(files: list[Stored], now: float, max_bytes: int, max_age: timedelta) -> list[str]:
    """The names to delete, oldest first: everything older than `max_age`, then the oldest
    until the rest fits in `max_bytes`."""
    oldest_first = sorted(files, key=lambda f: (f.mtime, f.name))
    limit = now - max_age.total_seconds()
    total = sum(f.size for f in files)
    out: list[str] = []
    for f in oldest_first:
        if f.mtime < limit or total > max_bytes:
            out.append(f.name)
            total -= f.size
        else:
            break  # the rest are newer and fit
    return out


class SnapshotStore:
    """The snapshots directory. Blocking file I/O: call it from a worker thread."""

    def __init__(self, root: Path, max_bytes: int, max_age: timedelta) -> None:
        self.root = root
        self.max_bytes = max_bytes
        self.max_age = max_age
        # what is on disk, read once: a save must not list a thousand files to find that
        # nothing needs pruning (the directory is ours alone)
        self._index: dict[str, Stored] | None = None
        self._total = 0
        self._oldest = float("inf")
        self._lock = threading.Lock()  # saves run in worker threads

    def _loaded(self) -> dict[str, Stored]:
        if self._index is None:
            self._index = {f.name: f for f in self.listing()}
            self._recount()
        return self._index

    def _recount(self) -> None:
        index = self._index or {}
        self._total = sum(f.size for f in index.values())
        self._oldest = min((f.mtime for f in index.values()), default=float("inf"))

    def save(self, sid: str, data: bytes, taken: datetime) -> dict[str, Any]:
        """Write one snapshot (atomically), prune, and return its reference for the event."""
        self.root.mkdir(parents=True, exist_ok=True, mode=0o750)
        path = self.root / f"{sid}{SUFFIX}"
        tmp = path.with_suffix(".part")
        with open(tmp, "wb") as f:
            f.write(data)
        stamp = taken.timestamp()
        os.utime(tmp, (stamp, stamp))
        tmp.replace(path)
        with self._lock:
            index = self._loaded()
            old = index.get(path.name)
            index[path.name] = Stored(path.name, stamp, len(data))
            self._total += len(data) - (old.size if old else 0)
            self._oldest = min(self._oldest, stamp)
            self._prune_locked(stamp)
        return {"id": sid, "ts": taken.isoformat(timespec="milliseconds"), "size": len(data),
                "sha256": hashlib.sha256(data).hexdigest()}  # fmt: skip

    def listing(self) -> list[Stored]:
        out: list[Stored] = []
        if not self.root.is_dir():
            return out
        for entry in os.scandir(self.root):
            if entry.name.endswith(SUFFIX):
                try:
                    st = entry.stat()
                except FileNotFoundError:  # pruned by a snapshot saved at the same moment
                    continue
                out.append(Stored(entry.name, st.st_mtime, st.st_size))
        return out

    def prune(self, now: float) -> list[str]:
        with self._lock:
            return self._prune_locked(now)

    def _prune_locked(self, now: float) -> list[str]:
        index = self._loaded()
        if self._total <= self.max_bytes and self._oldest >= now - self.max_age.total_seconds():
            return []  # the usual case, without sorting anything
        gone = prune(list(index.values()), now, self.max_bytes, self.max_age)
        for name in gone:
            (self.root / name).unlink(missing_ok=True)
            del index[name]
        self._recount()
        return gone

    def read(self, sid: str) -> bytes | None:
        path = self.root / f"{sid}{SUFFIX}"
        try:
            return path.read_bytes()
        except FileNotFoundError:
            return None
