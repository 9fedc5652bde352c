"""The logbook: every event in a SQLite file, the outbox of events not yet acknowledged by the
broker, and the state that must survive a restart (armed zones, bypasses, delays in progress).

Delivery is kept per report channel ("mqtt" today; a receiving centre tomorrow): a cursor per
channel (every event up to it is done there) and a row in `deliveries` only for the exceptions
(refused, expired, acknowledged out of order). An acknowledged batch moves the cursor with one
UPDATE; retention waits for every registered channel. The schema is versioned (`PRAGMA
user_version`, MIGRATIONS) and migrated at open. docs/storage.md argues both.

Durability: WAL mode with `synchronous=FULL`, so an event whose append() returned survives a
power cut (the WAL is fsynced at every commit). Nothing is written while nothing happens, so an
idle controller does not wear its SD card. `seq` comes from an AUTOINCREMENT key: strictly
increasing across restarts, never reused even after old events are pruned.

When the disk is full or read-only, events are kept in memory (still numbered, still published)
and written as soon as a write succeeds again; the daemon raises a trouble meanwhile.

Group commit (`group_commit=True`, for the daemon): on a running asyncio loop, append() numbers
the events at once but writes everything appended during one loop turn in one transaction (one
fsync) at the end of that turn; `flush_listeners` are told after each such write. An event is
published only once it is on disk (pending() leaves out what waits for its commit), so nothing
reaches the broker that a power cut could take back; the sirens never wait on any of it. A burst
of 25 input changes then costs one fsync instead of 25.

Syncing in the background (`sync_in_background=True`, for the daemon, with group commit): the
loop thread commits without waiting for the disk (SQLite's synchronous=NORMAL: consistent after
a power cut, but the last commits may be lost) and a worker thread then fsyncs the WAL file.
Only when that fsync has returned are the events durable: only then does pending() hand them
to the outbox and are `flush_listeners` told. So nothing reaches the broker that a power cut
could take back, exactly as with synchronous=FULL, but the loop (and with it every siren and
keypad) never stalls on the disk; on a Raspberry Pi's SD card an fsync takes 2-20 ms, with rare
spikes past 100 ms. While one fsync runs, the next turns' commits queue behind it and the next
fsync covers them all. Writes outside the loop (save_state(), close(), a retry) sync at once.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import json
import logging
import os
import sqlite3
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from controller.errors import OfficeGuardError
from controller.event_kinds import EVENT_KINDS
from controller.events import Event, EventDraft

log = logging.getLogger(__name__)

# The logbook's schema, kept in `PRAGMA user_version`: MIGRATIONS[n] takes it from version n to
# n + 1, each step in one transaction, at open. A new logbook is made by the same steps that
# bring an old one up to date, so the path from every earlier release is the one always taken.
SCHEMA_VERSION = 2

# Version 1: the schema of the releases before delivery per channel (one `sent` column on each
# event, for the MQTT outbox). Kept as it was: it is the first step of every logbook.
_V1 = """
CREATE TABLE IF NOT EXISTS events (
    seq     INTEGER PRIMARY KEY AUTOINCREMENT,
    id      TEXT NOT NULL UNIQUE,
    site    TEXT NOT NULL,
    ts      TEXT NOT NULL,
    kind    TEXT NOT NULL,
    zone    TEXT,
    sensor  TEXT,
    user    TEXT,
    cid     TEXT,
    text    TEXT NOT NULL,
    detail  TEXT NOT NULL,
    sent    INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX IF NOT EXISTS events_outbox ON events(seq) WHERE sent = 0;
CREATE INDEX IF NOT EXISTS events_ts ON events(ts);
CREATE TABLE IF NOT EXISTS state (
    key     TEXT PRIMARY KEY,
    value   TEXT NOT NULL,
    updated TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS meta (
    key     TEXT PRIMARY KEY,
    value   TEXT NOT NULL
);
"""

# Version 2: delivery per report channel (docs/storage.md). `channels.acked` is the channel's
# cursor: every event with a seq up to it is done on that channel. `deliveries` holds the
# exceptions: events refused or given up (whatever their seq), and events acknowledged out of
# order above the cursor (until the cursor passes them). The `sent` column becomes the "mqtt"
# channel: its cursor stops before the oldest unsent event, nothing queued is lost and nothing
# delivered is sent again.
_V2 = """
CREATE TABLE channels (
    name    TEXT PRIMARY KEY,
    acked   INTEGER NOT NULL
);
CREATE TABLE deliveries (
    channel TEXT NOT NULL,
    seq     INTEGER NOT NULL,
    state   INTEGER NOT NULL,
    PRIMARY KEY (channel, seq)
) WITHOUT ROWID;
INSERT INTO channels(name, acked) SELECT 'mqtt', COALESCE(
    (SELECT MIN(seq) - 1 FROM events WHERE sent = 0),
    MAX(COALESCE((SELECT MAX(seq) FROM events), 0),
        COALESCE((SELECT seq FROM sqlite_sequence WHERE name = 'events'), 0)));
INSERT INTO deliveries(channel, seq, state)
    SELECT 'mqtt', seq, sent FROM events
    WHERE sent IN (2, 3) OR (sent = 1 AND seq > (SELECT acked FROM channels WHERE name = 'mqtt'));
DROP INDEX events_outbox;
ALTER TABLE events DROP COLUMN sent;
-- where each event stands on each channel (0 pending, 1 delivered, 2 expired, 3 refused):
-- for a person with the sqlite3 shell, and for the tests; the journal itself never reads it
CREATE VIEW event_delivery AS
    SELECT c.name AS channel, e.seq AS seq,
           COALESCE(d.state, CASE WHEN e.seq <= c.acked THEN 1 ELSE 0 END) AS state
    FROM channels AS c JOIN events AS e
    LEFT JOIN deliveries AS d ON d.channel = c.name AND d.seq = e.seq;
"""

MIGRATIONS: tuple[str, ...] = (_V1, _V2)
assert len(MIGRATIONS) == SCHEMA_VERSION

# the report channel of the MQTT outbox; the one every logbook has
MQTT = "mqtt"

# Retention: keep at least a year of events and at least this many, whichever is more;
# undelivered events are never pruned.
RETENTION_MIN_EVENTS = 100_000
RETENTION_MIN_AGE = timedelta(days=366)

# Where an event stands on one report channel (the `event_delivery` view's `state`).
PENDING = 0  # not yet acknowledged: in that channel's outbox
DELIVERED = 1  # acknowledged by the receiver (the broker's PUBACK)
EXPIRED = 2  # never delivered: given up by the outbox's long-outage policy; kept in the logbook
REFUSED = 3  # never delivered: the receiver refused it (or it is over the broker's size limit)

# Kinds the long-outage policy may give up on first (the rest are never expired):
# book-keeping, not what the security office must act on (`expirable` in event_kinds.py).
LOW_PRIORITY_KINDS: tuple[str, ...] = tuple(k.name for k in EVENT_KINDS.values() if k.expirable)
# a low-priority kind carrying this code is the policy's own notice: never expired
NOTICE_CID = "E350"

# The payloads of events this process wrote and the broker has not acknowledged yet are kept in
# memory (up to this many), so the outbox publishes them without reading back rows just written.
FRESH_LIMIT = 10_000

# how write_error begins when the disk took a commit but its fsync failed
_FSYNC_FAILED = "fsync failed"


class JournalError(OfficeGuardError):
    """The logbook cannot be used as asked (a newer schema, an unknown channel, unreadable)."""


_NO_SEQ = 2**63 - 1  # above every seq


def _schema_version(db: sqlite3.Connection) -> int:
    """The logbook's schema version; 0 for an empty file. Releases before versioned migrations
    left `user_version` at 0 and said their version in the `meta` table."""
    version = int(db.execute("PRAGMA user_version").fetchone()[0])
    if version == 0 and db.execute(
        "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'events'"
    ).fetchone():
        try:
            row = db.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchone()
        except sqlite3.Error:
            row = None
        version = int(row[0]) if row else 1
    return version


def _check_version(version: int, path: Path) -> None:
    if version > SCHEMA_VERSION:
        raise JournalError(
            f"the logbook {path} has schema version {version}, newer than this release knows"
            f" ({SCHEMA_VERSION}): it was written by a newer OfficeGuard; not opened, so as not"
            " to damage it"
        )


def _migrate(db: sqlite3.Connection, path: Path) -> None:
    """Bring the logbook to SCHEMA_VERSION, one step per transaction: a step that fails (or a
    power cut during it) leaves the logbook at the version before it, as it was."""
    version = _schema_version(db)
    _check_version(version, path)
    for step in range(version, SCHEMA_VERSION):
        if version:  # not for a new logbook
            log.warning("logbook %s: migrating its schema from version %d to %d", path, step, step + 1)
        try:
            db.executescript(
                f"BEGIN IMMEDIATE;\n{MIGRATIONS[step]}\nPRAGMA user_version = {step + 1};\n"
                "INSERT INTO meta(key, value) VALUES('schema_version', '"
                f"{step + 1}') ON CONFLICT(key) DO UPDATE SET value = excluded.value;\nCOMMIT;"
            )
        except BaseException:
            if db.in_transaction:
                db.execute("ROLLBACK")
            raise


@dataclass(slots=True)
class _Unwritten:
    """An event numbered but not written yet (this loop turn's, or kept while the disk
    refuses), with what its channels did with it meanwhile (channel -> DELIVERED/REFUSED)."""

    event: Event
    done: dict[str, int] | None = None

    def is_done(self, channel: str) -> bool:
        return self.done is not None and channel in self.done

    def mark(self, channel: str, state: int) -> None:
        if self.done is None:
            self.done = {}
        self.done.setdefault(channel, state)


@dataclass(slots=True)
class _Channel:
    """Where one report channel stands, as this process keeps it beside the logbook."""

    name: str
    acked: int  # the cursor (channels.acked): every event up to this seq is done here
    pending: int = 0  # undelivered events on disk, as a count so outbox_depth() costs nothing
    # seq -> payload (as pending_payloads() gives it) of undelivered events written by this
    # process: always a subset of the undelivered rows on disk, so when it holds as many as
    # there are, it holds all of them and the outbox is served from it
    fresh: dict[int, str] = field(default_factory=dict)
    loose: int = 0  # the highest seq acknowledged out of order (a DELIVERED row), 0 if none
    expire_from: int = 0  # every expirable event up to this seq is done (expire_oldest's start)


class Journal:
    def __init__(
        self,
        path: str | Path,
        site: str,
        tz: ZoneInfo,
        *,
        synchronous: str = "FULL",
        group_commit: bool = False,
        sync_in_background: bool = False,
    ):
        self.path = Path(path)
        self.site = site
        self.tz = tz
        if synchronous.upper() not in ("OFF", "NORMAL", "FULL", "EXTRA"):
            raise ValueError(f"unknown synchronous mode {synchronous!r}")
        self.synchronous = synchronous.upper()
        # durability by our own fsync of the WAL, off the loop thread (see the module's text)
        self.background_sync = sync_in_background and self.synchronous in ("FULL", "EXTRA")
        self._connection_sync = "NORMAL" if self.background_sync else self.synchronous
        self._commits = 0  # transactions committed by flush()
        self._synced_commits = 0  # of which known to be on disk
        self._sync_running: Future[None] | None = None
        self._sync_again = False
        self._sync_pool: ThreadPoolExecutor | None = None
        self._wal_fd: int | None = None
        self._wal_lock = threading.Lock()
        self._unwritten: list[_Unwritten] = []
        self._unsaved_state: dict[str, Any] = {}
        self.write_error: str | None = None
        # True while the logbook could not be opened for writing (read-only files or disk,
        # wrong owner after a manual run as root): events wait in memory, every flush tries
        # to open it again, and the alarm side never notices
        self.degraded = False
        try:
            self.db = self._open_writable()
        except (sqlite3.Error, OSError) as e:
            log.error("cannot open the logbook %s for writing: %s; events kept in memory", path, e)
            self.write_error = f"cannot open the logbook for writing: {e}"
            self.degraded = True
            self.db = self._open_fallback()
        self.group_commit = group_commit
        self._flush_scheduled = False
        # told after each group-commit write, with True when nothing is left waiting
        self.flush_listeners: list[Callable[[bool], None]] = []
        # asked at each write for state that changed since the last one (the daemon's engine
        # snapshot): with group commit, one snapshot per loop turn instead of one per event
        self.state_provider: Callable[[], dict[str, Any] | None] | None = None
        self._next_seq = self._last_seq() + 1
        # the highest seq known to be on disk: pending() never offers one above it
        self._committed_seq = self._durable_seq = self._next_seq - 1
        # the report channels (docs/storage.md), each with its cursor and its outbox count
        self._channels: dict[str, _Channel] = {}
        self._load_channels()

    # ------------------------------------------------------------------ opening

    def _open_writable(self) -> sqlite3.Connection:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        db = sqlite3.connect(str(self.path), isolation_level=None, check_same_thread=False)
        try:
            db.row_factory = sqlite3.Row
            # 1 KiB pages for a new logbook (an existing one keeps its size): a commit writes
            # about 6 pages (the event, its 3 indexes, the sequence, the saved state), so a
            # quarter of the bytes to fsync and to wear the card with 4 KiB pages
            db.execute("PRAGMA page_size=1024")
            db.execute("PRAGMA journal_mode=WAL")
            db.execute(f"PRAGMA synchronous={self._connection_sync}")
            db.execute("PRAGMA foreign_keys=ON")
            db.execute("PRAGMA busy_timeout=5000")
            _migrate(db, self.path)
            # a write at once: SQLite opens a file it may not write without a word, and only
            # the first write would tell (then the degraded path must be taken, see __init__)
            db.execute(
                "INSERT INTO meta(key, value) VALUES('schema_version', ?)"
                " ON CONFLICT(key) DO UPDATE SET value=excluded.value",
                (str(SCHEMA_VERSION),),
            )
        except BaseException:
            db.close()
            raise
        return db

    def _open_fallback(self) -> sqlite3.Connection:
        """The logbook read-only (so seq goes on from the last one written and the armed state
        is restored), or, if even that fails, an empty one in memory."""
        try:
            db = sqlite3.connect(
                f"file:{self.path}?mode=ro", uri=True, isolation_level=None, check_same_thread=False
            )
            db.row_factory = sqlite3.Row
            version = _schema_version(db)
            _check_version(version, self.path)
            if version < SCHEMA_VERSION:
                # an older logbook cannot be migrated where it lies: read a migrated copy
                log.warning(
                    "the logbook %s has schema version %d and cannot be written: reading a"
                    " copy in memory, migrated to version %d",
                    self.path,
                    version,
                    SCHEMA_VERSION,
                )
                mem = sqlite3.connect(":memory:", isolation_level=None, check_same_thread=False)
                mem.row_factory = sqlite3.Row
                db.backup(mem)
                db.close()
                db = mem
                _migrate(db, self.path)
            db.execute("SELECT COUNT(*) FROM events").fetchone()
            db.execute("SELECT COUNT(*) FROM state").fetchone()
            return db
        except sqlite3.Error as e:
            log.error(
                "cannot read the logbook %s either (%s): starting from an empty one", self.path, e
            )
        db = sqlite3.connect(":memory:", isolation_level=None, check_same_thread=False)
        db.row_factory = sqlite3.Row
        _migrate(db, self.path)
        return db

    def _reopen(self) -> bool:
        """Try the real logbook again; True once it is open for writing. Events numbered in
        memory while its last seq was unknown are renumbered after it, so seq never repeats."""
        try:
            db = self._open_writable()
        except (sqlite3.Error, OSError, JournalError):
            return False
        old, self.db = self.db, db
        old.close()
        self.degraded = False
        last = self._last_seq()
        if self._unwritten and self._unwritten[0].event.seq <= last:
            log.warning(
                "renumbering %d event(s) kept in memory after seq %d", len(self._unwritten), last
            )
            for u in self._unwritten:
                last += 1
                u.event = dataclasses.replace(u.event, seq=last)
        self._next_seq = max(self._next_seq, last + 1)
        self._committed_seq = self._durable_seq = max(self._durable_seq, last)
        self._close_wal_fd()
        self._load_channels()
        return True

    def _load_channels(self) -> None:
        """The report channels and where each stands, read from the logbook (at open, and when
        the real one opens again). A channel registered while it could not be written is
        written now."""
        channels: dict[str, _Channel] = {}
        for name, acked in self.db.execute("SELECT name, acked FROM channels").fetchall():
            channels[str(name)] = _Channel(str(name), int(acked))
        for name, old in self._channels.items():
            if name not in channels:
                with contextlib.suppress(sqlite3.Error):  # tried again at the next open
                    self.db.execute(
                        "INSERT OR IGNORE INTO channels(name, acked) VALUES(?, ?)", (name, old.acked)
                    )
                channels[name] = _Channel(name, old.acked)
        for ch in channels.values():
            ch.pending = int(
                self.db.execute(
                    "SELECT COUNT(*) FROM events AS e WHERE e.seq > ? AND NOT EXISTS"
                    " (SELECT 1 FROM deliveries AS d WHERE d.channel = ? AND d.seq = e.seq)",
                    (ch.acked, ch.name),
                ).fetchone()[0]
            )
            loose = self.db.execute(
                "SELECT MAX(seq) FROM deliveries WHERE channel = ? AND state = ? AND seq > ?",
                (ch.name, DELIVERED, ch.acked),
            ).fetchone()[0]
            ch.loose = int(loose or 0)
        self._channels = channels

    def register_channel(self, name: str) -> None:
        """A report channel beside MQTT (a receiving centre, say): every event journaled from
        now on waits for it too, in its own outbox (the methods' `channel`), and retention
        keeps an event until every registered channel is done with it. Kept in the logbook;
        registering a known channel changes nothing."""
        if name in self._channels:
            return
        if not name:
            raise JournalError("a report channel needs a name")
        ch = _Channel(name, self.last_seq())  # the events before it are the others' business
        self._channels[name] = ch
        try:
            self.db.execute(
                "INSERT OR IGNORE INTO channels(name, acked) VALUES(?, ?)", (name, ch.acked)
            )
        except sqlite3.Error as e:  # written when the logbook opens for writing again
            log.warning("report channel %s not written to the logbook yet: %s", name, e)

    @property
    def channels(self) -> list[str]:
        """The registered report channels."""
        return list(self._channels)

    def _channel(self, name: str) -> _Channel:
        try:
            return self._channels[name]
        except KeyError:
            raise JournalError(
                f"no report channel {name!r} in the logbook (registered: {', '.join(self._channels)})"
            ) from None

    # ------------------------------------------------------------------ writing

    def _last_seq(self) -> int:
        row = self.db.execute("SELECT seq FROM sqlite_sequence WHERE name='events'").fetchone()
        top = self.db.execute("SELECT MAX(seq) FROM events").fetchone()[0] or 0
        return max(int(row[0]) if row else 0, int(top))

    def append(
        self, drafts: Sequence[EventDraft], state: dict[str, Any] | None = None
    ) -> list[Event]:
        """Number the drafts and write them (and the state, if given) in one transaction.
        Returns the events; if the disk refuses the write they are kept in memory meanwhile."""
        events = []
        for d in drafts:
            events.append(Event.from_draft(d, site=self.site, seq=self._next_seq, tz=self.tz))
            self._next_seq += 1
        self._unwritten.extend(_Unwritten(e) for e in events)
        if state is not None:
            self._unsaved_state.update(state)
        if self.group_commit and self._defer_flush():
            return events
        self.flush()
        return events

    def _defer_flush(self) -> bool:
        """Group commit: write at the end of this loop turn. False when no loop is running."""
        if self._flush_scheduled:
            return True
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            return False
        self._flush_scheduled = True
        loop.call_soon(self._deferred_flush)
        return True

    def _deferred_flush(self) -> None:
        self._flush_scheduled = False
        ok = self.flush(sync=not self.background_sync)
        if self._commits > self._synced_commits:
            self._start_sync()  # the listeners are told once it is on disk
            return
        self._tell_listeners(ok)

    def writing(self) -> bool:
        """True while a loop turn's write or its fsync is under way: `flush_listeners` will be
        told when it is done (whether it worked or not)."""
        return self._flush_scheduled or self._sync_running is not None

    def _tell_listeners(self, ok: bool) -> None:
        for cb in list(self.flush_listeners):
            try:
                cb(ok)
            except Exception:
                log.exception("journal flush listener failed")

    def flush(self, sync: bool = True) -> bool:
        """Write whatever waits in memory. True when nothing is left waiting. With background
        sync, `sync=False` leaves the fsync to _start_sync(); otherwise it is done here."""
        if self._unwritten and self.state_provider is not None:
            changed = self.state_provider()
            if changed:
                self._unsaved_state.update(changed)
        if not self._unwritten and not self._unsaved_state:
            if sync and self._commits > self._synced_commits:
                return self._sync_now()
            return True
        now = datetime.now().astimezone().isoformat()
        if self.degraded and not self._reopen():
            return False
        rows = [
            (
                e.seq,
                e.id,
                e.site,
                e.ts,
                e.kind,
                e.zone,
                e.sensor,
                e.user,
                e.cid,
                e.text,
                _dumps(e.detail) if e.detail else "{}",
            )
            for u in self._unwritten
            for e in (u.event,)
        ]
        # what a channel did with an event before it was written (kept while the disk refused)
        marks = [
            (name, u.event.seq, state)
            for u in self._unwritten
            if u.done is not None
            for name, state in u.done.items()
        ]
        try:
            self.db.execute("BEGIN IMMEDIATE")
            try:
                self.db.executemany(
                    "INSERT OR IGNORE INTO events(seq, id, site, ts, kind, zone, sensor, user, cid, text, detail)"
                    " VALUES(?,?,?,?,?,?,?,?,?,?,?)",
                    rows,
                )
                if marks:
                    self.db.executemany(
                        "INSERT OR IGNORE INTO deliveries(channel, seq, state) VALUES(?,?,?)", marks
                    )
                self.db.executemany(
                    "INSERT INTO state(key, value, updated) VALUES(?,?,?)"
                    " ON CONFLICT(key) DO UPDATE SET value=excluded.value, updated=excluded.updated",
                    [(k, _dumps_state(v), now) for k, v in self._unsaved_state.items()],
                )
                self.db.execute("COMMIT")
            except BaseException:
                if self.db.in_transaction:
                    self.db.execute("ROLLBACK")
                raise
        except sqlite3.Error as e:
            if self.write_error is None:
                log.error(
                    "journal write failed, keeping %d event(s) in memory: %s",
                    len(self._unwritten),
                    e,
                )
            self.write_error = str(e)
            return False
        if self.write_error is not None and not self.write_error.startswith(_FSYNC_FAILED):
            # a commit error ends here; an fsync error only with an fsync that works (_durable)
            log.warning(
                "journal writable again; wrote %d event(s) kept in memory", len(self._unwritten)
            )
            self.write_error = None
        self._commits += 1
        if rows:
            self._committed_seq = max(self._committed_seq, rows[-1][0])
        if not self.background_sync:
            self._synced_commits = self._commits
            self._durable_seq = self._committed_seq
        for ch in self._channels.values():
            fresh, name, acked = ch.fresh, ch.name, ch.acked
            for u, row in zip(self._unwritten, rows, strict=True):
                if row[0] > acked and (u.done is None or name not in u.done):
                    # undelivered: the outbox will want it (same JSON as from the row)
                    ch.pending += 1
                    if len(fresh) < FRESH_LIMIT:
                        fresh[row[0]] = _row_payload(row)
        for name, seq, state in marks:
            if state == DELIVERED:
                marked = self._channels.get(name)
                if marked is not None and seq > marked.acked:
                    marked.loose = max(marked.loose, seq)
        self._unwritten.clear()
        self._unsaved_state.clear()
        if sync and self.background_sync:
            return self._sync_now()
        return True

    # ------------------------------------------------------------------ durability

    def _start_sync(self) -> None:
        """fsync the WAL on the worker thread; once more after it if commits came meanwhile."""
        if self._sync_running is not None:
            self._sync_again = True
            return
        loop = asyncio.get_running_loop()
        if self._sync_pool is None:
            self._sync_pool = ThreadPoolExecutor(1, thread_name_prefix="journal-fsync")
        commits, seq = self._commits, self._committed_seq
        fut = self._sync_pool.submit(self._fsync_wal)
        self._sync_running = fut

        def done(f: Future[None]) -> None:
            with contextlib.suppress(RuntimeError):  # the loop closed meanwhile
                loop.call_soon_threadsafe(self._synced, f, commits, seq)

        fut.add_done_callback(done)

    def _synced(self, fut: Future[None], commits: int, seq: int) -> None:
        self._sync_running = None
        exc = fut.exception()
        if exc is not None:
            self._sync_failed(exc)
            self._tell_listeners(False)
            return
        self._durable(commits, seq)
        if self._sync_again:
            self._sync_again = False
            if self._commits > self._synced_commits:
                self._start_sync()
        self._tell_listeners(not self._unwritten)

    def _sync_now(self) -> bool:
        """fsync here and now (outside the loop's hot path: close, save_state, a retry)."""
        commits, seq = self._commits, self._committed_seq
        try:
            self._fsync_wal()
        except OSError as e:
            self._sync_failed(e)
            return False
        self._durable(commits, seq)
        return not self._unwritten

    def _durable(self, commits: int, seq: int) -> None:
        self._synced_commits = max(self._synced_commits, commits)
        self._durable_seq = max(self._durable_seq, seq)
        if self.write_error is not None and self.write_error.startswith(_FSYNC_FAILED):
            log.warning("journal: the disk takes writes again")
            self.write_error = None

    def _sync_failed(self, exc: BaseException) -> None:
        # the commits stay not durable: their events are not published, a trouble is raised
        # (the daemon watches write_error) and the next write or retry fsyncs again
        if self.write_error is None:
            log.error("journal: fsync of the logbook failed: %s", exc)
        self.write_error = f"{_FSYNC_FAILED}: {exc}"

    def _fsync_wal(self) -> None:
        """fsync the WAL file (the commits live there until a checkpoint, which SQLite syncs
        itself); the main file when there is no WAL. Runs on the worker thread or inline."""
        wal = f"{self.path}-wal"
        with self._wal_lock:
            try:
                st = os.stat(wal)
            except FileNotFoundError:
                main = os.open(self.path, os.O_RDONLY | os.O_CLOEXEC)
                try:
                    os.fsync(main)
                finally:
                    os.close(main)
                return
            if self._wal_fd is not None and os.fstat(self._wal_fd).st_ino != st.st_ino:
                os.close(self._wal_fd)  # a new WAL file: not the one this descriptor syncs
                self._wal_fd = None
            if self._wal_fd is None:
                self._wal_fd = os.open(wal, os.O_RDONLY | os.O_CLOEXEC)
            os.fsync(self._wal_fd)

    def _close_wal_fd(self) -> None:
        with self._wal_lock:
            if self._wal_fd is not None:
                os.close(self._wal_fd)
                self._wal_fd = None

    def save_state(self, key: str, value: Any) -> None:
        """Write `value` under `key` now, synced before this returns."""
        self._unsaved_state[key] = value
        self.flush()

    def stage_state(self, key: str, value: Any) -> None:
        """Write `value` under `key` with this loop turn's group commit, never fsyncing on the
        loop thread. The WAL is written in order, so the state is on disk no later than any
        event appended after it, and nothing of those events reaches the office before that.
        Without group commit (no running loop) it is saved at once, as save_state()."""
        self._unsaved_state[key] = value
        if self.group_commit and self._defer_flush():
            return
        self.flush()

    def mark_sent(self, seqs: Sequence[int], channel: str = MQTT) -> None:
        """Record acknowledgements (PUBACKs) on a channel. One transaction for the whole batch,
        committed without its own fsync (synchronous=NORMAL for this commit): a mark lost to a
        power cut only means the event is sent again, with the same id, and the next event's
        commit makes it durable anyway (the WAL is written in order). So acknowledgements never
        hold the loop up for a disk flush, which an alarm arriving meanwhile would wait for.

        The usual batch, acknowledgements in a row right after the channel's cursor, moves the
        cursor with one UPDATE whatever its size; others are kept as rows in `deliveries`
        until the cursor passes them."""
        if not seqs:
            return
        ch = self._channel(channel)
        wanted = sorted(set(seqs))
        if self._unwritten:
            marked = set(wanted)
            for u in self._unwritten:
                if u.event.seq in marked:
                    u.mark(channel, DELIVERED)
        fresh = ch.fresh
        for s in wanted:
            fresh.pop(s, None)
        # on disk and not done yet (the ones still in memory are marked above)
        acked = [s for s in wanted if ch.acked < s <= self._committed_seq]
        if not acked:
            return
        toggle = self._connection_sync != "NORMAL"  # with background sync it is NORMAL already
        try:
            if toggle:
                self.db.execute("PRAGMA synchronous=NORMAL")
            try:
                self.db.execute("BEGIN IMMEDIATE")
                try:
                    done, cursor, loose = self._record_acks(ch, acked)
                    self.db.execute("COMMIT")
                except BaseException:
                    if self.db.in_transaction:
                        self.db.execute("ROLLBACK")
                    raise
            finally:
                if toggle:
                    self.db.execute(f"PRAGMA synchronous={self._connection_sync}")
        except sqlite3.Error as e:
            # the events will be re-sent after a restart with the same id: harmless duplicates
            log.warning("could not mark %d event(s) delivered: %s", len(wanted), e)
            return
        ch.pending = max(0, ch.pending - done)
        ch.acked, ch.loose = cursor, loose

    def _record_acks(self, ch: _Channel, acked: list[int]) -> tuple[int, int, int]:
        """Inside mark_sent's transaction: how many of `acked` (sorted, above the cursor, on
        disk) were waiting, and the channel's new cursor and `loose`."""
        lo, hi = acked[0], acked[-1]
        in_a_row = hi - lo + 1 == len(acked)
        if in_a_row and (lo == ch.acked + 1 or self._first_undone(ch, ch.acked, below=lo) is None):
            # the usual case: nothing waits between the cursor and these; an event among them
            # already done (refused, given up) is rare but must not be counted twice
            done = len(acked) - int(
                self.db.execute(
                    "SELECT COUNT(*) FROM deliveries WHERE channel = ? AND seq BETWEEN ? AND ?",
                    (ch.name, lo, hi),
                ).fetchone()[0]
            )
            top = hi
            loose = ch.loose
        else:  # out of order: kept as rows until the cursor gets there
            done = self.db.executemany(
                "INSERT OR IGNORE INTO deliveries(channel, seq, state) VALUES(?, ?, ?)",
                [(ch.name, s, DELIVERED) for s in acked],
            ).rowcount
            top = ch.acked
            loose = max(ch.loose, hi)
        # on past what is done already (refused, given up, acknowledged out of order) and gaps
        nxt = self._first_undone(ch, top)
        cursor = max(top, (nxt - 1) if nxt is not None else self._committed_seq)
        if cursor > ch.acked:
            self.db.execute("UPDATE channels SET acked = ? WHERE name = ?", (cursor, ch.name))
            if loose:
                self.db.execute(
                    "DELETE FROM deliveries WHERE channel = ? AND state = ? AND seq <= ?",
                    (ch.name, DELIVERED, cursor),
                )
                if loose <= cursor:
                    loose = 0
        return max(0, done), cursor, loose

    def _first_undone(self, ch: _Channel, after: int, below: int | None = None) -> int | None:
        """The lowest seq above `after` (and below `below`) of an event on disk that the channel
        has not done yet; None if there is none."""
        row = self.db.execute(
            "SELECT seq FROM events AS e WHERE e.seq > ? AND e.seq < ? AND NOT EXISTS"
            " (SELECT 1 FROM deliveries AS d WHERE d.channel = ? AND d.seq = e.seq)"
            " ORDER BY e.seq LIMIT 1",
            (after, below if below is not None else _NO_SEQ, ch.name),
        ).fetchone()
        return int(row[0]) if row else None

    def expire_oldest(
        self, count: int, after_seq: int = 0, channel: str = MQTT
    ) -> tuple[int, int | None, int | None, dict[str, int]]:
        """The long-outage policy: give up on the `count` oldest undelivered low-priority events
        (LOW_PRIORITY_KINDS, not the policy's own notices) with a seq above `after_seq` (the
        outbox passes what it has in flight, which may still be acknowledged). They stay in
        the logbook, marked EXPIRED on this channel, and are never published on it. Alarms,
        tampers, troubles, duress... are never chosen. Returns (how many, lowest seq, highest
        seq, per kind)."""
        if count <= 0:
            return 0, None, None, {}
        ch = self._channel(channel)
        # every expirable event up to ch.expire_from is done already: a long outage gives up
        # 1 % of the limit at a time, and each pass starts where the last one stopped
        start = max(after_seq, ch.acked, ch.expire_from)
        whole = after_seq <= max(ch.acked, ch.expire_from)  # nothing skipped below `start`
        try:
            self.db.execute("BEGIN IMMEDIATE")
            try:
                rows = self.db.execute(
                    "SELECT seq, kind FROM events AS e WHERE e.seq > ?"
                    " AND e.kind IN (SELECT value FROM json_each(?)) AND COALESCE(e.cid, '') != ?"
                    " AND NOT EXISTS"
                    "  (SELECT 1 FROM deliveries AS d WHERE d.channel = ? AND d.seq = e.seq)"
                    " ORDER BY e.seq LIMIT ?",
                    (start, json.dumps(LOW_PRIORITY_KINDS), NOTICE_CID, channel, count),
                ).fetchall()
                self.db.executemany(
                    "INSERT INTO deliveries(channel, seq, state) VALUES(?, ?, ?)",
                    [(channel, int(r[0]), EXPIRED) for r in rows],
                )
                self.db.execute("COMMIT")
            except BaseException:
                if self.db.in_transaction:
                    self.db.execute("ROLLBACK")
                raise
        except sqlite3.Error as e:
            log.warning("could not expire undelivered events: %s", e)
            return 0, None, None, {}
        if whole:
            ch.expire_from = int(rows[-1][0]) if len(rows) == count else self._committed_seq
        if not rows:
            return 0, None, None, {}
        ch.pending = max(0, ch.pending - len(rows))
        kinds: dict[str, int] = {}
        for r in rows:
            kinds[r[1]] = kinds.get(r[1], 0) + 1
            ch.fresh.pop(int(r[0]), None)
        seqs = [int(r[0]) for r in rows]
        return len(rows), min(seqs), max(seqs), kinds

    def refuse(self, seq: int, channel: str = MQTT) -> str | None:
        """The receiver refused this event (a PUBACK failure code, or too large for the broker):
        it stays in the logbook, marked REFUSED on this channel, and is never published on it
        again, so the events behind it go on. Rare, so plain statements (autocommit). Returns
        its kind (None if it was not waiting any more)."""
        ch = self._channel(channel)
        kind: str | None = None
        for u in self._unwritten:
            if u.event.seq == seq and seq > ch.acked and not u.is_done(channel):
                u.mark(channel, REFUSED)
                kind = u.event.kind
        ch.fresh.pop(seq, None)
        if not ch.acked < seq <= self._committed_seq:
            return kind
        try:
            row = self.db.execute("SELECT kind FROM events WHERE seq = ?", (seq,)).fetchone()
            if row is None:
                return kind
            cur = self.db.execute(
                "INSERT OR IGNORE INTO deliveries(channel, seq, state) VALUES(?, ?, ?)",
                (channel, seq, REFUSED),
            )
        except sqlite3.Error as e:
            # it will be offered again after a restart, and refused again
            log.warning("could not mark event %d refused: %s", seq, e)
            return kind
        if cur.rowcount > 0:
            ch.pending = max(0, ch.pending - 1)
            kind = str(row[0])
        return kind

    def expired_count(self, channel: str = MQTT) -> int:
        """Events the long-outage policy gave up on (kept in the logbook, never delivered)."""
        return int(
            self.db.execute(
                "SELECT COUNT(*) FROM deliveries WHERE channel = ? AND state = ?",
                (channel, EXPIRED),
            ).fetchone()[0]
        )

    # ------------------------------------------------------------------ reading

    def load_state(self, key: str) -> Any:
        if key in self._unsaved_state:
            return self._unsaved_state[key]
        row = self.db.execute("SELECT value FROM state WHERE key=?", (key,)).fetchone()
        return json.loads(row[0]) if row else None

    def pending(self, limit: int = 100, after_seq: int = 0, channel: str = MQTT) -> list[Event]:
        """Events not yet acknowledged on the channel, oldest first."""
        ch = self._channel(channel)
        rows = self.db.execute(
            "SELECT * FROM events AS e WHERE e.seq > ? AND e.seq <= ? AND NOT EXISTS"
            " (SELECT 1 FROM deliveries AS d WHERE d.channel = ? AND d.seq = e.seq)"
            " ORDER BY e.seq LIMIT ?",
            (max(after_seq, ch.acked), self._durable_seq, channel, limit),
        ).fetchall()
        out = [_row_event(r) for r in rows]
        # events kept in memory are published only while the disk refuses them; otherwise they
        # are waiting for this loop turn's commit (group commit) and go out once written
        if self._unwritten and self.write_error is not None:
            mem = list(self._waiting_in_memory(ch, after_seq))
            out = sorted({e.seq: e for e in out + mem}.values(), key=lambda e: e.seq)[:limit]
        return out

    def _waiting_in_memory(self, ch: _Channel, after_seq: int) -> Iterator[Event]:
        floor = max(after_seq, ch.acked)
        for u in self._unwritten:
            if u.event.seq > floor and not u.is_done(ch.name):
                yield u.event

    def pending_payloads(
        self, limit: int = 100, after_seq: int = 0, channel: str = MQTT
    ) -> list[tuple[int, str]]:
        """Like pending(), as (seq, the event's JSON exactly as Event.to_json() gives it), made
        straight from the row: the stored `detail` text is spliced in, not parsed and dumped
        again. The outbox's drain after an outage spends its time here. Events this process
        wrote come from memory when every undelivered one on disk is among them (the usual
        case: nothing read back that was just written)."""
        ch = self._channel(channel)
        fresh = ch.fresh
        if self.write_error is None and len(fresh) == ch.pending:
            if not fresh:
                return []
            seq = max(after_seq + 1, next(iter(fresh)))  # the lowest: written in seq order
            top = self._durable_seq + 1  # nothing the disk might still lose
            if top - seq > 2 * (len(fresh) + limit):  # sparse (acks out of order): sort them
                durable = self._durable_seq
                return sorted((s, p) for s, p in fresh.items() if after_seq < s <= durable)[:limit]
            out: list[tuple[int, str]] = []
            while seq < top and len(out) < limit:  # seqs are (nearly) contiguous: walk them
                payload = fresh.get(seq)
                if payload is not None:
                    out.append((seq, payload))
                seq += 1
            return out
        cur = self.db.execute(
            "SELECT seq, id, site, ts, kind, zone, sensor, user, cid, text, detail"
            " FROM events AS e WHERE e.seq > ? AND e.seq <= ? AND NOT EXISTS"
            " (SELECT 1 FROM deliveries AS d WHERE d.channel = ? AND d.seq = e.seq)"
            " ORDER BY e.seq LIMIT ?",
            (max(after_seq, ch.acked), self._durable_seq, channel, limit),
        )
        cur.row_factory = None  # plain tuples: faster than sqlite3.Row by name
        out = [(int(r[0]), _row_payload(r)) for r in cur.fetchall()]
        if self._unwritten and self.write_error is not None:
            mem = [(e.seq, e.to_json()) for e in self._waiting_in_memory(ch, after_seq)]
            out = sorted(dict(out + mem).items())[:limit]
        return out

    def outbox_depth(self, channel: str = MQTT) -> int:
        """Events not yet acknowledged on the channel (and not expired or refused), on disk and
        in memory. Kept as a running count: cheap enough to ask after every event."""
        ch = self._channel(channel)
        floor = ch.acked
        return ch.pending + sum(
            1 for u in self._unwritten if u.event.seq > floor and not u.is_done(channel)
        )

    @property
    def unwritten(self) -> int:
        return len(self._unwritten)

    def events(
        self, since: str | None = None, kind: str | None = None, limit: int | None = None
    ) -> Iterator[Event]:
        return _select(self.db, since, kind, limit)

    def last_seq(self) -> int:
        return self._next_seq - 1

    def integrity_ok(self) -> bool:
        return bool(self.db.execute("PRAGMA integrity_check").fetchone()[0] == "ok")

    # ------------------------------------------------------------------ upkeep

    def prune(self, now: datetime) -> int:
        """Drop events every registered channel is done with (delivered, expired or refused)
        that are older than the retention and beyond the newest RETENTION_MIN_EVENTS, with
        their delivery rows. An event still waiting on any channel is never dropped. Returns
        how many were removed."""
        cutoff = (now - RETENTION_MIN_AGE).astimezone(self.tz).isoformat()
        keep_from = self.db.execute(
            "SELECT seq FROM events ORDER BY seq DESC LIMIT 1 OFFSET ?", (RETENTION_MIN_EVENTS,)
        ).fetchone()
        if keep_from is None:
            return 0
        try:
            self.db.execute("BEGIN IMMEDIATE")
            try:
                # done on a channel: up to its cursor, or with a row of its own in deliveries
                cur = self.db.execute(
                    "DELETE FROM events WHERE seq <= ? AND ts < ? AND NOT EXISTS"
                    " (SELECT 1 FROM channels AS c WHERE events.seq > c.acked AND NOT EXISTS"
                    "  (SELECT 1 FROM deliveries AS d"
                    "   WHERE d.channel = c.name AND d.seq = events.seq))",
                    (int(keep_from[0]), cutoff),
                )
                removed = int(cur.rowcount)
                if removed:
                    self.db.execute(
                        "DELETE FROM deliveries WHERE seq <= ? AND NOT EXISTS"
                        " (SELECT 1 FROM events AS e WHERE e.seq = deliveries.seq)",
                        (int(keep_from[0]),),
                    )
                self.db.execute("COMMIT")
            except BaseException:
                if self.db.in_transaction:
                    self.db.execute("ROLLBACK")
                raise
        except sqlite3.Error as e:
            log.warning("journal prune failed: %s", e)
            return 0
        return removed

    def close(self) -> None:
        self.flush()
        if self._sync_pool is not None:
            self._sync_pool.shutdown(wait=True)
            self._sync_pool = None
        with contextlib.suppress(sqlite3.Error):
            self.db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        self.db.close()
        self._close_wal_fd()


_dumps = json.JSONEncoder(ensure_ascii=False, separators=(",", ":")).encode  # events
_dumps_state = json.JSONEncoder(ensure_ascii=False).encode  # the state table
_q = json.encoder.encode_basestring  # one JSON string, as _dumps writes it


def _row_payload(r: tuple[Any, ...]) -> str:
    """The JSON of Event.to_dict() for a row (seq, id, site, ts, kind, zone, sensor, user, cid,
    text, detail, ...): same keys, same order, same separators, the strings escaped by json's
    own encoder (ensure_ascii=False); `detail` is stored in that form and spliced in."""
    out = f'{{"id":{_q(r[1])},"seq":{int(r[0])},"site":{_q(r[2])},"ts":{_q(r[3])},"kind":{_q(r[4])}'
    if r[5] is not None:
        out += f',"zone":{_q(r[5])}'
    if r[6] is not None:
        out += f',"sensor":{_q(r[6])}'
    if r[7] is not None:
        out += f',"user":{_q(r[7])}'
    if r[8] is not None:
        out += f',"cid":{_q(r[8])}'
    return f'{out},"text":{_q(r[9])},"detail":{r[10]}}}'


def _row_event(r: sqlite3.Row) -> Event:
    return Event(
        id=r["id"],
        seq=r["seq"],
        site=r["site"],
        ts=r["ts"],
        kind=r["kind"],
        text=r["text"],
        cid=r["cid"],
        zone=r["zone"],
        sensor=r["sensor"],
        user=r["user"],
        detail=json.loads(r["detail"]),
    )


def open_readonly(path: str | Path) -> sqlite3.Connection:
    """For `officeguard log`: read the logbook without taking part in writing it."""
    p = Path(path)
    if not p.exists():
        raise JournalError(f"no logbook at {p}")
    uri = f"file:{p}?mode=ro"
    for attempt in range(3):
        try:
            db = sqlite3.connect(uri, uri=True)
            db.row_factory = sqlite3.Row
            db.execute("SELECT 1 FROM events LIMIT 1")
            return db
        except sqlite3.OperationalError as e:
            if attempt == 2:
                raise JournalError(f"cannot read the logbook {p}: {e}") from None
            time.sleep(0.05)
    raise JournalError(f"cannot read the logbook {p}")


def _select(
    db: sqlite3.Connection, since: str | None, kind: str | None, limit: int | None
) -> Iterator[Event]:
    sql = "SELECT * FROM events WHERE 1=1"
    args: list[Any] = []
    if since:
        sql += " AND ts >= ?"
        args.append(since)
    if kind:
        sql += " AND kind = ?"
        args.append(kind)
    sql += " ORDER BY seq"
    if limit:
        sql += " LIMIT ?"
        args.append(limit)
    for r in db.execute(sql, args):
        yield _row_event(r)


def read_events(
    path: str | Path, since: str | None = None, kind: str | None = None
) -> Iterator[Event]:
    db = open_readonly(path)
    try:
        yield from _select(db, since, kind, None)
    finally:
        db.close()
