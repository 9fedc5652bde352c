"""The storage bench still measures what docs/storage.md says it does (no timing thresholds:
only that every setting ran through the real Journal and left an intact file)."""

from __future__ import annotations

from pathlib import Path

from bench import storage


def test_quick_storage_bench_measures_every_setting(tmp_path: Path) -> None:
    res = storage.run(quick=True, directory=str(tmp_path))
    assert res["chosen"] == "wal_full" and res["baseline"] == "wal_off"
    assert set(res["settings"]) == {
        "wal_full",
        "wal_normal",
        "wal_off",
        "delete_full",
        "delete_normal",
    }
    assert res["events_per_setting"] == 100
    for name, s in res["settings"].items():
        assert s["median_ms"] > 0 and s["p90_ms"] >= s["median_ms"], name
        assert s["file_bytes"] > 0, name
    assert res["settings"]["wal_off"]["ratio_to_baseline"] == 1.0
    assert res["settings"]["wal_full"]["ratio_to_chosen"] == 1.0
    assert list(tmp_path.iterdir()) == []  # the bench cleans up after itself
    names = [f["name"] for f in res["figures"]]
    assert "storage: event append, WAL+FULL" in names
    chosen = res["figures"][0]
    assert chosen["baseline"] == res["settings"]["wal_off"]["median_ms"]
    assert chosen["pass"] is (chosen["value"] < storage.TARGET_MS)
