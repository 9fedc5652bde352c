"""Logbook durability settings: what each costs for the controller's real write, one event
appended and committed through `controller.journal.Journal.append` (the event row plus the
engine's saved state, in one transaction).

Compared in the same run, on the same disk, interleaved round by round so a busy machine slows
every setting alike:

- WAL + synchronous=FULL   (what the controller uses: the WAL is fsynced at every commit)
- WAL + synchronous=NORMAL (fsync only at checkpoints: the last commits can be lost at a power cut)
- WAL + synchronous=OFF    (no fsync at all: the baseline, what the disk costs without durability)
- DELETE (rollback journal) + FULL and + NORMAL

Figures: median time per append, its ratio to WAL+OFF and to WAL+FULL, fsync-like flushes per
append are implied by the mode; bytes the kernel sent to the block device per append
(`/proc/self/io` write_bytes, what wears an SD card), and file growth per event.

`python -m bench.storage [--quick] [--dir DIR]`; `run(quick)` returns the figures for `make bench`.
"""

from __future__ import annotations

import os
import statistics
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from controller.events import EventDraft
from controller.journal import Journal

TZ = ZoneInfo("Asia/Ho_Chi_Minh")
T0 = datetime(2026, 2, 17, 18, 20, tzinfo=UTC)

SETTINGS: list[tuple[str, str, str]] = [
    ("wal_full", "WAL", "FULL"),
    ("wal_normal", "WAL", "NORMAL"),
    ("wal_off", "WAL", "OFF"),
    ("delete_full", "DELETE", "FULL"),
    ("delete_normal", "DELETE", "NORMAL"),
]
CHOSEN = "wal_full"
BASELINE = "wal_off"

# an engine snapshot of about the size the daemon saves with each event (three zones)
_STATE = {
    "zones": {
        z: {"state": "armed_night", "armed_at": "2026-02-17T18:00:00+00:00", "alarm": False}
        for z in ("leadership", "finance", "perimeter")
    },
    "bypassed": [],
    "shutdown": {},
}


def _draft(i: int) -> EventDraft:
    return EventDraft(
        kind="alarm",
        ts=T0 + timedelta(seconds=i),
        text="Báo động: cửa phòng Giám đốc mở khi khu vực đang bật",
        cid="E134",
        zone="leadership",
        sensor="door.director",
        detail={"state": "triggered", "previous": "pending", "i": i},
    )


def _write_bytes() -> int | None:
    try:
        with open("/proc/self/io") as f:
            for line in f:
                if line.startswith("write_bytes:"):
                    return int(line.split()[1])
    except OSError:
        return None
    return None


def _open(path: Path, mode: str, sync: str) -> Journal:
    j = Journal(path, "office-a", TZ, synchronous=sync)
    if mode != "WAL":
        got = j.db.execute(f"PRAGMA journal_mode={mode}").fetchone()[0]
        assert str(got).upper() == mode, got
    return j


