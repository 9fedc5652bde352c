"""A logbook that cannot be opened for writing: the journal starts read-only (or in memory),
keeps events in memory, and writes them once the file can be opened again, seq never repeating."""

from __future__ import annotations

import sqlite3
from datetime import UTC, datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from controller.events import EventDraft
from controller.journal import Journal

TZ = ZoneInfo("Asia/Ho_Chi_Minh")
T0 = datetime(2026, 11, 23, 2, 0, tzinfo=UTC)


def draft(n: int) -> EventDraft:
    return EventDraft(kind="system", ts=T0, text=f"event {n}")


class Refusing:
    """`Journal._open_writable` that fails while `refuse` is set, the way SQLite does when the
    files belong to another user or the card went read-only (root ignores file modes, so the
    real thing is shown end to end in tests/journal/test_e2e_storage.py as an unprivileged daemon)."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.refuse = True
        real = Journal._open_writable

        def fake(journal: Journal) -> sqlite3.Connection:
            if self.refuse:
                raise sqlite3.OperationalError("attempt to write a readonly database")
            return real(journal)

        monkeypatch.setattr(Journal, "_open_writable", fake)


def test_read_only_logbook_keeps_seq_and_state_then_writes_when_it_can(tmp_path: Path, monkeypatch):
    path = tmp_path / "journal.db"
    j = Journal(path, "office-a", TZ)
    j.append([draft(1), draft(2)], state={"engine": {"armed": True}})
    j.close()
    gate = Refusing(monkeypatch)
    j = Journal(path, "office-a", TZ)
    assert j.degraded and j.write_error and "readonly" in j.write_error
    assert j.load_state("engine") == {"armed": True}  # the armed state is restored
    events = j.append([draft(3)])
    assert events[0].seq == 3 and j.unwritten == 1 and j.outbox_depth() == 3
    assert [e.seq for e in j.pending()] == [1, 2, 3]  # memory events go out meanwhile
    gate.refuse = False
    assert j.flush() and not j.degraded and j.write_error is None
    assert [e.seq for e in j.events()] == [1, 2, 3] and j.integrity_ok()
    j.close()


def test_unreadable_logbook_starts_empty_in_memory_and_renumbers_after_the_real_one(
    tmp_path: Path, monkeypatch
):
    path = tmp_path / "journal.db"
    j = Journal(path, "office-a", TZ)
    j.append([draft(n) for n in range(5)])
    j.close()
    gate = Refusing(monkeypatch)
    real_fallback = Journal._open_fallback

    def no_file(journal: Journal) -> sqlite3.Connection:
        journal.path, keep = tmp_path / "missing" / "journal.db", journal.path
        try:
            return real_fallback(journal)
        finally:
            journal.path = keep

    monkeypatch.setattr(Journal, "_open_fallback", no_file)
    j = Journal(path, "office-a", TZ)
    mem = j.append([draft(10), draft(11)])
    assert [e.seq for e in mem] == [1, 2]  # the real last seq is unknown meanwhile
    gate.refuse = False
    assert j.flush()
    seqs = [e.seq for e in j.events()]
    assert seqs == [1, 2, 3, 4, 5, 6, 7]  # renumbered after the real logbook: no seq repeats
    assert [e.text for e in j.events()][-2:] == ["event 10", "event 11"]
    assert j.append([draft(12)])[0].seq == 8
    j.close()
