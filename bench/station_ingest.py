"""Station ingest: QoS 1 events from 100 simulated sites through a local Mosquitto into the
monitoring station's database (the station's MQTT loop, schema validation, de-duplication,
incidents, batched writes), into SQLite and into PostgreSQL, beside a baseline measured in the
same run: the terminal console (`officeguard monitor`'s subscriber and in-memory board), which
receives the same load and keeps nothing.

    python -m bench.station_ingest [--quick]

Every role runs in its own process: the publishers are bench/console_ingest.py's (raw sockets,
window 1,000); the station side counts from its first message to the commit of its last one.
Figures: events/s stored, events lost (sent minus distinct rows), and for each database its
ratio to the console. Target (issue 19): at least 5,000 events/s with nothing lost.
PostgreSQL is the one on 127.0.0.1:5432 ($OFFICEGUARD_TEST_PG); a database of its own is
created and dropped.
"""

from __future__ import annotations

import json
import os
import resource
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from bench import console_ingest as ci
from bench.common import figure, print_figures

TARGET = 5000.0
PG_ADMIN = os.environ.get("OFFICEGUARD_TEST_PG", "postgresql://postgres@127.0.0.1:5432/postgres")


def child_sub(port: int, db: str, expect: int, idle: float) -> None:
    from controller.config import Mqtt
    from controller.console.net import BrokerSettings, MonitorClient
    from controller.station.ingest import Ingest
    from controller.station.service import FLUSH_S
    from controller.station.store import Store

    store = Store.open(db)
    ing = Ingest(store, ci.PREFIX)
    settings = BrokerSettings.from_config(Mqtt.model_validate({"url": f"mqtt://127.0.0.1:{port}"}))
    first: list[float] = []
    last_msg = [time.perf_counter()]

    def on_message(topic: str, payload: bytes) -> None:
        now = time.perf_counter()
        if not first:
            first.append(now)
        last_msg[0] = now
        ing.accept(topic, payload, time.time())

    done = threading.Event()
    end: list[float] = []
    writer_stop = threading.Event()

    def watch() -> None:  # the end: every event stored, or nothing more comes
        while not done.is_set():
            time.sleep(0.01)
            if ing.stored_events >= expect or (first and time.perf_counter() - last_msg[0] > idle):
                end.append(time.perf_counter())
                done.set()

    client = MonitorClient(settings, ci.PREFIX, on_message, share="bench")
    client.connect()
    while not client.subscribed:
        client.step(0.1)
    print("ready", flush=True)
    # the station's own writer (Ingest.run, as `officeguard station serve` runs it)
    writer = threading.Thread(target=ing.run, args=(writer_stop, FLUSH_S), daemon=True)
    watcher = threading.Thread(target=watch, daemon=True)
    writer.start()
    watcher.start()
    client.run(until=done.is_set)
    watcher.join()
    writer_stop.set()
    writer.join()
    client.disconnect()
    usage = resource.getrusage(resource.RUSAGE_SELF)
    distinct = store.count_events()
    elapsed = (end[0] - first[0]) if first else 0.0
    print(
        json.dumps(
            {
                "received": ing.messages,
                "distinct": distinct,
                "rate": distinct / elapsed if elapsed > 0 else 0.0,
                "cpu_s": usage.ru_utime + usage.ru_stime,
                "quarantined": ing.quarantined,
            }
        ),
        flush=True,
    )
    store.close()


def _spawn_self(*args: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "bench.station_ingest", *args],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
        cwd=ci.ROOT,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )


def measure(db: str, per_site: int, idle: float = 5.0) -> dict[str, Any]:
    broker = ci.Mosquitto("max_queued_messages 0\n")
    total = per_site * ci.SITES
    procs: list[subprocess.Popen[str]] = []
    try:
        sub = _spawn_self("--child-sub", str(broker.port), db, str(total), str(idle))
        procs.append(sub)
        ci._expect_line(sub, "ready")
        per_proc = ci.SITES // ci.PUB_PROCS
        pubs = [
            ci._spawn("--child-pub", str(broker.port), str(i * per_proc), str(per_proc), str(per_site), "raw")
            for i in range(ci.PUB_PROCS)
        ]
        procs.extend(pubs)
        for p in pubs:
            ci._expect_line(p, "ready")
        for p in pubs:
            assert p.stdin is not None
            p.stdin.write("go\n")
            p.stdin.flush()
        for p in pubs:
            ci._expect_line(p, "done")
        assert sub.stdout is not None
        res: dict[str, Any] = json.loads(sub.stdout.readline())
        res.update(sent=total, lost=total - res["distinct"])
        return res
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
            p.wait()
        broker.stop()


@contextmanager
def pg_database() -> Iterator[str]:
    """A PostgreSQL database of its own on the local server, dropped afterwards; its URL."""
    import psycopg

    name = f"og_station_bench_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(PG_ADMIN, autocommit=True) as admin:
        admin.execute(f'CREATE DATABASE "{name}"')
    try:
        yield PG_ADMIN.rsplit("/", 1)[0] + "/" + name
    finally:
        with psycopg.connect(PG_ADMIN, autocommit=True) as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def run(quick: bool = False) -> dict[str, Any]:
    per_site = 50 if quick else 300
    print(f"\n== station_ingest: {ci.SITES} sites x {per_site} events, QoS 1")
    console = ci.measure("monitor", per_site)
    print(f"  baseline, the terminal console (in memory): {console['rate']:.0f} events/s")
    results: dict[str, dict[str, Any]] = {}
    with tempfile.TemporaryDirectory(prefix="og-bench-station-") as tmp:
        results["sqlite"] = measure(f"sqlite:///{Path(tmp) / 'station.db'}", per_site)
    with pg_database() as url:
        results["postgresql"] = measure(url, per_site)
    figures = []
    for db, r in results.items():
        print(f"  {db}: {r['rate']:.0f} events/s stored, {r['lost']} lost, {r['quarantined']} quarantined, CPU {r['cpu_s']:.1f} s")
        figures.append(
            figure(
                f"station ingest into {db}",
                r["rate"],
                "events/s",
                baseline=console["rate"],
                baseline_name="terminal console, in memory",
                target=f">= {TARGET:.0f}/s, none lost",
                ok=r["rate"] >= TARGET and r["lost"] == 0,
            )
        )
    print_figures("station_ingest", figures)
    return {"name": "station_ingest", "figures": figures, "runs": results, "console": console}


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv and argv[0] == "--child-sub":
        child_sub(int(argv[1]), argv[2], int(argv[3]), float(argv[4]))
        return 0
    res = run(quick="--quick" in argv)
    return 0 if all(f["pass"] for f in res["figures"]) else 1


if __name__ == "__main__":
    raise SystemExit(main())