def measure(quick: bool = False, directory: str | None = None) -> dict[str, Any]:
    rounds = 5 if quick else 15
    per_round = 20 if quick else 60
    work = Path(tempfile.mkdtemp(prefix="og-storage-", dir=directory))
    journals = {name: _open(work / f"{name}.db", mode, sync) for name, mode, sync in SETTINGS}
    times: dict[str, list[float]] = {name: [] for name, _, _ in SETTINGS}
    written: dict[str, int] = {name: 0 for name, _, _ in SETTINGS}
    io_ok = _write_bytes() is not None
    seq = 0
    try:
        # warm-up: the first transaction of each file creates pages
        for j in journals.values():
            j.append([_draft(0)], state={"engine": _STATE})
        for r in range(rounds):
            order = SETTINGS if r % 2 == 0 else list(reversed(SETTINGS))
            for name, _, _ in order:
                j = journals[name]
                b0 = _write_bytes()
                for _ in range(per_round):
                    seq += 1
                    state = {"engine": {**_STATE, "n": seq}}
                    t = time.perf_counter()
                    j.append([_draft(seq)], state=state)
                    times[name].append(time.perf_counter() - t)
                b1 = _write_bytes()
                if b0 is not None and b1 is not None:
                    written[name] += b1 - b0
        n = rounds * per_round
        sizes = {}
        for name, j in journals.items():
            db = work / f"{name}.db"
            wal = work / f"{name}.db-wal"
            sizes[name] = db.stat().st_size + (wal.stat().st_size if wal.exists() else 0)
            assert j.integrity_ok()
    finally:
        for j in journals.values():
            j.close()
        for p in work.iterdir():
            p.unlink()
        work.rmdir()
    med = {k: statistics.median(v) for k, v in times.items()}
    out: dict[str, Any] = {
        "name": "storage",
        "events_per_setting": n,
        "directory": str(work.parent),
        "chosen": CHOSEN,
        "baseline": BASELINE,
        "settings": {},
    }
    for name, mode, sync in SETTINGS:
        out["settings"][name] = {
            "journal_mode": mode,
            "synchronous": sync,
            "median_ms": med[name] * 1000,
            "p90_ms": statistics.quantiles(times[name], n=10)[-1] * 1000,
            "ratio_to_baseline": med[name] / med[BASELINE],
            "ratio_to_chosen": med[name] / med[CHOSEN],
            "device_bytes_per_event": (written[name] / n) if io_ok else None,
            "file_bytes": sizes[name],
        }
    return out


# the journal must keep up with any site's event rate with room to spare: 20 events a second
TARGET_MS = 50.0


def _figures(res: dict[str, Any]) -> list[dict[str, Any]]:
    """The figures in the common form of `make bench` (bench/common.py)."""
    from bench.common import figure

    st = res["settings"]
    full, off = st["wal_full"], st["wal_off"]
    figs = [
        figure(
            "storage: event append, WAL+FULL",
            full["median_ms"],
            "ms",
            baseline=off["median_ms"],
            baseline_name="WAL+OFF, no fsync",
            target=f"median < {TARGET_MS:.0f} ms",
            ok=full["median_ms"] < TARGET_MS,
        ),
        figure(
            "storage: event append, WAL+NORMAL",
            st["wal_normal"]["median_ms"],
            "ms",
            baseline=off["median_ms"],
            baseline_name="WAL+OFF, no fsync",
        ),
        figure(
            "storage: event append, DELETE+FULL",
            st["delete_full"]["median_ms"],
            "ms",
            baseline=full["median_ms"],
            baseline_name="WAL+FULL, used",
        ),
    ]
    if full["device_bytes_per_event"] is not None:
        figs.append(
            figure(
                "storage: KiB to disk per event",
                full["device_bytes_per_event"] / 1024,
                "KiB",
                baseline=(st["delete_full"]["device_bytes_per_event"] or 0) / 1024 or None,
                baseline_name="DELETE+FULL",
            )
        )
    return figs


def run(quick: bool = False, directory: str | None = None) -> dict[str, Any]:
    res = measure(quick, directory)
    res["figures"] = _figures(res)
    print(
        f"storage: one event appended + committed, {res['events_per_setting']} per setting, "
        f"in {res['directory']} (median, ratio to WAL+OFF in the same run)"
    )
    for name, s in res["settings"].items():
        dev = s["device_bytes_per_event"]
        dev_s = f"{dev / 1024:6.1f} KiB to disk/event" if dev is not None else "disk bytes n/a"
        mark = "  <- chosen" if name == res["chosen"] else ""
        print(
            f"  {s['journal_mode']:<6} {s['synchronous']:<6} {s['median_ms']:7.3f} ms"
            f"  (p90 {s['p90_ms']:7.3f})  x{s['ratio_to_baseline']:6.1f}  {dev_s}{mark}"
        )
    return res


if __name__ == "__main__":
    args = sys.argv[1:]
    where = args[args.index("--dir") + 1] if "--dir" in args else None  # e.g. the SD card
    if where is not None:
        os.makedirs(where, exist_ok=True)
    run(quick="--quick" in args, directory=where)
