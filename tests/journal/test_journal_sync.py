"""The daemon's logbook with its fsync on a worker thread: events are offered to the outbox only
once the fsync that covers them has returned, commits made meanwhile are covered by the next
one, a failing fsync publishes nothing and is retried, and writes outside the loop sync at once.
The fsync is held on a gate so the tests decide when the disk answers."""

from __future__ import annotations

import asyncio
import sqlite3
import threading
from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

from controller.events import EventDraft
from controller.journal import Journal
from tests.mqtt_broker import until

TZ = ZoneInfo("Asia/Ho_Chi_Minh")
T0 = datetime(2026, 2, 17, 18, 20, tzinfo=UTC)


def draft(i: int) -> EventDraft:
    return EventDraft(kind="tamper", ts=T0 + timedelta(seconds=i), text=f"tamper {i}", cid="E137")


class GatedDisk:
    """Wraps Journal._fsync_wal: each fsync waits for the test to open the gate (or fails)."""

    def __init__(self, j: Journal) -> None:
        self.real = j._fsync_wal  # noqa: SLF001
        self.gate = threading.Event()
        self.started = threading.Semaphore(0)
        self.calls = 0
        self.fail: OSError | None = None
        j._fsync_wal = self  # type: ignore[method-assign]  # noqa: SLF001

    def __call__(self) -> None:
        self.calls += 1
        self.started.release()
        assert self.gate.wait(10)
        if self.fail is not None:
            raise self.fail
        self.real()


def open_journal(path: Path) -> Journal:
    return Journal(path, "office-a", TZ, group_commit=True, sync_in_background=True)


def test_events_reach_the_outbox_only_after_their_fsync(tmp_path: Path) -> None:
    async def main() -> None:
        j = open_journal(tmp_path / "j.db")
        disk = GatedDisk(j)
        told: list[bool] = []
        j.flush_listeners.append(told.append)
        j.append([draft(1), draft(2)])
        await asyncio.sleep(0)  # the loop turn ends: committed, fsync started
        assert await asyncio.to_thread(disk.started.acquire, True, 5)
        assert j.unwritten == 0 and j.outbox_depth() == 2  # on the file, not yet durable
        assert j.pending_payloads(limit=10) == [] and j.pending() == [] and told == []
        disk.gate.set()
        assert await until(lambda: told == [True])
        assert [s for s, _ in j.pending_payloads(limit=10)] == [1, 2]
        assert [e.seq for e in j.pending()] == [1, 2]
        j.close()

    asyncio.run(main())


def test_commits_made_during_an_fsync_are_covered_by_the_next(tmp_path: Path) -> None:
    async def main() -> None:
        j = open_journal(tmp_path / "j.db")
        disk = GatedDisk(j)
        told: list[bool] = []
        j.flush_listeners.append(told.append)
        j.append([draft(1)])
        await asyncio.sleep(0)
        assert await asyncio.to_thread(disk.started.acquire, True, 5)
        for i in (2, 3):  # two more loop turns while the disk is busy: no second fsync yet
            j.append([draft(i)])
            await asyncio.sleep(0)
        assert disk.calls == 1
        disk.gate.set()
        assert await until(lambda: len(told) == 2)
        assert disk.calls == 2  # one more fsync for both turns
        assert [s for s, _ in j.pending_payloads(limit=10)] == [1, 2, 3]
        j.close()

    asyncio.run(main())


def test_a_failed_fsync_publishes_nothing_says_so_and_is_retried(tmp_path: Path) -> None:
    async def main() -> None:
        j = open_journal(tmp_path / "j.db")
        disk = GatedDisk(j)
        disk.fail = OSError(5, "Input/output error")
        disk.gate.set()
        told: list[bool] = []
        j.flush_listeners.append(told.append)
        j.append([draft(1)])
        assert await until(lambda: told == [False])
        assert j.write_error is not None and "fsync" in j.write_error
        assert j.pending_payloads(limit=10) == []
        disk.fail = None
        assert j.flush() is True  # the daemon's retry: synced here and now
        assert j.write_error is None
        assert [s for s, _ in j.pending_payloads(limit=10)] == [1]
        j.close()

    asyncio.run(main())


