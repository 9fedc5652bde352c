"""Delivery per report channel in the logbook (docs/storage.md): a cursor per channel plus the
exceptions, a versioned migration from the single `sent` column of the releases before, and
retention that waits for every registered channel.

`tests/data/journal-v1.db` was written by the release before this change (controller/journal.py
at commit 321c8c3, through its own API): events 1-4 and 6 delivered, 5 refused, 8 and 9 expired by
the long-outage policy, 10 delivered while the older alarm 7 still waited, 11 and 13 waiting,
12 delivered and then deleted by hand (a gap), and the armed state. The tests below also build
such logbooks from a copy of that release's schema."""

from __future__ import annotations

import contextlib
import shutil
import sqlite3
import tempfile
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import controller.journal as journal_module
from controller.events import EventDraft
from controller.journal import (
    DELIVERED,
    EXPIRED,
    MQTT,
    PENDING,
    REFUSED,
    SCHEMA_VERSION,
    Journal,
    JournalError,
)

TZ = ZoneInfo("Asia/Ho_Chi_Minh")
T0 = datetime(2026, 11, 23, 2, 0, tzinfo=UTC)
FIXTURE = Path(__file__).parents[1] / "data" / "journal-v1.db"

# the schema of the release before (version 1), as it created every logbook: a copy on purpose
# (controller/journal.py has it as its first step), so the test does not trust the code it tests
V1_SCHEMA = """
CREATE TABLE events (
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
CREATE INDEX events_outbox ON events(seq) WHERE sent = 0;
CREATE INDEX events_ts ON events(ts);
CREATE TABLE state (key TEXT PRIMARY KEY, value TEXT NOT NULL, updated TEXT NOT NULL);
CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
INSERT INTO meta(key, value) VALUES('schema_version', '1');
"""


def draft(n: int, kind: str = "system") -> EventDraft:
    return EventDraft(kind=kind, ts=T0 + timedelta(seconds=n), text=f"{kind} {n}")


def delivery(j: Journal, channel: str = MQTT) -> dict[int, int]:
    """seq -> state on the channel, as the event_delivery view shows it."""
    rows = j.db.execute("SELECT seq, state FROM event_delivery WHERE channel=?", (channel,))
    return {int(s): int(v) for s, v in rows}


def columns(db: sqlite3.Connection, table: str) -> list[str]:
    return [r[1] for r in db.execute(f"PRAGMA table_info({table})")]


def v1_logbook(path: Path, sent: list[int], deleted: set[int] = frozenset()) -> None:  # type: ignore[assignment]
    """A logbook as the release before wrote it: one event per entry of `sent` (its column's
    value), the `deleted` seqs then removed, and an armed zone in the state table."""
    db = sqlite3.connect(path)
    db.executescript(V1_SCHEMA)
    kinds = ["system", "alarm", "arm", "trouble"]
    for i, value in enumerate(sent, start=1):
        db.execute(
            "INSERT INTO events(seq, id, site, ts, kind, text, detail, sent)"
            " VALUES(?, ?, 'office-a', ?, ?, ?, '{}', ?)",
            (i, f"{i:032x}", (T0 + timedelta(seconds=i)).isoformat(), kinds[i % 4], f"e{i}", value),
        )
    db.executemany("DELETE FROM events WHERE seq=?", [(s,) for s in deleted])
    db.execute(
        "INSERT INTO state(key, value, updated) VALUES('engine', ?, ?)",
        ('{"zones": {"finance": {"state": "armed_away"}}}', T0.isoformat()),
    )
    db.commit()
    db.close()


@contextlib.contextmanager
def scratch() -> Iterator[Path]:
    """A directory of its own for each hypothesis example (real files, removed after)."""
    d = tempfile.mkdtemp(prefix="og-journal-")
    try:
        yield Path(d)
    finally:
        shutil.rmtree(d, ignore_errors=True)


# ----------------------------------------------------------------------------- migration


