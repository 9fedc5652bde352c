"""Station site board: the read of every site's board states (`board.latest_states`, what
`/sites` reads) on a site_log of a million rows (100 sites, mostly heartbeats, 700 board
topics), its first read and later ones, after migrating a log made at revision 0005 (the fill
of site_state timed); and what keeping site_state costs `Store.ingest` for batches of 5 and of
2,000 retained-state messages. SQLite and PostgreSQL. Reported, no target; docs/station.md
(The site board) has the figures beside the earlier whole-log reader's.

    python -m bench.station_board [--quick]     # --quick: 100,000 rows
"""

from __future__ import annotations

import json
import random
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from bench.station_ingest import pg_database
from controller.station import board
from controller.station import schema as t
from controller.station.store import Store, engine_for, migrate

SITES = 100
TOPICS = ["heartbeat"] * 90 + [f"zone/z{i}/state" for i in range(4)] + [
    "trouble/state", "patrol/night", "drone/t1", "status", "sensor/door/state",
    "detector/rf/state",
]  # fmt: skip


def _ms(f: Any) -> float:
    t0 = time.perf_counter()
    f()
    return (time.perf_counter() - t0) * 1000


def one(url: str, rows: int) -> dict[str, Any]:
    """A log of `rows` rows at revision 0005, migrated to head, then the reads and writes."""
    eng = engine_for(url)
    migrate(eng, "0005")
    rnd = random.Random(1)
    log = [
        {
            "n": n, "site": f"site-{n % SITES:03d}", "topic": rnd.choice(TOPICS),
            "received_at": 1.7e9 + n, "body": json.dumps({"state": "armed_away", "n": n}),
        }
        for n in range(1, rows + 1)
    ]  # fmt: skip
    with eng.begin() as c:
        for i in range(0, rows, 50_000):
            c.execute(t.site_log.insert(), log[i : i + 50_000])
        if eng.dialect.name == "postgresql":
            c.exec_driver_sql("SELECT setval('site_log_n_seq', (SELECT max(n) FROM site_log))")
    if eng.dialect.name == "postgresql":
        with eng.connect().execution_options(isolation_level="AUTOCOMMIT") as c:
            c.exec_driver_sql("VACUUM ANALYZE")
    out: dict[str, Any] = {"migrate_ms": _ms(lambda: migrate(eng))}
    store = Store(eng)
    out["first_read_ms"] = _ms(lambda: board.latest_states(store))
    out["later_read_ms"] = [_ms(lambda: board.latest_states(store)) for _ in range(5)]

    def batches(size: int, k: int) -> list[float]:
        times = []
        for _ in range(k):
            batch = [
                (f"site-{rnd.randrange(SITES):03d}", rnd.choice(TOPICS), time.time(), "{}")
                for _ in range(size)
            ]
            times.append(_ms(lambda: store.ingest(states=batch)))  # noqa: B023 - called at once
        return sorted(times)

    big, small = batches(2000, 20), batches(5, 200)
    out["ingest_2000_median_ms"] = big[len(big) // 2]
    out["ingest_5_median_ms"] = small[len(small) // 2]
    out["read_after_ms"] = _ms(lambda: board.latest_states(store))
    store.close()
    return out


def main(argv: list[str]) -> None:
    rows = 100_000 if "--quick" in argv else 1_000_000
    with tempfile.TemporaryDirectory() as d:
        res = {"sqlite": one(f"sqlite:///{Path(d) / 'station.db'}", rows)}
    with pg_database() as url:
        res["postgresql"] = one(url, rows)
    print(json.dumps(res, indent=2))


if __name__ == "__main__":
    main(sys.argv[1:])
