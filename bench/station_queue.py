"""Station queue page: the web console's queue (`GET /`, logged in, real HTTP on loopback) with
10,000 open incidents in the database, beside a baseline measured in the same run: the same page
with an empty queue. SQLite and PostgreSQL. Target (issue 19): under 2x the empty queue's time.

    python -m bench.station_queue [--quick]
"""

from __future__ import annotations

import statistics
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

from bench.common import figure, print_figures
from bench.station_ingest import pg_database

INCIDENTS = 10_000
PW = "bench operator password"


def _alarm(k: int) -> dict[str, Any]:
    return {
        "id": uuid.uuid4().hex, "seq": k + 1, "site": f"site-{k % 100:03d}",
        "ts": "2026-02-17T01:25:00+07:00", "kind": "alarm", "cid": "E130",
        "zone": f"zone-{k}", "text": f"Alarm in zone {k}", "detail": {},
    }  # fmt: skip


def _time_page(url: str, n: int) -> float:
    from tests.station.webclient import Browser

    b = Browser(url)
    b.login("bench", PW)
    b.get("/")  # warm
    times = []
    for _ in range(n):
        t0 = time.perf_counter()
        page = b.get("/")
        times.append(time.perf_counter() - t0)
        assert page.status == 200
    return statistics.median(times)


def measure(db: str, repeat: int) -> tuple[float, float]:
    from controller.station import auth
    from controller.station.store import Store
    from controller.station.web import Station
    from tests.station.webclient import Server

    store = Store.open(db)
    auth.set_operator(store, "bench", "operator", PW)
    try:
        with Server(Station(store, None, secret_key="b" * 40, language="en")) as srv:
            empty = _time_page(srv.url, repeat)
            now = time.time()
            for i in range(0, INCIDENTS, 2000):
                store.ingest(events=[(f"site-{k % 100:03d}", _alarm(k), now) for k in range(i, i + 2000)])
            assert store.count_open() == INCIDENTS
            full = _time_page(srv.url, repeat)
    finally:
        store.close()
    return empty, full


def run(quick: bool = False) -> dict[str, Any]:
    repeat = 5 if quick else 20
    print(f"\n== station_queue: GET / with {INCIDENTS} open incidents vs an empty queue")
    res: dict[str, tuple[float, float]] = {}
    with tempfile.TemporaryDirectory(prefix="og-bench-queue-") as tmp:
        res["sqlite"] = measure(f"sqlite:///{Path(tmp) / 'station.db'}", repeat)
    with pg_database() as url:
        res["postgresql"] = measure(url, repeat)
    figures = [
        figure(
            f"queue page, {INCIDENTS} open ({db})",
            full * 1000,
            "ms",
            baseline=empty * 1000,
            baseline_name="empty queue",
            target="< 2x empty",
            ok=full < 2 * empty,
        )
        for db, (empty, full) in res.items()
    ]
    print_figures("station_queue", figures)
    return {"name": "station_queue", "figures": figures}


if __name__ == "__main__":
    out = run(quick="--quick" in sys.argv[1:])
    raise SystemExit(0 if all(f["pass"] for f in out["figures"]) else 1)