def test_the_current_releases_logbook_is_migrated_with_nothing_lost_or_sent_again(
    tmp_path: Path,
) -> None:
    path = tmp_path / "journal.db"
    shutil.copy(FIXTURE, path)
    j = Journal(path, "office-a", TZ)
    assert j.db.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION == 2
    assert "sent" not in columns(j.db, "events") and j.integrity_ok()
    assert delivery(j) == {
        1: DELIVERED, 2: DELIVERED, 3: DELIVERED, 4: DELIVERED, 5: REFUSED, 6: DELIVERED,
        7: PENDING, 8: EXPIRED, 9: EXPIRED, 10: DELIVERED, 11: PENDING, 13: PENDING,
    }  # fmt: skip
    waiting = j.pending()
    assert [e.seq for e in waiting] == [7, 11, 13] and j.outbox_depth() == 3
    assert waiting[0].kind == "alarm" and waiting[2].detail == {"note": "ngày Tết"}
    assert [s for s, _ in j.pending_payloads()] == [7, 11, 13]
    assert j.expired_count() == 2
    assert j.load_state("engine") == {"zones": {"leadership": {"state": "armed_night"}}}
    assert j.append([draft(14)])[0].seq == 14  # seq goes on after the last one ever given
    j.mark_sent([7, 11, 13, 14])
    assert j.pending() == [] and j.outbox_depth() == 0
    j.close()
    j = Journal(path, "office-a", TZ)  # and stays so
    assert j.pending() == [] and j.outbox_depth() == 0 and j.expired_count() == 2
    assert delivery(j)[5] == REFUSED and delivery(j)[14] == DELIVERED
    j.close()


@settings(max_examples=60, deadline=None)
@given(
    sent=st.lists(st.sampled_from([0, 1, 1, 1, 2, 3]), max_size=40),
    deleted=st.sets(st.integers(1, 40), max_size=6),
)
def test_any_mix_of_sent_values_becomes_the_same_delivery_on_the_mqtt_channel(
    sent: list[int], deleted: set[int]
) -> None:
    with scratch() as d:
        path = d / "journal.db"
        v1_logbook(path, sent, deleted)
        kept = {i: v for i, v in enumerate(sent, start=1) if i not in deleted}
        j = Journal(path, "office-a", TZ)
        assert delivery(j) == kept
        assert [e.seq for e in j.pending(limit=100)] == [s for s, v in kept.items() if v == 0]
        assert j.outbox_depth() == sum(1 for v in kept.values() if v == 0)
        assert j.expired_count() == sum(1 for v in kept.values() if v == EXPIRED)
        assert j.load_state("engine") == {"zones": {"finance": {"state": "armed_away"}}}
        assert j.append([draft(99)])[0].seq == len(sent) + 1
        j.close()


def test_a_logbook_newer_than_this_release_is_refused_naming_its_version(tmp_path: Path) -> None:
    path = tmp_path / "journal.db"
    Journal(path, "office-a", TZ).close()
    db = sqlite3.connect(path)
    db.execute(f"PRAGMA user_version = {SCHEMA_VERSION + 1}")
    db.close()
    before = path.read_bytes()
    with pytest.raises(JournalError, match=f"schema version {SCHEMA_VERSION + 1}, newer") as e:
        Journal(path, "office-a", TZ)
    assert "\n" not in str(e.value)
    assert path.read_bytes() == before  # not a byte written


