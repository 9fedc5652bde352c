"""Outbox drain after an outage: 50,000 events queued in the journal (real SQLite file, WAL,
synchronous=FULL) while the broker was away; the broker comes back and the daemon's Outbox and
MqttLink deliver them all, QoS 1, in seq order, marking each delivered on its PUBACK.
Target: >= 5,000 events/s, counted from the connection to the last event received by a
subscriber (and to the last PUBACK recorded in the journal).

Baseline: a bare paho client publishing as many QoS 1 messages of the same size, pipelined, to
the same kind of subscriber (the transport's ceiling on this machine).
"""

from __future__ import annotations

import asyncio
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from bench.common import (
    EVENT_TOPIC,
    BenchError,
    Subscriber,
    broker,
    figure,
    paho_pipeline,
    print_figures,
    workspace,
)

TARGET_RATE = 5000.0
T0 = datetime(2026, 2, 17, 18, 20, tzinfo=UTC)


def queue_events(path: Path, n: int) -> int:
    """A journal holding n undelivered events like a real outage leaves (sensor activity,
    alarms, arming); returns the average payload size."""
    from controller.events import EventDraft
    from controller.journal import Journal

    j = Journal(path, "bench-site", ZoneInfo("Asia/Ho_Chi_Minh"))
    kinds = [("tamper", "E137"), ("alarm", "E134"), ("arm", "R401"), ("system", None)]
    drafts = []
    for i in range(n):
        kind, cid = kinds[i % len(kinds)]
        drafts.append(
            EventDraft(
                kind=kind,
                ts=T0 + timedelta(milliseconds=50 * i),
                cid=cid,
                zone="leadership",
                sensor="door.director" if kind != "system" else None,
                text=f"Cửa phòng Giám đốc: sự kiện {i}",
                detail={"n": i},
            )
        )
    for k in range(0, n, 10_000):
        j.append(drafts[k : k + 10_000])
    size = sum(len(e.to_json().encode()) for e in j.pending(limit=100)) // 100
    j.close()
    return size


async def _drain(path: Path, url: str, port: int, n: int) -> dict[str, Any]:
    from controller.config import Mqtt
    from controller.journal import Journal
    from controller.reporting.mqtt import MqttLink
    from controller.reporting.outbox import Outbox

    j = Journal(path, "bench-site", ZoneInfo("Asia/Ho_Chi_Minh"))
    assert j.outbox_depth() == n
    sub = await asyncio.to_thread(Subscriber, port, EVENT_TOPIC, expect=n)
    link = MqttLink(Mqtt(url=url), "bench-site", reconnect_min=0.05, reconnect_max=0.5)
    ob = Outbox(j, link, EVENT_TOPIC)
    cpu0 = time.process_time()
    t0 = time.perf_counter()
    try:
        link.start()
        end = time.monotonic() + 120
        while ob.depth() > 0:
            if time.monotonic() > end:
                raise BenchError(f"the outbox did not drain: {ob.depth()} left")
            await asyncio.sleep(0.01)
        t_acked = time.perf_counter() - t0
        cpu = time.process_time() - cpu0
        done = await asyncio.to_thread(sub.wait_done, 60)
        res = await asyncio.to_thread(sub.finish)
    finally:
        sub.close()
        await link.close()
    ob.close()
    # counted on the logbook itself, not from the journal's running count
    unsent = int(
        j.db.execute(
            "SELECT COUNT(*) FROM event_delivery WHERE channel='mqtt' AND state=0"
        ).fetchone()[0]
    )
    j.close()
    t_recv = float(res["last"]) - t0
    return {
        "queued": n,
        "received_unique": int(res["unique"]),
        "received": int(res["received"]),
        "all_received": done,
        "unsent_left": unsent,
        "acked_s": t_acked,
        "received_s": t_recv,
        "rate": n / max(t_recv, t_acked),
        "failures": ob.failures,
        "cpu_us_per_event": 1e6 * cpu / n,
    }


def run(quick: bool = False) -> dict[str, Any]:
    n = 10_000 if quick else 50_000
    with workspace("drain") as w, broker(w) as b:
        path = w / "journal.db"
        size = queue_events(path, n)
        r = asyncio.run(_drain(path, b.url, b.port, n))
        base = paho_pipeline(b.port, n, size)
    complete = r["received_unique"] == n and r["unsent_left"] == 0
    figures = [
        figure(
            f"drain: {n} queued -> events/s",
            r["rate"],
            "ev/s",
            baseline=base,
            baseline_name="bare paho QoS 1 pipeline",
            target=f">= {TARGET_RATE:,.0f} ev/s",
            ok=complete and r["rate"] >= TARGET_RATE,
        ),
        figure("drain: events delivered", r["received_unique"], "", ok=complete),
        figure("drain: daemon CPU per event", r["cpu_us_per_event"], "us"),
    ]
    print_figures("outbox drain after an outage", figures)
    print(
        f"  {size} bytes per event; last PUBACK recorded after {r['acked_s']:.2f} s, last event"
        f" received after {r['received_s']:.2f} s; {r['received'] - r['received_unique']}"
        " duplicate(s)"
    )
    return {"name": "drain", "quick": quick, "figures": figures, "detail": r}


if __name__ == "__main__":
    run()
