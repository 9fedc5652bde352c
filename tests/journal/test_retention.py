"""Retention of the logbook at its real size (docs/storage.md): at least a year of events and at
least the newest 100,000, whichever keeps more; undelivered events are never pruned; and the
file does not grow once pruning runs (SQLite reuses the freed pages)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

import controller.journal as journal
from controller.events import EventDraft
from controller.journal import RETENTION_MIN_AGE, RETENTION_MIN_EVENTS, Journal

TZ = ZoneInfo("Asia/Ho_Chi_Minh")
NOW = datetime(2028, 3, 1, 0, 0, tzinfo=UTC)


def _fill(j: Journal, n: int, span: timedelta, *, sent: bool = True, end: datetime = NOW) -> None:
    """n events evenly over `span` ending at `end`, written in batches like a busy site."""
    step = span / n
    start = end - span
    batch: list[EventDraft] = []
    for i in range(n):
        batch.append(
            EventDraft(
                kind="arm",
                ts=start + step * i,
                text="Bật khu vực",
                cid="R401",
                zone="leadership",
                user="bao-ve-1",
                detail={"mode": "night"},
            )
        )
        if len(batch) == 5000 or i == n - 1:
            events = j.append(batch)
            if sent:
                j.mark_sent([e.seq for e in events])
            batch = []


def test_the_newest_100000_stay_when_a_year_holds_fewer(tmp_path: Path) -> None:
    """A quiet site (about 150 events a day for two years): the count rule keeps more than the
    age rule, so exactly the newest 100,000 stay, older than a year or not."""
    assert RETENTION_MIN_EVENTS == 100_000 and timedelta(days=365) <= RETENTION_MIN_AGE
    j = Journal(tmp_path / "j.db", "office-a", TZ, synchronous="OFF")
    # one old event the broker never acknowledged: it must survive whatever its age
    _fill(j, 1, timedelta(days=800), sent=False)
    n = 110_000
    _fill(j, n, timedelta(days=730))
    first_kept = j.last_seq() - RETENTION_MIN_EVENTS + 1
    removed = j.prune(NOW)
    seqs = [r[0] for r in j.db.execute("SELECT seq FROM events ORDER BY seq")]
    assert removed == n - RETENTION_MIN_EVENTS
    assert seqs[0] == 1  # the undelivered one
    assert seqs[1:] == list(range(first_kept, j.last_seq() + 1))
    oldest_kept = j.db.execute("SELECT MIN(ts) FROM events WHERE seq > 1").fetchone()[0]
    assert datetime.fromisoformat(oldest_kept) < NOW - RETENTION_MIN_AGE  # older than a year
    assert j.integrity_ok()
    j.close()


def test_a_whole_year_stays_when_it_holds_more(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A busy site: a year holds more events than the count minimum, so everything younger than
    the retention age stays and only older events go. (The count minimum is lowered to 1,000 so
    the busy year fits in a quick test; the rule is the same.)"""
    monkeypatch.setattr(journal, "RETENTION_MIN_EVENTS", 1_000)
    j = Journal(tmp_path / "j.db", "office-a", TZ, synchronous="OFF")
    _fill(j, 4_000, timedelta(days=730))
    cutoff = NOW - RETENTION_MIN_AGE
    younger = sum(
        1 for (ts,) in j.db.execute("SELECT ts FROM events") if datetime.fromisoformat(ts) >= cutoff
    )
    assert younger > 1_000
    removed = j.prune(NOW)
    left = [datetime.fromisoformat(ts) for (ts,) in j.db.execute("SELECT ts FROM events")]
    assert removed == 4_000 - younger
    assert len(left) == younger and min(left) >= cutoff
    j.close()


def test_the_file_stops_growing_once_pruning_runs(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Steady state: prune, write as many new events as were pruned, prune again: the file is
    no bigger than before (freed pages are reused; no VACUUM needed, none done)."""
    monkeypatch.setattr(journal, "RETENTION_MIN_EVENTS", 5_000)
    path = tmp_path / "j.db"
    j = Journal(path, "office-a", TZ, synchronous="OFF")
    _fill(j, 10_000, timedelta(days=730))
    j.prune(NOW + timedelta(days=800))  # everything is old: keep the newest 5,000
    j.db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    size = path.stat().st_size
    for round_ in range(3):
        later = NOW + timedelta(days=1 + round_)  # the site's clock moves on
        _fill(j, 5_000, timedelta(days=1), end=later)
        j.prune(later + timedelta(days=800))
        j.db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        assert j.db.execute("SELECT COUNT(*) FROM events").fetchone()[0] == 5_000
        assert path.stat().st_size <= size * 1.05, (round_, path.stat().st_size, size)
    j.close()