def test_a_migration_step_that_fails_leaves_the_logbook_as_it_was(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "journal.db"
    v1_logbook(path, [1, 0, 3])
    # fails at its very end, and only on a logbook with events in it (not on an empty one)
    broken = journal_module.MIGRATIONS[1] + "\nSELECT json('broken') FROM events LIMIT 1;"
    monkeypatch.setattr(journal_module, "MIGRATIONS", (journal_module.MIGRATIONS[0], broken))
    j = Journal(path, "office-a", TZ)
    assert j.degraded  # could not be brought up to date: events wait in memory meanwhile
    j.db.close()
    db = sqlite3.connect(path)
    assert db.execute("PRAGMA user_version").fetchone()[0] == 0
    assert "sent" in columns(db, "events")
    assert db.execute("SELECT seq, sent FROM events ORDER BY seq").fetchall() == [(1, 1), (2, 0), (3, 3)]
    assert db.execute("SELECT name FROM sqlite_master WHERE name='channels'").fetchone() is None
    db.close()


def test_a_read_only_logbook_of_the_release_before_is_read_through_a_migrated_copy(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "journal.db"
    shutil.copy(FIXTURE, path)
    real = Journal._open_writable
    refuse = [True]

    def gate(j: Journal) -> sqlite3.Connection:
        if refuse[0]:
            raise sqlite3.OperationalError("attempt to write a readonly database")
        return real(j)

    monkeypatch.setattr(Journal, "_open_writable", gate)
    j = Journal(path, "office-a", TZ)
    assert j.degraded and j.last_seq() == 13
    assert j.load_state("engine") == {"zones": {"leadership": {"state": "armed_night"}}}
    assert j.append([draft(14)])[0].seq == 14
    assert [e.seq for e in j.pending()] == [7, 11, 13, 14] and j.outbox_depth() == 4
    refuse[0] = False
    assert j.flush() and not j.degraded
    assert [e.seq for e in j.pending()] == [7, 11, 13, 14] and j.integrity_ok()
    assert j.db.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
    j.close()


# ----------------------------------------------------------------------------- channels


def test_each_channel_delivers_every_event_on_its_own(tmp_path: Path) -> None:
    j = Journal(tmp_path / "j.db", "office-a", TZ)
    j.append([draft(1)])  # before the second channel: only MQTT's business
    j.register_channel("sia")
    assert j.channels == [MQTT, "sia"]
    j.append([draft(n) for n in range(2, 7)])
    j.mark_sent([1, 2, 3, 4, 5, 6])
    assert j.outbox_depth() == 0 and j.pending() == []
    assert [e.seq for e in j.pending(channel="sia")] == [2, 3, 4, 5, 6]
    assert j.refuse(3, channel="sia") == "system"
    j.mark_sent([4, 5], channel="sia")
    assert [s for s, _ in j.pending_payloads(channel="sia")] == [2, 6]
    assert j.outbox_depth(channel="sia") == 2
    assert delivery(j, "sia") == {1: DELIVERED, 2: PENDING, 3: REFUSED, 4: DELIVERED,
                                  5: DELIVERED, 6: PENDING}  # fmt: skip
    assert delivery(j) == dict.fromkeys(range(1, 7), DELIVERED)
    j.close()
    j = Journal(tmp_path / "j.db", "office-a", TZ)  # the channel is kept in the logbook
    assert j.channels == [MQTT, "sia"] and j.outbox_depth(channel="sia") == 2
    with pytest.raises(JournalError, match="no report channel 'dc09'"):
        j.pending(channel="dc09")
    j.close()


def test_retention_deletes_an_event_only_once_every_channel_is_done_with_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(journal_module, "RETENTION_MIN_EVENTS", 2)
    j = Journal(tmp_path / "j.db", "office-a", TZ)
    j.register_channel("sia")
    j.append([draft(n) for n in range(1, 9)])  # all older than the retention by now
    j.mark_sent(list(range(1, 9)))
    j.mark_sent([1, 2], channel="sia")
    j.refuse(3, channel="sia")
    j.expire_oldest(1, channel="sia")  # 4
    j.mark_sent([6], channel="sia")  # out of order: 5 still waits there
    removed = j.prune(T0 + timedelta(days=800))
    assert removed == 5 and [e.seq for e in j.events()] == [5, 7, 8]  # 6 is among the newest
    assert [e.seq for e in j.pending(channel="sia")] == [5, 7, 8]
    assert j.db.execute("SELECT COUNT(*) FROM deliveries WHERE seq < 5").fetchone()[0] == 0
    j.close()


@settings(max_examples=150, deadline=None)
@given(
    ops=st.lists(
        st.one_of(
            st.tuples(st.just("append"), st.lists(st.sampled_from(["system", "alarm"]), max_size=6)),
            st.tuples(st.just("ack"), st.sampled_from([MQTT, "sia"]), st.integers(0, 5), st.booleans()),
            st.tuples(st.just("refuse"), st.sampled_from([MQTT, "sia"]), st.integers(0, 5)),
            st.tuples(st.just("expire"), st.sampled_from([MQTT, "sia"]), st.integers(1, 4)),
            st.tuples(st.just("disk"), st.booleans()),
            st.tuples(st.just("reopen")),
        ),
        max_size=25,
    )
)
def test_the_logbook_agrees_with_a_plain_model_of_every_channel_whatever_happens(
    ops: list[tuple[object, ...]],
) -> None:
    """Acknowledgements in a row or out of order, refusals, expiries, restarts and a disk that
    refuses writes for a while: each channel's pending events, payloads, count and delivery
    states stay those of a dict. While the disk refuses, what happens to events kept in
    memory is kept with them; a mark on an event already on disk is lost (it is sent again
    later, with the same id), as the journal promises."""
    model: dict[int, dict[str, int]] = {}  # seq -> channel -> state
    kinds: dict[int, str] = {}
    on_disk = 0  # the highest seq written
    with scratch() as d:
        path = d / "j.db"
        j = Journal(path, "office-a", TZ)
        j.register_channel("sia")
        real: sqlite3.Connection | None = None  # the writable connection while the disk refuses
        try:
            for op in ops:
                if op[0] == "append":
                    for e in j.append([draft(len(kinds) + 1, str(k)) for k in op[1]]):  # type: ignore[union-attr]
                        model[e.seq] = {MQTT: PENDING, "sia": PENDING}
                        kinds[e.seq] = e.kind
                    if real is None:
                        on_disk = j.last_seq()
                elif op[0] == "disk":
                    if op[1] and real is not None:  # writable again
                        j.db, real = real, None
                        assert j.flush()
                        on_disk = j.last_seq()
                    elif not op[1] and real is None:  # reads work, writes fail (a full disk)
                        real = j.db
                        j.db = sqlite3.connect(
                            f"file:{path}?mode=ro", uri=True, isolation_level=None
                        )
                        j.db.row_factory = sqlite3.Row
                elif op[0] == "reopen":
                    if real is None:
                        j.close()
                        j = Journal(path, "office-a", TZ)
                else:
                    ch = str(op[1])
                    waiting = [s for s in sorted(model) if model[s][ch] == PENDING]
                    lost = real is not None  # marks of events on disk are not written
                    if op[0] == "ack":
                        n, in_order = int(op[2]), bool(op[3])  # type: ignore[call-overload]
                        chosen = waiting[:n] if in_order else waiting[1 : 1 + n]
                        j.mark_sent(chosen, channel=ch)
                        for s in chosen:
                            if not (lost and s <= on_disk):
                                model[s][ch] = DELIVERED
                    elif op[0] == "refuse" and waiting:
                        s = waiting[min(int(op[2]), len(waiting) - 1)]  # type: ignore[call-overload]
                        kept = not (lost and s <= on_disk)
                        assert j.refuse(s, channel=ch) == (kinds[s] if kept else None)
                        if kept:
                            model[s][ch] = REFUSED
                    elif op[0] == "expire":
                        low = [s for s in waiting if kinds[s] == "system" and s <= on_disk]
                        low = [] if lost else low[: int(op[2])]  # type: ignore[call-overload]
                        n, first, last, _ = j.expire_oldest(int(op[2]), channel=ch)  # type: ignore[call-overload]
                        assert n == len(low) and (first, last) == ((low[0], low[-1]) if low else (None, None))
                        for s in low:
                            model[s][ch] = EXPIRED
                for ch in (MQTT, "sia"):
                    want = [s for s in sorted(model) if model[s][ch] == PENDING]
                    assert [e.seq for e in j.pending(limit=1000, channel=ch)] == want
                    assert [s for s, _ in j.pending_payloads(limit=1000, channel=ch)] == want
                    assert j.outbox_depth(channel=ch) == len(want)
            if real is not None:
                j.db, real = real, None
                assert j.flush()
            for ch in (MQTT, "sia"):
                assert delivery(j, ch) == {s: states[ch] for s, states in model.items()}
                assert j.expired_count(ch) == sum(1 for v in model.values() if v[ch] == EXPIRED)
        finally:
            if real is not None:
                j.db.close()
                j.db = real
            j.close()


def test_the_daemon_refuses_to_start_on_a_newer_logbook_with_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from controller.cli import main

    Journal(tmp_path / "journal.db", "office-a", TZ).close()
    db = sqlite3.connect(tmp_path / "journal.db")
    db.execute(f"PRAGMA user_version = {SCHEMA_VERSION + 1}")
    db.close()
    config = Path(__file__).parents[2] / "config" / "office-a.yaml"
    rc = main(["run", "-c", str(config), "--simulate", "--state-dir", str(tmp_path)])
    err = capsys.readouterr().err.strip().splitlines()
    assert rc == 69
    assert err[-1].startswith("officeguard: the logbook") and f"version {SCHEMA_VERSION + 1}" in err[-1]
