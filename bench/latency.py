"""Latency of the alarm path, through the real daemon on simulated pins (in this process, on a
virtual clock the bench moves itself), sample by sample:

1. sensor edge -> siren output: an instant door in an armed zone opens (the pin changes on a
   separate thread, as lgpio's callback thread would) until the siren's pin is driven on: debounce,
   hand-over to the loop, engine, output. Baseline: a bare gpiozero DigitalInputDevice whose
   when_activated callback switches a DigitalOutputDevice on, on the same mock pins.
2. sensor edge -> event received by a subscriber through a local Mosquitto (journal write with
   fsync, outbox, MQTT link, broker, subscriber in another process). Baseline: a bare paho
   publish -> receive of a payload of the same size plus one SQLite commit with the same
   durability (WAL, synchronous=FULL) before the publish. Target: <= 2x the baseline at p50.
"""

from __future__ import annotations

import asyncio
import json
import os
import sqlite3
import threading
import time
from datetime import timedelta
from pathlib import Path
from typing import Any

from bench.common import (
    BenchError,
    InProcessSite,
    Subscriber,
    broker,
    figure,
    percentile,
    print_figures,
    site_config,
    workspace,
)

SIREN_PIN = 5
DOOR_PIN = 17
TARGET_EVENT_RATIO = 2.0
# how long the door-opening thread keeps the bench's own code off the loop after the siren
QUIET_AFTER_EDGE = 0.01


def latency_config(path: Path, url: str, mqtt: dict[str, Any] | None = None) -> Path:
    return site_config(
        path,
        url,
        mqtt=mqtt,
        zones=[{"id": "hall", "name": "Hall", "entry_delay": "0s", "exit_delay": "0s"}],
        sensors=[
            {"id": "door.hall", "name": "Hall door", "type": "door", "zone": "hall",
             "pin": DOOR_PIN, "response": "instant"}
        ],
        sirens=[{"id": "siren.hall", "name": "Hall siren", "pin": SIREN_PIN, "zones": ["hall"]}],
    )


# ------------------------------------------------------------------------- baselines


class BareGpiozero:
    """Edge -> output pin on, with nothing between but a gpiozero callback."""

    def __init__(self) -> None:
        from gpiozero import DigitalInputDevice, DigitalOutputDevice

        from hardware import pin_factory_for

        self.factory = pin_factory_for("simulated")
        self.inp = DigitalInputDevice(DOOR_PIN, pull_up=True, pin_factory=self.factory)
        self.out = DigitalOutputDevice(SIREN_PIN, pin_factory=self.factory)
        self.in_pin = self.factory.pin(DOOR_PIN)
        self.on_at: list[float] = []
        self.factory.pin(SIREN_PIN).listeners.append(
            lambda p: self.on_at.append(time.perf_counter()) if p.state else None
        )
        self.inp.when_activated = self.out.on

    def sample(self) -> float:
        self.on_at.clear()
        t0 = time.perf_counter()
        self.in_pin.sim_drive(False)  # the contact closes: active (pull-up)
        if not self.on_at:
            raise BenchError("the bare gpiozero callback did not switch the output")
        self.out.off()
        self.in_pin.sim_drive(None)
        return self.on_at[0] - t0

    def close(self) -> None:
        self.inp.close()
        self.out.close()
        self.factory.close()


class BarePublishCommit:
    """One SQLite commit (WAL, synchronous=FULL) then a bare paho QoS 1 publish; the time of
    arrival is taken by the same subscriber process as the daemon's events."""

    TOPIC = "bench/latency-baseline"

    def __init__(self, port: int, size: int, dbdir: Path) -> None:
        import paho.mqtt.client as paho
        from paho.mqtt.enums import CallbackAPIVersion

        self.db = sqlite3.connect(
            str(dbdir / "baseline.db"), isolation_level=None, check_same_thread=False
        )
        self.db.execute("PRAGMA journal_mode=WAL")
        self.db.execute("PRAGMA synchronous=FULL")
        self.db.execute("CREATE TABLE IF NOT EXISTS events(seq INTEGER PRIMARY KEY, id TEXT, body TEXT)")
        self.acked = threading.Event()
        self.connected = threading.Event()
        c = paho.Client(CallbackAPIVersion.VERSION2, client_id=f"bench-lat-{os.getpid()}")
        c.on_publish = lambda *a: self.acked.set()
        c.on_connect = lambda *a: self.connected.set()
        c.connect("127.0.0.1", port, keepalive=30)
        c.loop_start()
        self.client = c
        self.filler = "x" * max(0, size - 40)
        self.n = 0
        if not self.connected.wait(10):
            raise BenchError("the baseline publisher did not connect")

    def sample(self) -> tuple[str, float]:
        """Returns (id, time of the start); the arrival is read from the subscriber."""
        self.n += 1
        eid = f"base-{self.n}"
        body = json.dumps({"id": eid, "seq": self.n, "pad": self.filler})
        self.acked.clear()
        t0 = time.perf_counter()
        self.db.execute("BEGIN IMMEDIATE")
        self.db.execute("INSERT INTO events(id, body) VALUES(?, ?)", (eid, body))
        self.db.execute("COMMIT")
        self.client.publish(self.TOPIC, body, qos=1)
        if not self.acked.wait(5):
            raise BenchError("the baseline publish was not acknowledged")
        return eid, t0

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()
        self.db.close()


# ------------------------------------------------------------------------- the daemon


