"""The logbook: seq strictly increasing across restarts, outbox, state, and a disk that refuses."""

from __future__ import annotations

import os
import random
import sqlite3
from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import jsonschema
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from controller import journal as journal_module
from controller.events import EventDraft, event_schema
from controller.journal import Journal, _row_payload, read_events

TZ = ZoneInfo("Asia/Ho_Chi_Minh")
T0 = datetime(2026, 2, 17, 18, 20, tzinfo=UTC)


def draft(i: int = 0, kind: str = "alarm") -> EventDraft:
    return EventDraft(kind=kind, ts=T0 + timedelta(seconds=i), text=f"event {i}", cid="E134", zone="leadership",
                      sensor="door.director", detail={"i": i})


def test_events_are_numbered_written_and_valid_against_the_schema(tmp_path):
    j = Journal(tmp_path / "j.db", "office-a", TZ)
    events = j.append([draft(1), draft(2)], state={"engine": {"zones": {}}})
    assert [e.seq for e in events] == [1, 2]
    assert len({e.id for e in events}) == 2
    assert events[0].ts == "2026-02-18T01:20:01.000+07:00"
    schema = event_schema()
    for e in events:
        jsonschema.validate(e.to_dict(), schema)
    assert j.load_state("engine") == {"zones": {}}
    assert [e.id for e in j.pending()] == [e.id for e in events]
    j.mark_sent([1])
    assert [e.seq for e in j.pending()] == [2]
    assert j.outbox_depth() == 1
    j.close()
    assert [e.seq for e in read_events(tmp_path / "j.db")] == [1, 2]


@settings(max_examples=60)
@given(st.lists(st.lists(st.integers(0, 5), min_size=0, max_size=6), min_size=1, max_size=6),
       st.lists(st.booleans(), min_size=6, max_size=6))
def test_seq_strictly_increases_across_restarts_and_pruning(tmp_path_factory, batches, prune_after):
    path = tmp_path_factory.mktemp("j") / "j.db"
    seen: list[int] = []
    ids: set[str] = set()
    for n, batch in enumerate(batches):
        j = Journal(path, "office-a", TZ)
        events = j.append([draft(i) for i in batch])
        seen += [e.seq for e in events]
        ids |= {e.id for e in events}
        if prune_after[n] and events:
            j.mark_sent([e.seq for e in events])
            # drop everything delivered, as a retention pass far in the future would
            j.db.execute(
                "DELETE FROM events WHERE seq IN"
                " (SELECT seq FROM event_delivery WHERE channel='mqtt' AND state=1)"
            )
        j.close()
    assert seen == sorted(seen) and len(seen) == len(set(seen))
    assert len(ids) == len(seen)


def test_a_disk_that_refuses_keeps_events_in_memory_and_writes_them_later(tmp_path):
    j = Journal(tmp_path / "j.db", "office-a", TZ)
    j.append([draft(1)])
    real = j.db
    broken = sqlite3.connect(":memory:")  # has no tables: every write fails like a bad disk
    j.db = broken
    events = j.append([draft(2), draft(3)])
    assert [e.seq for e in events] == [2, 3]
    assert j.write_error is not None
    assert j.unwritten == 2
    j.db = real
    assert [e.seq for e in j.pending()] == [1, 2, 3]
    assert j.flush()
    assert j.write_error is None and j.unwritten == 0
    j.close()
    assert [e.seq for e in read_events(tmp_path / "j.db")] == [1, 2, 3]


@pytest.mark.skipif(os.geteuid() == 0, reason="root ignores file permissions")
def test_read_only_directory(tmp_path):
    d = tmp_path / "ro"
    d.mkdir()
    j = Journal(d / "j.db", "office-a", TZ)
    j.append([draft(1)])
    j.close()
    os.chmod(d / "j.db", 0o444)
    j = Journal(d / "j.db", "office-a", TZ)
    j.append([draft(2)])
    assert j.write_error is not None and j.unwritten == 1


def test_prune_keeps_undelivered_and_recent_events(tmp_path, monkeypatch):
    import controller.journal as journal

    monkeypatch.setattr(journal, "RETENTION_MIN_EVENTS", 3)
    j = Journal(tmp_path / "j.db", "office-a", TZ)
    events = j.append([draft(i) for i in range(10)])
    j.mark_sent([e.seq for e in events[:8]])
    removed = j.prune(T0 + timedelta(days=400))
    left = [e.seq for e in j.events()]
    assert removed > 0
    assert 9 in left and 10 in left  # undelivered events are never pruned
    assert len(left) >= 3
    assert j.integrity_ok()
    # a year later but not older than a year: nothing goes
    j2 = Journal(tmp_path / "j2.db", "office-a", TZ)
    ev2 = j2.append([draft(i) for i in range(10)])
    j2.mark_sent([e.seq for e in ev2])
    assert j2.prune(T0 + timedelta(days=100)) == 0


