"""Station queue page: the web console's queue (`GET /`, logged in, real HTTP on loopback) with
10,000 open incidents in the database, beside a baseline measured in the same run: the same page
of another station on an empty database, the two asked in turn, request by request (so the
machine's other work weighs on both alike). Also page 100 of 200 (`/?page=100`), reported.
SQLite and PostgreSQL. Target (issue 19): under 2x the empty queue's time, at the median.

    python -m bench.station_queue [--quick]
"""

from __future__ import annotations

import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import Any

from bench.common import figure, print_figures
from bench.station_ingest import pg_database

INCIDENTS = 10_000
PW = "bench operator password"


def _alarm(k: int) -> dict[str, Any]:
    """Mostly burglaries (priority 2), some fires (1) and tampers (3), over 100 sites."""
    kind, cid = ("tamper", "E144") if k % 7 == 0 else ("alarm", "E110" if k % 20 == 0 else "E130")
    return {
        "id": uuid.uuid4().hex, "seq": k + 1, "site": f"site-{k % 100:03d}",
        "ts": "2026-02-17T01:25:00+07:00", "kind": kind, "cid": cid,
        "zone": f"zone-{k}", "text": f"Alarm in zone {k}", "detail": {},
    }  # fmt: skip


@contextmanager
def _station(db: str, incidents: int) -> Iterator[Any]:
    """A station's console on its own database holding `incidents` open incidents; a logged-in
    client for it."""
    from controller.station import auth
    from controller.station.store import Store
    from controller.station.web import Station
    from tests.station.webclient import Browser, Server

    store = Store.open(db)
    try:
        auth.set_operator(store, "bench", "operator", PW)
        now = time.time()
        for i in range(0, incidents, 2000):
            store.ingest(events=[(f"site-{k % 100:03d}", _alarm(k), now) for k in range(i, i + 2000)])
        assert store.count_open() == incidents
        if store.pg:
            # what autovacuum does after such a load (its insert threshold): statistics, and the
            # visibility map for index-only scans
            with store.engine.connect() as conn:
                conn.execution_options(isolation_level="AUTOCOMMIT").exec_driver_sql(
                    "VACUUM ANALYZE"
                )
        if incidents:
            plan = store.explain(store.queue_page_query(100, 50)).replace("\n", " / ")
            print(f"  {store.engine.dialect.name} plan of page 100's ids: {plan}")
        with Server(Station(store, None, secret_key="b" * 40, language="en")) as srv:
            b = Browser(srv.url)
            b.login("bench", PW)
            yield b
    finally:
        store.close()


def _interleaved(clients: dict[str, tuple[Any, str]], n: int) -> dict[str, float]:
    """Median time of each (client, path), asked in turn n times after a warm-up."""
    times: dict[str, list[float]] = {k: [] for k in clients}
    for i in range(n + 5):
        for k, (b, path) in clients.items():
            t0 = time.perf_counter()
            page = b.get(path)
            dt = time.perf_counter() - t0
            assert page.status == 200, page.status
            if i >= 5:
                times[k].append(dt)
    return {k: statistics.median(v) for k, v in times.items()}


def measure(empty_db: str, full_db: str, repeat: int) -> dict[str, float]:
    with ExitStack() as stack:
        empty = stack.enter_context(_station(empty_db, 0))
        full = stack.enter_context(_station(full_db, INCIDENTS))
        p1 = sum(1 for k in range(INCIDENTS) if k % 7 and k % 20 == 0)
        assert f"P1 life: {p1}" in full.get("/").body
        return _interleaved(
            {"empty": (empty, "/"), "full": (full, "/"), "deep": (full, "/?page=100")}, repeat
        )


def run(quick: bool = False) -> dict[str, Any]:
    repeat = 50 if quick else 300
    print(f"\n== station_queue: GET / with {INCIDENTS} open incidents vs an empty queue")
    res: dict[str, dict[str, float]] = {}
    with tempfile.TemporaryDirectory(prefix="og-bench-queue-") as tmp:
        res["sqlite"] = measure(
            f"sqlite:///{Path(tmp) / 'empty.db'}", f"sqlite:///{Path(tmp) / 'full.db'}", repeat
        )
    with pg_database() as empty_url, pg_database() as full_url:
        res["postgresql"] = measure(empty_url, full_url, repeat)
    figures = []
    for db, r in res.items():
        figures.append(
            figure(
                f"queue page, {INCIDENTS} open ({db})",
                r["full"] * 1000,
                "ms",
                baseline=r["empty"] * 1000,
                baseline_name="empty queue",
                target="< 2x empty",
                ok=r["full"] < 2 * r["empty"],
            )
        )
        figures.append(
            figure(
                f"queue page 100 of 200 ({db})",
                r["deep"] * 1000,
                "ms",
                baseline=r["empty"] * 1000,
                baseline_name="empty queue",
                target="reported",
                ok=None,
            )
        )
    print_figures("station_queue", figures)
    return {"name": "station_queue", "figures": figures}


if __name__ == "__main__":
    out = run(quick="--quick" in sys.argv[1:])
    raise SystemExit(0 if all(f["pass"] is not False for f in out["figures"]) else 1)
