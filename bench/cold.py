"""The alarm path's own CPU work (engine, journal append, commit without its fsync) run back to
back with warm caches, and run after the process has slept as it does between two alarms;
beside the `latency` baseline's own commit (one row, no fsync) measured the same two ways.

It explains the `latency` ratio on a given machine: a Python path touches far more code and
data than a one-row SQLite commit, so whatever the machine does to a process's caches while it
sleeps costs the daemon more (docs/capacity.md).
"""

from __future__ import annotations

import sqlite3
import statistics
import time
from datetime import UTC, datetime, timedelta
from typing import Any

from bench.common import figure, print_figures, workspace
from bench.latency import latency_config

IDLE_S = 0.01  # between two samples, as the latency bench's alarms are apart (or more)
BLOCK, SETTLE = 20, 3


def _ms(xs: list[float]) -> float:
    return 1000 * statistics.median(xs)


def run(quick: bool = False) -> dict[str, Any]:
    from controller.config import load_config
    from controller.engine import Arm, Disarm, Emit, Engine, SensorChange
    from controller.journal import Journal

    samples = 100 if quick else 300
    with workspace("cold") as w:
        cfg = load_config(latency_config(w / "cold.yaml", "mqtt://127.0.0.1:1883")).config
        engine = Engine(cfg)
        # synchronous=NORMAL: the daemon's own commit (its fsync runs on another thread, unmeasured)
        journal = Journal(w / "j.db", cfg.site.id, cfg.site.tz, synchronous="NORMAL")
        base = sqlite3.connect(str(w / "b.db"), isolation_level=None)
        base.execute("PRAGMA journal_mode=WAL")
        base.execute("PRAGMA synchronous=NORMAL")  # the commit without its fsync, as the path's
        base.execute("CREATE TABLE events(seq INTEGER PRIMARY KEY, id TEXT, body TEXT)")
        body = "x" * 400
        t = datetime(2026, 3, 4, 12, tzinfo=UTC)
        times: dict[str, list[float]] = {"hot": [], "idle": [], "base hot": [], "base idle": []}
        try:
            # alternating blocks, so that a warm sample never follows a sleep; the first few of
            # each block settle in and are not counted
            for block in range(2 * (samples // BLOCK + 1)):
                idle = block % 2 == 1
                for i in range(BLOCK + SETTLE):
                    engine.handle(Arm(("hall",), "away", user="guard", source="cli"), t)
                    t += timedelta(minutes=2)
                    engine.advance(t)
                    if idle:
                        time.sleep(IDLE_S)
                    t0 = time.perf_counter()
                    effects = engine.handle(SensorChange("door.hall", True), t)
                    drafts = [e.event for e in effects if isinstance(e, Emit)]
                    journal.append(drafts, state={"engine": engine.snapshot()})  # commits
                    t1 = time.perf_counter()
                    if idle:
                        time.sleep(IDLE_S)
                    t2 = time.perf_counter()
                    base.execute("BEGIN IMMEDIATE")
                    base.execute(
                        "INSERT INTO events(id, body) VALUES(?, ?)", (f"{block}.{i}", body)
                    )
                    base.execute("COMMIT")
                    t3 = time.perf_counter()
                    t += timedelta(seconds=1)
                    engine.handle(Disarm(("hall",), user="guard", source="cli"), t)
                    engine.handle(SensorChange("door.hall", False), t)
                    if i >= SETTLE and block >= 2:  # the first two blocks warm up
                        key = "idle" if idle else "hot"
                        times[key].append(t1 - t0)
                        times[f"base {key}"].append(t3 - t2)
        finally:
            journal.close()
            base.close()
    figures = [
        figure("alarm path CPU work, warm", _ms(times["hot"]), "ms",
               baseline=_ms(times["base hot"]), baseline_name="one-row commit, warm"),
        figure(f"alarm path CPU work, after {IDLE_S * 1000:.0f} ms idle", _ms(times["idle"]), "ms",
               baseline=_ms(times["base idle"]), baseline_name="one-row commit, after idle"),
        figure("alarm path: idle / warm", _ms(times["idle"]), "ms",
               baseline=_ms(times["hot"]), baseline_name="the same work warm"),
    ]  # fmt: skip
    print_figures(f"cold (alarm path CPU, {samples} samples each)", figures)
    return {"name": "cold", "quick": quick, "figures": figures, "detail": {"samples": samples}}


if __name__ == "__main__":
    run()