def test_log_of_a_missing_journal_is_a_clear_error(tmp_path: Path):
    from controller.journal import JournalError

    with pytest.raises(JournalError, match="no logbook"):
        list(read_events(tmp_path / "none.db"))


def test_contact_id_page_matches_the_table():
    from controller.contact_id import markdown_table
    from tests.conftest import ROOT

    assert markdown_table() in (ROOT / "docs" / "contact-id.md").read_text(encoding="utf-8")


def test_group_commit_writes_a_loop_turn_in_one_transaction(tmp_path):
    import asyncio

    j = Journal(tmp_path / "j.db", "office-a", TZ, group_commit=True)
    flushed: list[bool] = []
    j.flush_listeners.append(flushed.append)
    commits = []
    j.db.set_trace_callback(lambda sql: commits.append(sql) if sql == "COMMIT" else None)

    async def main() -> None:
        events = [e for i in range(3) for e in j.append([draft(i)], state={"n": i})]
        assert [e.seq for e in events] == [1, 2, 3]  # numbered at once
        assert j.outbox_depth() == 3 and j.unwritten == 3
        assert j.pending() == []  # not published before it is on disk
        assert commits == []
        await asyncio.sleep(0)
        assert commits == ["COMMIT"] and flushed == [True]  # one transaction for the turn
        assert [e.seq for e in j.pending()] == [1, 2, 3]
        assert j.load_state("n") == 2

    asyncio.run(main())
    j.append([draft(4)])  # no loop running: written at once
    assert commits == ["COMMIT", "COMMIT"]
    j.close()
    assert [e.seq for e in read_events(tmp_path / "j.db")] == [1, 2, 3, 4]


def test_pending_payloads_are_the_events_json_exactly(tmp_path):
    j = Journal(tmp_path / "j.db", "office-a", TZ)
    drafts = [
        draft(1),
        EventDraft(kind="system", ts=T0, text='quote " and \\ and Tết 🚁', detail={}),
        EventDraft(kind="arm", ts=T0, text="tab\t newline\n nul\x00 \u2028 \x7f", cid="R401",
                   zone='zone "a"', sensor="s\\1", user="Nguyễn Văn A", detail={"k": "\x01"}),
        EventDraft(kind="drone", ts=T0, text="drone", zone="perimeter", user=None,
                   detail={"uas_id": "ABC", "lat": 22.48561, "nested": {"a": [1, 2.5, None]}}),
    ]
    events = j.append(drafts)
    got = j.pending_payloads(limit=10)
    assert got == [(e.seq, e.to_json()) for e in events]
    assert j.pending_payloads(limit=1, after_seq=1) == [(2, events[1].to_json())]
    j.mark_sent([1])
    assert [s for s, _ in j.pending_payloads()] == [2, 3, 4]
    j.mark_sent([2])
    assert j.db.execute("PRAGMA synchronous").fetchone()[0] == 2  # FULL again after the marks
    j.close()
    j = Journal(tmp_path / "j.db", "office-a", TZ)  # read back from the rows this time
    assert j.pending_payloads() == [(e.seq, e.to_json()) for e in events[2:]]
    j.close()


def _payloads_on_disk(j: Journal, limit: int, after_seq: int) -> list[tuple[int, str]]:
    rows = j.db.execute(
        "SELECT seq, id, site, ts, kind, zone, sensor, user, cid, text, detail"
        " FROM events JOIN event_delivery USING (seq)"
        " WHERE channel='mqtt' AND state=0 AND seq>? ORDER BY seq LIMIT ?",
        (after_seq, limit),
    ).fetchall()
    return [(r[0], _row_payload(tuple(r))) for r in rows]


def test_pending_payloads_from_memory_are_what_the_disk_holds(tmp_path, monkeypatch):
    """The payloads of events just written come from memory, not read back: through restarts
    (older undelivered rows), acknowledgements in any order, the long-outage expiry and more
    events than the memory keeps, the outbox always gets exactly the undelivered rows."""
    monkeypatch.setattr(journal_module, "FRESH_LIMIT", 6)
    rnd = random.Random(7)
    path = tmp_path / "j.db"
    j = Journal(path, "office-a", TZ)
    kinds = ["alarm", "system", "arm", "tamper"]
    for step in range(300):
        op = rnd.random()
        if op < 0.45:
            j.append([draft(step, kind=rnd.choice(kinds)) for _ in range(rnd.randint(1, 4))])
        elif op < 0.8:
            pending = [s for s, _ in _payloads_on_disk(j, 1000, 0)]
            if pending:
                j.mark_sent(rnd.sample(pending, rnd.randint(1, len(pending))))
        elif op < 0.9:
            j.expire_oldest(rnd.randint(1, 3), after_seq=rnd.randint(0, j.last_seq()))
        else:
            j.close()
            j = Journal(path, "office-a", TZ)
        for after in (0, rnd.randint(0, j.last_seq() + 1), j.last_seq()):
            for limit in (1, 3, 100):
                assert j.pending_payloads(limit, after) == _payloads_on_disk(j, limit, after)
    j.close()
