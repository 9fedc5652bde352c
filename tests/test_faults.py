"""Fault injection against the real daemon: a broker that goes away in the middle of a storm of
sensor changes, a daemon SIGKILLed in the middle of one, a detector's serial port that
vanishes and comes back, and clock steps (NTP corrections) on both clocks.

Bounded: 3 broker outages and 3 kills normally; OFFICEGUARD_SLOW=1 runs 10 of each (and
longer storms). Each storm is seeded; the seed is in the assertion messages to replay one.
"""

from __future__ import annotations

import json
import os
import random
import shutil
import tempfile
import threading
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from tests.e2e import DEMO_CONFIG, Site
from tests.mqtt_broker import MOSQUITTO, Broker, Recorder, wait_for
from tests.storm import (
    Changes,
    Storm,
    StormError,
    delivery_problems,
    integrity,
    journal_events,
    seq_gaps,
)

SLOW = os.environ.get("OFFICEGUARD_SLOW") == "1"
BROKER_OUTAGES = 10 if SLOW else 3
KILLS = 10 if SLOW else 3
SEED = int(os.environ.get("OFFICEGUARD_FAULT_SEED", "0")) or random.randrange(1, 10**6)

SENSORS = [
    "door.director",
    "pir.director",
    "door.finance",
    "vib.safe1",
    "gate.main",
    "tamper.cabinet",
]
ZONES = ["leadership", "finance", "perimeter"]
CODE = "2468"  # the demo's guard
T0 = datetime.fromisoformat("2026-03-04T12:00:00+07:00")  # a Wednesday, all zones disarmed


def site_config(tmp: Path, broker_url: str) -> Path:
    cfg = tmp / "site.yaml"
    text = DEMO_CONFIG.read_text(encoding="utf-8").replace("mqtt://127.0.0.1:1883", broker_url)
    cfg.write_text(text, encoding="utf-8")
    return cfg


def received_events(rec: Recorder) -> list[dict[str, Any]]:
    return [json.loads(p) for t, p, _ in rec.snapshot() if t.endswith("/event")]


def storm(st: Storm, changes: Changes, n: int) -> int:
    """n sensor changes through the control socket; returns how many went through."""
    done = 0
    for sensor, active in changes:
        if done >= n:
            break
        st.set(sensor, active)
        done += 1
    return done


def assert_sound(state: Path, why: str) -> None:
    """After a fault: the logbook is intact and its sequence has no gap."""
    assert integrity(state) == "ok", why
    events = journal_events(state)
    assert events, why
    assert seq_gaps(events) == [], why
    assert [e.seq for e in events] == sorted(e.seq for e in events), why
    assert len({e.id for e in events}) == len(events), why


def assert_all_delivered(state: Path, rec: Recorder, st: Storm, why: str) -> int:
    """Wait until the outbox is empty and the subscriber has every journaled event."""

    def done() -> bool:
        try:
            if st.status()["outbox"] != 0:
                return False
        except (ConnectionError, StormError):
            return False
        return not delivery_problems(journal_events(state), received_events(rec))

    wait_for(done, timeout=60, step=0.1)
    journal = journal_events(state)
    problems = delivery_problems(journal, received_events(rec))
    assert problems == [], f"{why}: {problems[:10]}"
    return len(journal)


@pytest.fixture
def broker(tmp_path: Path) -> Any:
    if MOSQUITTO is None:
        pytest.skip("no mosquitto binary")
    # the broker's persistence lives outside tmp_path's tree so a failure's files stay small
    work = Path(tempfile.mkdtemp(prefix="og-broker-"))
    b = Broker(work)
    b.start()
    yield b
    b.stop()
    shutil.rmtree(work, ignore_errors=True)


# ----------------------------------------------------------------------------- broker outages


