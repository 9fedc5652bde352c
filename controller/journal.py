"""The logbook: every event in a SQLite file, the outbox of events not yet acknowledged by the
broker, and the state that must survive a restart (armed zones, bypasses, delays in progress).

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
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from controller.errors import OfficeGuardError
from controller.event_kinds import EVENT_KINDS
from controller.events import Event, EventDraft

log = logging.getLogger(__name__)

SCHEMA_VERSION = 1

_SCHEMA = """
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

# Retention: keep at least a year of events and at least this many, whichever is more;
# undelivered events are never pruned.
RETENTION_MIN_EVENTS = 100_000
RETENTION_MIN_AGE = timedelta(days=366)

# The `sent` column: where an event stands with the broker.
PENDING = 0  # not yet acknowledged: in the outbox
DELIVERED = 1  # acknowledged by the broker (PUBACK)
EXPIRED = 2  # never delivered: given up by the outbox's long-outage policy; kept in the logbook
REFUSED = 3  # never delivered: the broker refused it (or it is over the broker's size limit)

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
    pass


@dataclass
class _Unwritten:
    event: Event
    sent: bool = False


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
        # undelivered events on disk, kept as a count so outbox_depth() costs nothing
        self._pending_on_disk = int(
            self.db.execute("SELECT COUNT(*) FROM events WHERE sent=0").fetchone()[0]
        )
        # seq -> payload (as pending_payloads() gives it) of undelivered events written by this
        # process: always a subset of the undelivered rows on disk, so when it holds as many as
        # there are, it holds all of them and the outbox is served from it
        self._fresh: dict[int, str] = {}

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
            db.executescript(_SCHEMA)
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
            db.execute("SELECT COUNT(*) FROM events").fetchone()
            db.execute("SELECT COUNT(*) FROM state").fetchone()
            return db
        except sqlite3.Error as e:
            log.error(
                "cannot read the logbook %s either (%s): starting from an empty one", self.path, e
            )
        db = sqlite3.connect(":memory:", isolation_level=None, check_same_thread=False)
        db.row_factory = sqlite3.Row
        db.executescript(_SCHEMA)
        return db

    def _reopen(self) -> bool:
        """Try the real logbook again; True once it is open for writing. Events numbered in
        memory while its last seq was unknown are renumbered after it, so seq never repeats."""
        try:
            db = self._open_writable()
        except (sqlite3.Error, OSError):
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
        self._fresh.clear()
        self._pending_on_disk = int(
            self.db.execute("SELECT COUNT(*) FROM events WHERE sent=0").fetchone()[0]
        )
        return True

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
                int(u.sent),
            )
            for u in self._unwritten
            for e in (u.event,)
        ]
        try:
            self.db.execute("BEGIN IMMEDIATE")
            try:
                self.db.executemany(
                    "INSERT OR IGNORE INTO events(seq, id, site, ts, kind, zone, sensor, user, cid, text, detail, sent)"
                    " VALUES(?,?,?,?,?,?,?,?,?,?,?,?)",
                    rows,
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
        fresh = self._fresh
        for row in rows:
            if not row[11]:  # undelivered: the outbox will want it (same JSON as from the row)
                self._pending_on_disk += 1
                if len(fresh) < FRESH_LIMIT:
                    fresh[row[0]] = _row_payload(row)
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
        self._unsaved_state[key] = value
        self.flush()

    def mark_sent(self, seqs: Sequence[int]) -> None:
        """Record PUBACKs. One transaction for the whole batch, committed without its own
        fsync (synchronous=NORMAL for this commit): a mark lost to a power cut only means the
        event is sent again, with the same id, and the next event's commit makes it durable
        anyway (the WAL is written in order). So acknowledgements never hold the loop up for
        a disk flush, which an alarm arriving meanwhile would wait for."""
        if not seqs:
            return
        wanted = set(seqs)
        for u in self._unwritten:
            if u.event.seq in wanted:
                u.sent = True
        lo, hi = min(wanted), max(wanted)
        toggle = self._connection_sync != "NORMAL"  # with background sync it is NORMAL already
        try:
            if toggle:
                self.db.execute("PRAGMA synchronous=NORMAL")
            try:
                self.db.execute("BEGIN IMMEDIATE")
                try:
                    if hi - lo + 1 == len(wanted):  # the usual case, acks in a row: one statement
                        cur = self.db.execute(
                            "UPDATE events SET sent=1 WHERE seq BETWEEN ? AND ? AND sent=0",
                            (lo, hi),
                        )
                    else:
                        cur = self.db.executemany(
                            "UPDATE events SET sent=1 WHERE seq=? AND sent=0",
                            [(s,) for s in wanted],
                        )
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
        self._pending_on_disk = max(0, self._pending_on_disk - max(0, cur.rowcount))
        for s in wanted:
            self._fresh.pop(s, None)

    def expire_oldest(
        self, count: int, after_seq: int = 0
    ) -> tuple[int, int | None, int | None, dict[str, int]]:
        """The long-outage policy: give up on the `count` oldest undelivered low-priority events
        (LOW_PRIORITY_KINDS, not the policy's own notices) with a seq above `after_seq` (the
        outbox passes what it has in flight, which may still be acknowledged). They stay in
        the logbook, marked EXPIRED, and are never published. Alarms, tampers, troubles,
        duress... are never chosen. Returns (how many, lowest seq, highest seq, per kind)."""
        if count <= 0:
            return 0, None, None, {}
        try:
            self.db.execute("BEGIN IMMEDIATE")
            try:
                # `sent=0` written out so that the partial index events_outbox serves the scan
                rows = self.db.execute(
                    "UPDATE events SET sent=? WHERE seq IN ("
                    "  SELECT seq FROM events WHERE sent=0 AND seq>?"
                    "   AND kind IN (SELECT value FROM json_each(?))"
                    "   AND COALESCE(cid, '') != ? ORDER BY seq LIMIT ?"
                    ") RETURNING seq, kind",
                    (EXPIRED, after_seq, json.dumps(LOW_PRIORITY_KINDS), NOTICE_CID, count),
                ).fetchall()
                self.db.execute("COMMIT")
            except BaseException:
                if self.db.in_transaction:
                    self.db.execute("ROLLBACK")
                raise
        except sqlite3.Error as e:
            log.warning("could not expire undelivered events: %s", e)
            return 0, None, None, {}
        if not rows:
            return 0, None, None, {}
        self._pending_on_disk = max(0, self._pending_on_disk - len(rows))
        kinds: dict[str, int] = {}
        for r in rows:
            kinds[r[1]] = kinds.get(r[1], 0) + 1
            self._fresh.pop(int(r[0]), None)
        seqs = [int(r[0]) for r in rows]
        return len(rows), min(seqs), max(seqs), kinds

    def refuse(self, seq: int) -> str | None:
        """The broker refused this event (a PUBACK failure code, or too large for it): it stays
        in the logbook, marked REFUSED, and is never published again, so the events behind it
        go on. Rare, so one plain statement (autocommit). Returns its kind (None if it was not
        waiting any more)."""
        kind: str | None = None
        for u in self._unwritten:
            if u.event.seq == seq and not u.sent:
                u.sent = True
                kind = u.event.kind
        try:
            # fetchall: a RETURNING statement ends (and commits) only once its rows are read
            rows = self.db.execute(
                "UPDATE events SET sent=? WHERE seq=? AND sent=0 RETURNING kind", (REFUSED, seq)
            ).fetchall()
        except sqlite3.Error as e:
            # it will be offered again after a restart, and refused again
            log.warning("could not mark event %d refused: %s", seq, e)
            return kind
        if rows:
            self._pending_on_disk = max(0, self._pending_on_disk - 1)
            kind = str(rows[0][0])
        self._fresh.pop(seq, None)
        return kind

    def expired_count(self) -> int:
        """Events the long-outage policy gave up on (kept in the logbook, never delivered)."""
        return int(
            self.db.execute("SELECT COUNT(*) FROM events WHERE sent=?", (EXPIRED,)).fetchone()[0]
        )

    # ------------------------------------------------------------------ reading

    def load_state(self, key: str) -> Any:
        if key in self._unsaved_state:
            return self._unsaved_state[key]
        row = self.db.execute("SELECT value FROM state WHERE key=?", (key,)).fetchone()
        return json.loads(row[0]) if row else None

    def pending(self, limit: int = 100, after_seq: int = 0) -> list[Event]:
        """Events not yet acknowledged by the broker, oldest first."""
        rows = self.db.execute(
            "SELECT * FROM events WHERE sent=0 AND seq>? AND seq<=? ORDER BY seq LIMIT ?",
            (after_seq, self._durable_seq, limit),
        ).fetchall()
        out = [_row_event(r) for r in rows]
        # events kept in memory are published only while the disk refuses them; otherwise they
        # are waiting for this loop turn's commit (group commit) and go out once written
        if self._unwritten and self.write_error is not None:
            mem = [u.event for u in self._unwritten if not u.sent and u.event.seq > after_seq]
            out = sorted({e.seq: e for e in out + mem}.values(), key=lambda e: e.seq)[:limit]
        return out

    def pending_payloads(self, limit: int = 100, after_seq: int = 0) -> list[tuple[int, str]]:
        """Like pending(), as (seq, the event's JSON exactly as Event.to_json() gives it), made
        straight from the row: the stored `detail` text is spliced in, not parsed and dumped
        again. The outbox's drain after an outage spends its time here. Events this process
        wrote come from memory when every undelivered one on disk is among them (the usual
        case: nothing read back that was just written)."""
        fresh = self._fresh
        if self.write_error is None and len(fresh) == self._pending_on_disk:
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
            " FROM events WHERE sent=0 AND seq>? AND seq<=? ORDER BY seq LIMIT ?",
            (after_seq, self._durable_seq, limit),
        )
        cur.row_factory = None  # plain tuples: faster than sqlite3.Row by name
        out = [(int(r[0]), _row_payload(r)) for r in cur.fetchall()]
        if self._unwritten and self.write_error is not None:
            mem = [
                (u.event.seq, u.event.to_json())
                for u in self._unwritten
                if not u.sent and u.event.seq > after_seq
            ]
            out = sorted(dict(out + mem).items())[:limit]
        return out

    def outbox_depth(self) -> int:
        """Events not yet acknowledged by the broker (and not expired), on disk and in memory.
        Kept as a running count: cheap enough to ask after every event."""
        return self._pending_on_disk + sum(1 for u in self._unwritten if not u.sent)

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
        """Drop delivered (or expired, or refused) events older than the retention that are beyond the
        newest RETENTION_MIN_EVENTS. An event still waiting for the broker is never dropped.
        Returns how many were removed."""
        cutoff = (now - RETENTION_MIN_AGE).astimezone(self.tz).isoformat()
        keep_from = self.db.execute(
            "SELECT seq FROM events ORDER BY seq DESC LIMIT 1 OFFSET ?", (RETENTION_MIN_EVENTS,)
        ).fetchone()
        if keep_from is None:
            return 0
        try:
            cur = self.db.execute(
                "DELETE FROM events WHERE sent IN (?, ?, ?) AND seq<=? AND ts<?",
                (DELIVERED, EXPIRED, REFUSED, int(keep_from[0]), cutoff),
            )
        except sqlite3.Error as e:
            log.warning("journal prune failed: %s", e)
            return 0
        return int(cur.rowcount)

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
