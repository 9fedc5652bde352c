"""Snapshots kept beside the logbook (`snapshots/` in the state directory), within a size and
an age limit, the oldest deleted first.

`prune` is the pure rule (which files go, given what is there, the time and the limits);
`SnapshotStore` does the file work, and the component runs it off the event loop.
A snapshot's file name carries its id, `<event id>-<camera>-<n>.jpg`, so the event that
references it, the MQTT message that carries it and the file on disk share one name.

Delivery to the office (`deliver=True`): each image also has a row in `delivery.sqlite3` in
the same directory, numbered in the order the images came in, with its state (0 waiting,
1 acknowledged by the broker, 2 refused by the broker: never sent again). The row lives as long
as the file: pruning a file deletes its row, and an image pruned before it was sent is counted
(`dropped`), so a long outage ends with the newest pictures sent and a count of the rest. The
logbook's journal keeps a cursor per channel for millions of events; a few thousand images
need no more than a flag per row and a partial index on the waiting ones.
"""

from __future__ import annotations

import hashlib
import os
import sqlite3
import threading
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

SUFFIX = ".jpg"
DELIVERY_DB = "delivery.sqlite3"
WAITING, SENT, REFUSED = 0, 1, 2
ORDER = "_order"  # the key of an image's place in the office's queue, in save()'s answer

_SCHEMA = """
CREATE TABLE IF NOT EXISTS images (
    n       INTEGER PRIMARY KEY AUTOINCREMENT,
    id      TEXT NOT NULL UNIQUE,
    event   TEXT NOT NULL,
    state   INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX IF NOT EXISTS images_waiting ON images(n) WHERE state = 0;
CREATE TABLE IF NOT EXISTS meta (
    key     TEXT PRIMARY KEY,
    value   INTEGER NOT NULL
);
PRAGMA user_version = 1;
"""


@dataclass(frozen=True)
class Waiting:
    """An image the office has not acknowledged yet, in the order images came in."""

    order: int
    event_id: str
    sid: str


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

    def __init__(
        self, root: Path, max_bytes: int, max_age: timedelta, *, deliver: bool = False
    ) -> None:
        self.root = root
        self.deliver = deliver
        self._db: sqlite3.Connection | None = None
        self.dropped_count = 0  # images pruned before the office had them (kept in the table)
        self.max_bytes = max_bytes
        self.max_age = max_age
        # what is on disk, read once: a save must not list a thousand files to find that
        # nothing needs pruning (the directory is ours alone)
        self._index: dict[str, Stored] | None = None
        self._total = 0
        self._oldest = float("inf")
        self._lock = threading.Lock()  # saves run in worker threads

    def _conn(self) -> sqlite3.Connection:
        """The delivery table (under the lock): WAL, synchronous=NORMAL, like the picture
        files themselves it may lose its last moments in a power cut, never its consistency."""
        if self._db is None:
            self.root.mkdir(parents=True, exist_ok=True, mode=0o750)
            db = sqlite3.connect(self.root / DELIVERY_DB, check_same_thread=False, isolation_level=None)
            db.execute("PRAGMA journal_mode=WAL")
            db.execute("PRAGMA synchronous=NORMAL")
            db.executescript(_SCHEMA)
            row = db.execute("SELECT value FROM meta WHERE key = 'dropped'").fetchone()
            self.dropped_count = 0 if row is None else int(row[0])
            self._db = db
        return self._db

    def close(self) -> None:
        with self._lock:
            if self._db is not None:
                self._db.close()
                self._db = None

    def _loaded(self) -> dict[str, Stored]:
        if self._index is None:
            self._index = {f.name: f for f in self.listing()}
            self._recount()
        return self._index

    def _recount(self) -> None:
        index = self._index or {}
        self._total = sum(f.size for f in index.values())
        self._oldest = min((f.mtime for f in index.values()), default=float("inf"))

    def save(
        self, sid: str, data: bytes, taken: datetime, event_id: str | None = None
    ) -> dict[str, Any]:
        """Write one snapshot (atomically), prune, and return its reference for the event.
        With `deliver` and an `event_id`, the image also waits for the office (its row)."""
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
            order = None
            if self.deliver and event_id is not None:
                db = self._conn()
                db.execute("INSERT OR IGNORE INTO images(id, event) VALUES (?, ?)", (sid, event_id))
                order = db.execute("SELECT n FROM images WHERE id = ?", (sid,)).fetchone()[0]
            self._prune_locked(stamp)
        ref = {"id": sid, "ts": taken.isoformat(timespec="milliseconds"), "size": len(data),
               "sha256": hashlib.sha256(data).hexdigest()}  # fmt: skip
        if order is not None:
            ref[ORDER] = order  # for the component's queue; not part of the event
        return ref

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
        if self.deliver and gone:
            self._forget([name.removesuffix(SUFFIX) for name in gone])
        return gone

    def _forget(self, sids: list[str]) -> None:
        """Rows of deleted files go; those never sent are counted as dropped."""
        db = self._conn()
        with db:
            db.execute("BEGIN")
            unsent = 0
            for sid in sids:
                row = db.execute("SELECT state FROM images WHERE id = ?", (sid,)).fetchone()
                if row is not None:
                    unsent += row[0] == WAITING
                    db.execute("DELETE FROM images WHERE id = ?", (sid,))
            if unsent:
                self.dropped_count += unsent
                db.execute(
                    "INSERT INTO meta(key, value) VALUES ('dropped', ?)"
                    " ON CONFLICT(key) DO UPDATE SET value = value + excluded.value",
                    (unsent,),
                )

    # ------------------------------------------------------------------ delivery
    def waiting(self) -> list[Waiting]:
        """The images not acknowledged yet, oldest first (at start: the backlog)."""
        if not self.deliver:
            return []
        with self._lock:
            rows = self._conn().execute(
                "SELECT n, event, id FROM images WHERE state = 0 ORDER BY n"
            ).fetchall()
        return [Waiting(n, ev, sid) for n, ev, sid in rows]

    def mark(self, sids: list[str], state: int) -> None:
        """Record the broker's answer for these images (SENT or REFUSED)."""
        if not sids or not self.deliver:
            return
        with self._lock:
            self._conn().executemany(
                "UPDATE images SET state = ? WHERE id = ?", [(state, s) for s in sids]
            )

    def lost(self, sid: str) -> None:
        """An image waiting for the office whose file is gone (deleted by hand): dropped."""
        with self._lock:
            self._forget([sid])

    def dropped(self) -> int:
        """Images pruned (or lost) before the office had them, since this store began."""
        if not self.deliver:
            return 0
        with self._lock:
            self._conn()
            return self.dropped_count

    def read(self, sid: str) -> bytes | None:
        path = self.root / f"{sid}{SUFFIX}"
        try:
            return path.read_bytes()
        except FileNotFoundError:
            return None