async def _samples(
    site: InProcessSite, port: int, samples: int, workdir: Path, topic: str = "#"
) -> dict[str, Any]:
    """Daemon samples, each followed by one of each baseline, so that all three see the same
    machine (other processes come and go; interleaving keeps the ratios honest)."""
    from controller.engine import Arm, Disarm

    d = site.daemon
    assert d.journal is not None and d.hw is not None
    siren = d.hw.factory.pin(SIREN_PIN)
    door = "door.hall"
    step = d.cfg.hardware.debounce + timedelta(milliseconds=1)
    siren_on = threading.Event()
    siren_at: list[float] = []

    def on_siren(pin: Any) -> None:
        if pin.state and not siren_on.is_set():
            siren_at.append(time.perf_counter())
            siren_on.set()

    siren.listeners.append(on_siren)
    if not await site.drained(10):
        raise BenchError("the start-up events were not delivered")
    size = 0
    sub = await asyncio.to_thread(Subscriber, port, topic, times=True)
    gpio = BareGpiozero()
    bare: BarePublishCommit | None = None
    edge_to_siren: list[float] = []
    base_siren: list[float] = []
    starts: dict[str, float] = {}  # alarm event id -> time of the edge
    base_starts: dict[str, float] = {}

    def open_door() -> float:
        # on another thread, like the GPIO library's callback thread on a Pi
        siren_on.clear()
        siren_at.clear()
        t0 = time.perf_counter()
        site.sim.set(door, True)
        if not siren_on.wait(5):
            raise BenchError("the siren did not sound")
        # the bench shares the daemon's loop: handing back now would run the bench's own code
        # on it while the alarm is on its way to the subscriber (a Pi's daemon has no such
        # guest), so hand back only once the alarm has most likely arrived
        time.sleep(QUIET_AFTER_EDGE)
        return t0

    try:
        for i in range(samples + 5):
            warm = i < 5  # the first few warm up caches and connections
            d.submit(Arm(("hall",), "away", user="guard", source="cli"))
            seq0 = d.journal.last_seq()
            # armed well before the intruder comes: the arming's own reporting is over
            await site.drained(10)
            await asyncio.sleep(0.01)
            t0 = await asyncio.to_thread(open_door)
            if not warm:
                edge_to_siren.append(siren_at[0] - t0)
            if not await site.drained(10):
                raise BenchError("the alarm was not delivered")
            # the burglary alarm (E131), then "recent closing" (E459): time the first
            alarm = [
                e for e in d.journal.events(kind="alarm") if e.seq > seq0
            ]
            if not alarm:
                raise BenchError("the door opening raised no alarm event")
            if not warm:
                starts[alarm[0].id] = t0
            size = len(alarm[0].to_json().encode())
            d.submit(Disarm(("hall",), user="guard", source="cli"))
            site.sim.set(door, False)
            for _ in range(2):  # the opening's debounce ends, the closing is reported, its own ends
                await asyncio.sleep(0)
                site.clock.advance(step)
            await site.drained(10)
            # the baselines, on the same machine at the same moment
            g = await asyncio.to_thread(gpio.sample)
            if bare is None:
                bare = await asyncio.to_thread(BarePublishCommit, port, size, workdir)
            eid, bt0 = await asyncio.to_thread(bare.sample)
            if not warm:
                base_siren.append(g)
                base_starts[eid] = bt0
            await asyncio.sleep(0.002)
        await asyncio.sleep(0.2)
        res = await asyncio.to_thread(sub.finish)
    finally:
        sub.close()
        gpio.close()
        if bare is not None:
            bare.close()
        siren.listeners.remove(on_siren)
    times: dict[str, float] = res["times"]
    return {
        "edge_to_siren": edge_to_siren,
        "base_siren": base_siren,
        "edge_to_event": [times[k] - t for k, t in starts.items() if k in times],
        "base_event": [times[k] - t for k, t in base_starts.items() if k in times],
        "missing": sum(1 for k in starts if k not in times),
        "starts": list(starts.values()),  # each alarm's edge, in order (bench/dc09.py)
        "event_size": size,
    }


def _ms(xs: list[float], p: float) -> float:
    return 1000 * percentile(xs, p)


def run(quick: bool = False) -> dict[str, Any]:
    samples = 60 if quick else 300
    with workspace("latency") as w, broker(w) as b:
        cfg = latency_config(w / "latency.yaml", b.url)

        async def main() -> dict[str, Any]:
            site = InProcessSite(cfg, w / "state")
            await site.start()
            try:
                return await _samples(site, b.port, samples, w)
            finally:
                await site.stop()

        r = asyncio.run(main())
    siren, event = r["edge_to_siren"], r["edge_to_event"]
    base_gpio, base_event = r["base_siren"], r["base_event"]
    figures = []
    for p in (50, 99):
        figures.append(
            figure(
                f"edge -> siren p{p}",
                _ms(siren, p),
                "ms",
                baseline=_ms(base_gpio, p),
                baseline_name="bare gpiozero callback",
            )
        )
    for p in (50, 99):
        ratio_ok = None
        if p == 50:
            ratio_ok = _ms(event, 50) <= TARGET_EVENT_RATIO * _ms(base_event, 50)
        figures.append(
            figure(
                f"edge -> event at subscriber p{p}",
                _ms(event, p),
                "ms",
                baseline=_ms(base_event, p),
                baseline_name="SQLite FULL commit + bare paho",
                target=f"<= {TARGET_EVENT_RATIO:.0f}x baseline" if p == 50 else "",
                ok=ratio_ok,
            )
        )
    figures.append(figure("alarm events not received", r["missing"], "", ok=r["missing"] == 0))
    print_figures(f"latency ({len(siren)} samples each)", figures)
    return {"name": "latency", "quick": quick, "figures": figures,
            "detail": {"samples": len(siren), "event_size": r["event_size"]}}


if __name__ == "__main__":
    run()
