"""Snapshot storage: the pruning rule (property-tested) and the directory beside the logbook."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

from hypothesis import given
from hypothesis import strategies as st

from controller.camera.store import SENT, SnapshotStore, Stored, prune

files = st.lists(
    st.builds(Stored, st.uuids().map(lambda u: f"{u.hex}.jpg"), st.floats(0, 10_000), st.integers(1, 500)),
    max_size=40,
    unique_by=lambda f: f.name,
)


@given(files, st.floats(0, 20_000), st.integers(0, 5_000), st.integers(0, 10_000))
def test_pruning_keeps_within_the_limits_and_deletes_only_the_oldest(
    listing: list[Stored], now: float, max_bytes: int, max_age_s: int
) -> None:
    gone = set(prune(listing, now, max_bytes, timedelta(seconds=max_age_s)))
    kept = [f for f in listing if f.name not in gone]
    assert sum(f.size for f in kept) <= max_bytes
    assert all(f.mtime >= now - max_age_s for f in kept)
    if kept and gone:  # every deleted file is no newer than every kept one
        newest_gone = max(f.mtime for f in listing if f.name in gone)
        assert newest_gone <= min(f.mtime for f in kept)


def test_the_store_writes_a_reference_and_prunes_the_oldest_first(tmp_path: Path) -> None:
    store = SnapshotStore(tmp_path / "snapshots", max_bytes=2500, max_age=timedelta(days=1))
    t0 = datetime(2026, 3, 4, 1, 0, tzinfo=UTC)
    refs = [store.save(f"ev-cam-{n}", b"\xff\xd8\xff" + b"x" * 997, t0 + timedelta(seconds=n)) for n in range(3)]
    assert [r["size"] for r in refs] == [1000] * 3 and refs[0]["id"] == "ev-cam-0"
    assert sorted(f.name for f in store.listing()) == ["ev-cam-1.jpg", "ev-cam-2.jpg"]
    store.prune((t0 + timedelta(days=2)).timestamp())
    assert store.listing() == [] and store.read("ev-cam-2") is None


def test_images_wait_for_the_office_in_order_and_pruned_ones_are_counted_as_dropped(
    tmp_path: Path,
) -> None:
    store = SnapshotStore(tmp_path / "snapshots", max_bytes=2500, max_age=timedelta(days=1), deliver=True)
    t0 = datetime(2026, 3, 4, 1, 0, tzinfo=UTC)
    jpeg = b"\xff\xd8\xff" + b"x" * 997
    orders = [store.save(f"ev-cam-{n}", jpeg, t0 + timedelta(seconds=n), "ev")["_order"] for n in range(2)]
    assert orders == sorted(orders)
    store.mark(["ev-cam-0"], SENT)
    assert [w.sid for w in store.waiting()] == ["ev-cam-1"]
    store.save("ev-cam-2", jpeg, t0 + timedelta(seconds=2), "ev")  # prunes ev-cam-0 (sent)
    assert store.dropped() == 0
    store.save("ev-cam-3", jpeg, t0 + timedelta(seconds=3), "ev")  # prunes ev-cam-1 (never sent)
    assert store.dropped() == 1
    assert [(w.event_id, w.sid) for w in store.waiting()] == [("ev", "ev-cam-2"), ("ev", "ev-cam-3")]
    store.close()
    again = SnapshotStore(tmp_path / "snapshots", max_bytes=2500, max_age=timedelta(days=1), deliver=True)
    assert again.dropped() == 1 and len(again.waiting()) == 2  # kept across a restart
    again.close()
