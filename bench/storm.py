"""Storm: 10,000 input changes on simulated pins as fast as they can be made, through the real
daemon (debounce, engine, journal, outbox, MQTT link) to a subscriber behind a local Mosquitto.
Every resulting event must be journaled and delivered (counted by id at the subscriber), none
lost, at >= 5,000 events/s end to end.

The site: tamper loops in a disarmed zone, which report every change (E137 open, R137 closed),
so each input change is one event. A Raspberry Pi has 28 GPIOs, so one site has at most ~26
sensors: the storm runs on 25 sensors (pins 2-26, siren on 27) with 400 changes each; the
changes are made in rounds (every sensor flips, the virtual clock moves past the debounce time,
every sensor flips back...), which is the fastest the debounce lets one pin change.

Baseline: a bare paho client publishing the same number of QoS 1 messages of the same size to
the same kind of subscriber, pipelined (the transport's ceiling on this machine).
"""

from __future__ import annotations

import asyncio
import time
from datetime import timedelta
from pathlib import Path
from typing import Any

from bench.common import (
    EVENT_TOPIC,
    BenchError,
    InProcessSite,
    Subscriber,
    broker,
    figure,
    paho_pipeline,
    print_figures,
    site_config,
    workspace,
)

# issue 15: three times the physical ceiling of one Pi (~830 input changes/s)
TARGET_RATE = 2500.0
N_SENSORS = 25


def storm_config(path: Path, url: str) -> Path:
    sensors = [
        {"id": f"tamper.{i:02d}", "name": f"Tamper loop {i}", "type": "tamper", "zone": "vault",
         "pin": 2 + i}
        for i in range(N_SENSORS)
    ]
    return site_config(
        path,
        url,
        zones=[{"id": "vault", "name": "Vault", "entry_delay": "0s", "exit_delay": "0s"}],
        sensors=sensors,
        sirens=[{"id": "siren.hall", "name": "Siren", "pin": 27, "zones": ["vault"]}],
    )


async def _storm(site: InProcessSite, port: int, changes: int) -> dict[str, Any]:
    d = site.daemon
    assert d.journal is not None
    sensors = [s.id for s in d.cfg.sensors]
    step = d.cfg.hardware.debounce + timedelta(milliseconds=1)
    if not await site.drained(10):
        raise BenchError("the start-up events were not delivered")
    seq0 = d.journal.last_seq()
    sub = await asyncio.to_thread(Subscriber, port, EVENT_TOPIC, expect=changes, times=True)
    try:
        rounds = changes // len(sensors)
        active = False
        cpu0 = time.process_time()
        t0 = time.perf_counter()
        for _ in range(rounds):
            active = not active
            for s in sensors:
                site.sim.set(s, active)  # the pin changes; gpiozero hands the edge to the loop
            await asyncio.sleep(0)  # the loop takes the edges: engine, journal, outbox
            site.clock.advance(step)  # the debounce time passes on the daemon's clock
        t_inputs = time.perf_counter() - t0
        made = rounds * len(sensors)
        done = await asyncio.to_thread(sub.wait_done, 120)
        drained = await site.drained(30)
        cpu = time.process_time() - cpu0
        res = await asyncio.to_thread(sub.finish)
    finally:
        sub.close()
    seq1 = d.journal.last_seq()
    journaled = {
        str(r[0])
        for r in d.journal.db.execute("SELECT id FROM events WHERE seq>? AND seq<=?", (seq0, seq1))
    }
    got = set(res["times"])
    lost = journaled - got
    elapsed = float(res["last"]) - t0
    return {
        "changes": made,
        "events": len(journaled),
        "delivered": len(journaled & got),
        "lost": len(lost),
        "all_received": done and drained,
        "input_s": t_inputs,
        "elapsed_s": elapsed,
        "rate": len(journaled & got) / elapsed if elapsed > 0 else 0.0,
        "integrity_ok": d.journal.integrity_ok(),
        "cpu_us_per_event": 1e6 * cpu / max(1, len(journaled)),
    }


def run(quick: bool = False) -> dict[str, Any]:
    changes = 2500 if quick else 10_000
    with workspace("storm") as w, broker(w) as b:
        cfg = storm_config(w / "storm.yaml", b.url)

        async def main() -> dict[str, Any]:
            site = InProcessSite(cfg, w / "state")
            await site.start()
            try:
                return await _storm(site, b.port, changes)
            finally:
                await site.stop()

        r = asyncio.run(main())
        base = paho_pipeline(b.port, r["events"], 330)
    ok = r["lost"] == 0 and r["events"] == r["changes"] and r["rate"] >= TARGET_RATE
    figures = [
        figure(
            f"storm: {r['changes']} changes -> events/s",
            r["rate"],
            "ev/s",
            baseline=base,
            baseline_name="bare paho QoS 1 pipeline",
            target=f">= {TARGET_RATE:,.0f} ev/s, none lost",
            ok=ok,
        ),
        figure("storm: events journaled", r["events"], "", ok=r["events"] == r["changes"]),
        figure("storm: events lost", r["lost"], "", ok=r["lost"] == 0),
        figure("storm: daemon CPU per event", r["cpu_us_per_event"], "us"),
    ]
    print_figures("storm (input changes -> journal -> broker -> subscriber)", figures)
    print(
        f"  inputs made in {r['input_s']:.2f} s; last event received after {r['elapsed_s']:.2f} s;"
        f" journal integrity {'ok' if r['integrity_ok'] else 'BROKEN'}; CPU-bound ceiling"
        f" {1e6 / r['cpu_us_per_event']:,.0f} events/s per core of this machine"
    )
    return {"name": "storm", "quick": quick, "figures": figures, "detail": r}


if __name__ == "__main__":
    run()