@pytest.mark.integration
def test_broker_outages_in_a_storm_lose_nothing(tmp_path: Path, broker: Broker) -> None:
    why = f"seed {SEED} (OFFICEGUARD_FAULT_SEED={SEED} replays it)"
    rng = random.Random(SEED)
    rec = Recorder(broker.port, "officeguard/office-a/event", client_id=f"rec-{SEED}")
    site = Site(tmp_path / "state", config=site_config(tmp_path, broker.url))
    site.start(T0.isoformat())
    st = Storm(site.state_dir)
    changes = Changes(SENSORS, SEED)
    try:
        assert wait_for(lambda: st.status()["broker"]["connected"], timeout=15), why
        st.arm(ZONES, CODE)
        outbox_seen = 0
        for _ in range(BROKER_OUTAGES):
            storm(st, changes, rng.randint(10, 80))
            broker.stop()  # in the middle of the storm: the outbox may have messages in flight
            storm(st, changes, rng.randint(10, 80))
            outbox_seen = max(outbox_seen, st.status()["outbox"])
            broker.start()
        storm(st, changes, rng.randint(10, 80))
        assert outbox_seen > 0, f"{why}: no event ever waited for the broker"
        n = assert_all_delivered(site.state_dir, rec, st, why)
        assert n > 3 * BROKER_OUTAGES, why
        got = received_events(rec)
        print(
            f"broker outages: {BROKER_OUTAGES}, changes {st.sent}, events {n}, "
            f"received {len(got)} ({len(got) - len({e['id'] for e in got})} re-sent), "
            f"outbox peak {outbox_seen}, {why}"
        )
        assert_sound(site.state_dir, why)
        zones = st.status()["zones"]
        assert all(zones[z]["mode"] == "away" for z in ZONES), f"{why}: {zones}"
        assert site.proc is not None and site.proc.poll() is None, why
    finally:
        site.stop()
        rec.close()


# ----------------------------------------------------------------------------- SIGKILL


def _storm_until_killed(st: Storm, changes: Changes, stop: threading.Event) -> None:
    for sensor, active in changes:
        if stop.is_set():
            return
        try:
            st.set(sensor, active)
        except (ConnectionError, OSError, StormError, json.JSONDecodeError):
            return  # the daemon was killed under us (mid-request, perhaps)


@pytest.mark.integration
def test_sigkill_in_a_storm_loses_nothing_journaled(tmp_path: Path, broker: Broker) -> None:
    why = f"seed {SEED} (OFFICEGUARD_FAULT_SEED={SEED} replays it)"
    rng = random.Random(SEED)
    rec = Recorder(broker.port, "officeguard/office-a/event", client_id=f"rec-kill-{SEED}")
    site = Site(tmp_path / "state", config=site_config(tmp_path, broker.url))
    site.start(T0.isoformat())
    st = Storm(site.state_dir)
    changes = Changes(SENSORS, SEED)
    try:
        st.arm(ZONES, CODE)
        for i in range(KILLS):
            stop = threading.Event()
            target = st.sent + rng.randint(5, 120)
            t = threading.Thread(target=_storm_until_killed, args=(st, changes, stop))
            t.start()
            wait_for(lambda n=target, t=t: st.sent >= n or not t.is_alive(), timeout=60)
            site.kill()  # SIGKILL while requests are in flight
            stop.set()
            t.join(30)
            assert not t.is_alive(), why
            assert_sound(site.state_dir, f"{why}, after kill {i + 1}")
            before = journal_events(site.state_dir)
            # restart with the same state directory, the virtual clock a little later
            site.start((T0 + timedelta(minutes=10 * (i + 1))).isoformat())
            after = journal_events(site.state_dir)
            assert [e.id for e in after[: len(before)]] == [e.id for e in before], why
            assert after[len(before)].seq == before[-1].seq + 1, why  # no seq reused or skipped
            zones = st.status()["zones"]
            assert all(zones[z]["mode"] == "away" for z in ZONES), f"{why}: {zones}"
        storm(st, changes, 20)
        n = assert_all_delivered(site.state_dir, rec, st, why)
        assert_sound(site.state_dir, why)
        got = received_events(rec)
        print(
            f"kills: {KILLS}, changes {st.sent}, events {n}, received {len(got)} "
            f"({len(got) - len({e['id'] for e in got})} re-sent), {why}"
        )
    finally:
        site.stop()
        rec.close()