def test_writes_outside_the_loop_and_close_sync_at_once(tmp_path: Path) -> None:
    j = open_journal(tmp_path / "j.db")
    assert j.db.execute("PRAGMA synchronous").fetchone()[0] == 1  # NORMAL: our own fsync
    j.append([draft(1)])  # no loop running: written and synced before append() returns
    assert [s for s, _ in j.pending_payloads(limit=10)] == [1]
    j.save_state("engine", {"zones": {"vault": "armed"}})
    j.close()
    again = open_journal(tmp_path / "j.db")
    assert again.last_seq() == 1 and again.load_state("engine") == {"zones": {"vault": "armed"}}
    again.close()
    plain = Journal(tmp_path / "p.db", "office-a", TZ, group_commit=True)
    assert plain.db.execute("PRAGMA synchronous").fetchone()[0] == 2  # FULL, SQLite's fsync
    plain.close()


def test_a_new_logbook_has_small_pages_and_an_old_one_keeps_its_own(tmp_path: Path) -> None:
    j = open_journal(tmp_path / "new.db")
    assert j.db.execute("PRAGMA page_size").fetchone()[0] == 1024  # a quarter of the bytes
    j.close()
    old = sqlite3.connect(tmp_path / "old.db")  # a logbook made before: 4 KiB pages
    old.execute("PRAGMA page_size=4096")
    old.execute("PRAGMA journal_mode=WAL")
    old.execute("CREATE TABLE t(x)")
    old.close()
    j = open_journal(tmp_path / "old.db")
    assert j.db.execute("PRAGMA page_size").fetchone()[0] == 4096
    j.append([draft(1)])
    assert j.last_seq() == 1 and j.integrity_ok()
    j.close()


def test_a_commit_after_a_failed_fsync_does_not_clear_the_trouble(tmp_path: Path) -> None:
    async def main() -> None:
        j = open_journal(tmp_path / "j.db")
        disk = GatedDisk(j)
        disk.fail = OSError(5, "Input/output error")
        disk.gate.set()
        told: list[bool] = []
        j.flush_listeners.append(told.append)
        j.append([draft(1)])
        assert await until(lambda: told == [False])
        j.append([draft(2)])  # the commit works; nothing is on the card until an fsync does
        await asyncio.sleep(0)
        assert j.write_error is not None and "fsync" in j.write_error
        assert await until(lambda: len(told) == 2)
        assert told == [False, False] and j.pending_payloads(limit=10) == []
        disk.fail = None
        assert j.flush() is True and j.write_error is None
        assert [s for s, _ in j.pending_payloads(limit=10)] == [1, 2]
        j.close()

    asyncio.run(main())


def test_staged_state_is_committed_with_the_loop_turn_and_synced_off_the_loop(
    tmp_path: Path,
) -> None:
    """A signed command's nonce: in the logbook before the command's events, no fsync on the
    loop thread (on a Pi's SD card that would hold every siren for 2-20 ms)."""

    async def main() -> None:
        j = open_journal(tmp_path / "j.db")
        disk = GatedDisk(j)
        loop_thread = threading.get_ident()
        synced_on: list[int] = []
        real = disk.real
        disk.real = lambda: (synced_on.append(threading.get_ident()), real())[1]
        j.stage_state("commands", {"nonces": {"n-1": 1.0}})
        j.append([draft(1)])  # the command's event, appended later in the same turn
        assert disk.calls == 0  # nothing synced before the turn ends
        await asyncio.sleep(0)
        assert await asyncio.to_thread(disk.started.acquire, True, 5)
        other = sqlite3.connect(tmp_path / "j.db")
        row = other.execute("SELECT value FROM state WHERE key='commands'").fetchone()
        assert row is not None and "n-1" in row[0]  # committed with the event
        assert j.pending() == []  # ... and nothing of it offered before its fsync
        disk.gate.set()
        assert await until(lambda: [e.seq for e in j.pending()] == [1])
        assert synced_on and loop_thread not in synced_on
        other.close()
        j.close()

    asyncio.run(main())


def test_staged_state_without_a_running_loop_is_saved_at_once(tmp_path: Path) -> None:
    j = open_journal(tmp_path / "j.db")
    j.stage_state("commands", {"nonces": {"n-2": 2.0}})
    j.close()
    again = open_journal(tmp_path / "j.db")
    assert again.load_state("commands") == {"nonces": {"n-2": 2.0}}
    again.close()
