"""Fault injection against the real daemon: a broker that goes away in the middle of a storm of
sensor changes, a daemon SIGKILLed in the middle of one, a detector's serial port that
vanishes and comes back, and clock steps (NTP corrections) on both clocks.

Bounded: 3 broker outages and 3 kills normally; OFFICEGUARD_SLOW=1 runs 10 of each (and
longer storms). Each storm is seeded; the seed is in the assertion messages to replay one.
"""

from __future__ import annotations

import asyncio
import json
import os
import random
import shutil
import tempfile
import threading
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from controller.clock import RealClock, VirtualClock
from controller.config import parse_config
from controller.daemon import Daemon
from controller.drone.protocol import encode_line
from controller.engine import Arm
from tests.e2e import DEMO_CONFIG, Site
from tests.mqtt_broker import Broker, Recorder, free_port, wait_for
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
    # its own directory (persistence, log, config), removed afterwards
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
        probe = Storm(site.state_dir)  # the main thread's own requests, counted apart
        stop = threading.Event()
        t = threading.Thread(target=_storm_until_killed, args=(st, changes, stop))
        t.start()

        def after(n: int) -> None:
            target = st.sent + n
            wait_for(lambda: st.sent >= target or not t.is_alive(), timeout=60)

        try:
            for _ in range(BROKER_OUTAGES):
                after(rng.randint(10, 80))
                broker.stop()  # while the storm goes on: messages may be in flight
                after(rng.randint(20, 80))
                outbox_seen = max(outbox_seen, probe.status()["outbox"])
                broker.start()
            after(rng.randint(10, 80))
        finally:
            stop.set()
            t.join(30)
        assert site.proc is not None and site.proc.poll() is None, why
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
        queued_at_kill = 0
        for i in range(KILLS):
            # every other kill (at least one) finds the broker down: events still queued in
            # the outbox at the kill must go out after the restart
            broker_down = i % 2 == 1
            if broker_down:
                broker.stop()
            stop = threading.Event()
            target = st.sent + rng.randint(30 if broker_down else 5, 120)
            t = threading.Thread(target=_storm_until_killed, args=(st, changes, stop))
            t.start()
            wait_for(lambda n=target, t=t: st.sent >= n or not t.is_alive(), timeout=60)
            site.kill()  # SIGKILL while requests are in flight
            stop.set()
            t.join(30)
            assert not t.is_alive(), why
            assert_sound(site.state_dir, f"{why}, after kill {i + 1}")
            before = journal_events(site.state_dir)
            if broker_down:
                sent = {e["id"] for e in received_events(rec)}
                queued_at_kill += sum(1 for e in before if e.id not in sent)
            # restart with the same state directory, the virtual clock a little later
            site.start((T0 + timedelta(minutes=10 * (i + 1))).isoformat())
            after = journal_events(site.state_dir)
            assert [e.id for e in after[: len(before)]] == [e.id for e in before], why
            assert after[len(before)].seq == before[-1].seq + 1, why  # no seq reused or skipped
            zones = st.status()["zones"]
            assert all(zones[z]["mode"] == "away" for z in ZONES), f"{why}: {zones}"
            if broker_down:
                broker.start()
        assert queued_at_kill > 0, f"{why}: no event was waiting for the broker at a kill"
        storm(st, changes, 20)
        n = assert_all_delivered(site.state_dir, rec, st, why)
        assert_sound(site.state_dir, why)
        got = received_events(rec)
        print(
            f"kills: {KILLS}, changes {st.sent}, events {n}, received {len(got)} "
            f"({len(got) - len({e['id'] for e in got})} re-sent), "
            f"{queued_at_kill} queued at a kill with the broker down, {why}"
        )
    finally:
        site.stop()
        rec.close()


# ----------------------------------------------------------------------------- in-process daemon


class InProcess:
    """The real Daemon (simulated hardware, a virtual clock) on this test's own loop, for
    faults the control socket cannot cause: a serial port pulled out, a clock step."""

    def __init__(self, state: Path, start: datetime, *, detector_nodes: bool = False) -> None:
        """detector_nodes: the simulated detector's own hello and heartbeats (off: the tests
        here write every line themselves)."""
        # a broker port nobody listens on: reporting retries quietly, events stay queued
        text = DEMO_CONFIG.read_text(encoding="utf-8").replace(
            "mqtt://127.0.0.1:1883", f"mqtt://127.0.0.1:{free_port()}"
        )
        self.clock = VirtualClock(start)
        self.daemon = Daemon(
            parse_config(text, "demo.yaml"),
            state,
            simulate=True,
            clock=self.clock,
            detector_nodes=detector_nodes,
        )

    async def __aenter__(self) -> InProcess:
        await self.daemon.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.daemon.stop("test over")

    def kinds(self, since: int = 0) -> list[str]:
        assert self.daemon.journal is not None
        return [e.kind for e in self.daemon.journal.events()][since:]

    def count(self) -> int:
        return len(self.kinds())

    def events(self, since: int = 0) -> list[Any]:
        assert self.daemon.journal is not None
        return list(self.daemon.journal.events())[since:]

    def zone(self, z: str) -> str:
        return self.daemon.engine.zone_state(z)

    async def advance(self, delta: timedelta) -> None:
        await settle()
        self.clock.advance(delta)
        await settle()

    async def jump(self, delta: timedelta) -> None:
        self.clock.jump(self.clock.now() + delta)
        self.clock.run_due()
        await settle()

    def siren(self) -> bool:
        assert self.daemon.hw is not None
        return bool(self.daemon.hw.output_states()["siren.hall"])


async def settle() -> None:
    for _ in range(5):
        await asyncio.sleep(0)


async def until(cond: Callable[[], bool], what: str) -> None:
    """Let the loop run (real I/O: a pty) until cond holds; fail after 10 s."""
    for _ in range(2000):
        if cond():
            return
        await asyncio.sleep(0.005)
    raise AssertionError(f"timed out waiting for {what}")


def hcm(*args: int) -> datetime:
    from zoneinfo import ZoneInfo

    return datetime(*args, tzinfo=ZoneInfo("Asia/Ho_Chi_Minh"))  # type: ignore[misc]


# ----------------------------------------------------------------------------- serial port


def hb(seq: int) -> bytes:
    return encode_line({"v": 1, "t": "hb", "seq": seq, "up": seq * 5, "adv": 0, "drop": 0})


def test_detector_port_vanishing_and_returning_is_a_trouble_then_a_restore(
    tmp_path: Path,
) -> None:
    async def body() -> None:
        async with InProcess(tmp_path / "state", T0) as site:
            d = site.daemon
            assert d.hw is not None and d.hw.sim is not None
            port = d.hw.sim.serial["rf.roof"]
            station = d.detectors["rf.roof"]
            port.write(hb(1))
            await until(lambda: station.monitor.lines_ok == 1, "the first heartbeat")
            n0 = site.count()
            for round_ in range(3):
                port.unplug()  # the USB adapter pulled out: the pty hangs up, the path goes
                await until(lambda: not station.reader.is_open, "the reader to see the loss")
                new = site.events(n0)
                troubles = [e for e in new if e.kind == "trouble"]
                assert len(troubles) == 1 and troubles[0].detail["reason"] == "port_closed"
                assert any(t["source"] for t in d.status()["troubles"])
                # retries while the port is missing: no crash, no second trouble
                for _ in range(3):
                    await site.advance(timedelta(seconds=5))
                assert not station.reader.is_open
                assert [e.kind for e in site.events(n0)].count("trouble") == 1
                port.replug()
                await site.advance(timedelta(seconds=30))  # the next retry (backoff ≤ 30 s)
                await until(lambda: station.reader.is_open, "the port to open again")
                before = station.monitor.lines_ok
                port.write(hb(10 + round_))
                await until(lambda b=before: station.monitor.lines_ok == b + 1, "a line parsed")
                new = site.events(n0)
                assert [e.kind for e in new if e.kind.startswith("trouble")] == [
                    "trouble",
                    "trouble_restore",
                ], [(e.kind, e.text) for e in new]
                assert station.monitor.link_trouble is None
                n0 = site.count()
            assert station.monitor.internal_errors == 0
            assert d.engine.zone_state("perimeter") == "disarmed"  # a lost port alarms nothing

    asyncio.run(body())


# ----------------------------------------------------------------------------- clock steps


def test_schedule_transition_is_not_lost_when_the_clock_steps_forward_then_back(
    tmp_path: Path,
) -> None:
    """A Pi boots with a clock far ahead (bad RTC), NTP pulls it back: today's 17:30 arm
    must still happen at 17:30, and a jump across it arms at once."""

    async def body() -> None:
        async with InProcess(tmp_path / "state", hcm(2026, 3, 4, 17, 0)) as site:
            assert site.zone("leadership") == "disarmed"
            await site.jump(hcm(2026, 3, 5, 8, 0) - hcm(2026, 3, 4, 17, 0))  # 15 h ahead
            assert site.zone("leadership") == "disarmed"  # 07:30 disarm is the latest
            await site.jump(hcm(2026, 3, 4, 17, 0) - hcm(2026, 3, 5, 8, 0))  # NTP: back
            assert site.zone("leadership") == "disarmed"
            await site.advance(timedelta(minutes=29))
            assert site.zone("leadership") == "disarmed"  # 17:29: the pre-arm warning only
            await site.advance(timedelta(minutes=1, seconds=1))
            assert site.zone("leadership") == "armed_away", "today's 17:30 arm was lost"
            assert site.zone("finance") == "armed_away"
            # a step back across the arm never disarms (fail secure: a wrong or spoofed time
            # source must not open the building), and the 17:30 arm passing again is harmless
            n = site.count()
            await site.jump(timedelta(minutes=-2))
            assert site.zone("leadership") == "armed_away"
            assert "disarm" not in site.kinds(n)
            await site.advance(timedelta(minutes=2))
            assert site.zone("leadership") == "armed_away"
            assert "alarm" not in site.kinds(n) and not site.siren()
            # ... and a step forward across the 22:00 perimeter arm arms it at once
            await site.jump(timedelta(hours=5))
            assert site.zone("perimeter") == "armed_away"
            assert "alarm" not in site.kinds(n) and not site.siren()

    asyncio.run(body())


@pytest.mark.parametrize("step", [timedelta(hours=1), timedelta(hours=-1)], ids=["fwd", "back"])
def test_clock_step_during_an_entry_delay_keeps_its_length(tmp_path: Path, step: timedelta) -> None:
    """The door opens (30 s entry delay), NTP steps the clock: the alarm still comes 30 s of
    elapsed time after the door, not at once (forward) nor an hour late (back), and the
    siren then sounds for its whole siren time."""

    async def body() -> None:
        async with InProcess(tmp_path / "state", T0) as site:
            d = site.daemon
            assert d.hw is not None
            d.submit(Arm(("leadership",), "away", user="bao-ve-1", source="cli"))
            await site.advance(timedelta(seconds=61))
            assert site.zone("leadership") == "armed_away"
            await d.hw.sim_set("door.director", True)
            assert site.zone("leadership") == "pending"
            n = site.count()
            await site.advance(timedelta(seconds=10))
            await site.jump(step)
            assert site.zone("leadership") == "pending", "a step ended the entry delay"
            assert "alarm" not in site.kinds(n)
            await site.advance(timedelta(seconds=19))
            assert site.zone("leadership") == "pending"
            await site.advance(timedelta(seconds=2))
            assert site.zone("leadership") == "triggered", "the entry delay did not end"
            assert site.siren()
            await site.advance(timedelta(minutes=3, seconds=50))
            assert site.siren(), "the siren time was cut short by the step"

    asyncio.run(body())


@pytest.mark.parametrize("step", [timedelta(hours=1), timedelta(hours=-1)], ids=["fwd", "back"])
def test_clock_step_during_an_exit_delay_keeps_its_length(tmp_path: Path, step: timedelta) -> None:
    async def body() -> None:
        async with InProcess(tmp_path / "state", T0) as site:
            site.daemon.submit(Arm(("leadership",), "away", user="bao-ve-1", source="cli"))
            await site.advance(timedelta(seconds=20))
            await site.jump(step)
            assert site.zone("leadership") == "arming", "a step ended the exit delay"
            await site.advance(timedelta(seconds=39))
            assert site.zone("leadership") == "arming"
            await site.advance(timedelta(seconds=2))
            assert site.zone("leadership") == "armed_away", "the exit delay did not end"

    asyncio.run(body())


def test_small_clock_steps_in_an_entry_delay_raise_no_alarm_before_its_end(
    tmp_path: Path,
) -> None:
    """Steps of a few seconds either way in an entry delay: no alarm at the step itself, the
    delay still ends 30 s of elapsed time after the door, one alarm."""

    async def body() -> None:
        async with InProcess(tmp_path / "state", T0) as site:
            d = site.daemon
            assert d.hw is not None
            d.submit(Arm(("leadership",), "away", user="bao-ve-1", source="cli"))
            await site.advance(timedelta(seconds=61))
            await d.hw.sim_set("door.director", True)
            n = site.count()
            await site.jump(timedelta(seconds=3))
            await site.jump(timedelta(seconds=-5))
            assert site.zone("leadership") == "pending" and "alarm" not in site.kinds(n)
            await site.advance(timedelta(seconds=29))
            assert site.zone("leadership") == "pending" and "alarm" not in site.kinds(n)
            await site.advance(timedelta(seconds=2))  # 30 s after the door, steps or not
            assert site.zone("leadership") == "triggered" and site.siren()
            assert [e.cid for e in site.events(n) if e.kind == "alarm"].count("E134") == 1

    asyncio.run(body())


# ----------------------------------------------------------------------------- RealClock


class FakeTime:
    """Injected wall and monotonic clocks: `elapse` moves both, `step` only the wall."""

    def __init__(self) -> None:
        self.w = 1_780_000_000.0
        self.m = 1000.0

    def wall(self) -> float:
        return self.w

    def mono(self) -> float:
        return self.m

    def elapse(self, s: float) -> None:
        self.w += s
        self.m += s

    def step(self, s: float) -> None:
        self.w += s


def test_real_clock_detects_steps_and_ignores_slewing() -> None:
    t = FakeTime()
    clock = RealClock(wall=t.wall, mono=t.mono)
    seen: list[timedelta] = []
    clock.add_jump_listener(seen.append)  # no loop running: only explicit looks
    assert clock.now() == datetime.fromtimestamp(t.w, UTC)
    t.elapse(30)
    assert clock.check_jump() is None
    for _ in range(1000):  # NTP slewing at its 500 ppm maximum, for 8 hours
        t.elapse(30)
        t.step(0.015)
        assert clock.check_jump() is None
    assert seen == []
    t.elapse(5)
    t.step(3600)  # the Pi's first NTP sync after a boot with a stale clock
    assert clock.check_jump() == timedelta(hours=1)
    assert clock.check_jump() is None  # told once
    t.step(-90)
    t.elapse(1)
    assert clock.check_jump() == timedelta(seconds=-90)
    assert seen == [timedelta(hours=1), timedelta(seconds=-90)]
    assert clock.jumps == 2
    clock.remove_jump_listener(seen.append)
    t.step(10)
    clock.check_jump()
    assert len(seen) == 2


def test_real_clock_listener_errors_do_not_stop_the_others() -> None:
    t = FakeTime()
    clock = RealClock(wall=t.wall, mono=t.mono)
    seen: list[timedelta] = []

    def bad(delta: timedelta) -> None:
        raise RuntimeError("listener bug")

    clock.add_jump_listener(bad)
    clock.add_jump_listener(seen.append)
    t.step(-7200)
    assert clock.check_jump() == timedelta(hours=-2)
    assert seen == [timedelta(hours=-2)]


def test_real_clock_tells_listeners_before_a_timer_the_step_made_due() -> None:
    """A step forward makes two timers due: the listener runs first, and what it cancels (a
    delay it moves by the step, say) does not fire."""

    async def body() -> None:
        t = FakeTime()
        clock = RealClock(wall=t.wall, mono=t.mono)
        clock.MAX_SLEEP = 0.0  # timers re-check at every loop turn instead of every minute
        order: list[str] = []
        start = clock.now()
        moved = clock.call_at(start + timedelta(minutes=5), lambda: order.append("moved"))
        clock.call_at(start + timedelta(minutes=10), lambda: order.append("time of day"))

        def on_jump(delta: timedelta) -> None:
            order.append(f"jump {delta.total_seconds():+.0f}")
            moved.cancel()

        clock.add_jump_listener(on_jump)
        await settle()
        assert order == []
        t.step(3600)
        await settle()
        assert order == ["jump +3600", "time of day"]
        clock.close()

    asyncio.run(body())


def test_real_clock_periodic_look_notices_a_step_with_no_timer_set() -> None:
    async def body() -> None:
        t = FakeTime()
        clock = RealClock(wall=t.wall, mono=t.mono)
        clock.JUMP_CHECK = 0.0  # look at every loop turn instead of every 30 s
        seen: list[timedelta] = []
        clock.add_jump_listener(seen.append)
        await settle()
        assert seen == []
        t.step(-600)
        await settle()
        assert seen == [timedelta(minutes=-10)]
        clock.remove_jump_listener(seen.append)  # the last listener gone: no more looks
        assert clock._watch is None
        clock.close()

    asyncio.run(body())


def test_real_clock_now_shows_a_step_only_after_the_listeners_ran() -> None:
    """On a loop, the first now() after a step still gives the old time and queues a look;
    listeners run on the loop and already see the new time; then everyone does."""

    async def body() -> None:
        t = FakeTime()
        clock = RealClock(wall=t.wall, mono=t.mono)
        seen: list[tuple[timedelta, datetime]] = []
        clock.add_jump_listener(lambda d: seen.append((d, clock.now())))
        before = clock.now()
        t.elapse(2)
        t.step(3600)
        assert clock.now() == before + timedelta(seconds=2)  # deadlines not moved yet
        assert seen == []
        await settle()
        new = datetime.fromtimestamp(t.w, UTC)
        assert seen == [(timedelta(hours=1), new)]
        assert clock.now() == new
        t.elapse(1)
        t.step(0.0004)  # slewing is followed by now() itself, without a look
        assert clock.now() == datetime.fromtimestamp(t.w, UTC)
        await settle()
        assert len(seen) == 1
        clock.close()

    asyncio.run(body())


def test_real_clock_without_a_loop_tells_the_true_time() -> None:
    t = FakeTime()
    clock = RealClock(wall=t.wall, mono=t.mono)
    t.step(-300)
    assert clock.now() == datetime.fromtimestamp(t.w, UTC)
    assert clock.check_jump() == timedelta(minutes=-5)


def test_real_clock_step_reaches_the_daemon_and_its_schedules(tmp_path: Path) -> None:
    """The whole chain on the real clock (wall and monotonic time injected): a step forward
    across 17:30 is seen by the next now(), the daemon logs it, and the schedule arms the
    office at once instead of at some later wake-up."""

    async def body() -> None:
        t = FakeTime()
        t.w = hcm(2026, 3, 4, 17, 0).timestamp()
        clock = RealClock(wall=t.wall, mono=t.mono)
        text = DEMO_CONFIG.read_text(encoding="utf-8").replace(
            "mqtt://127.0.0.1:1883", f"mqtt://127.0.0.1:{free_port()}"
        )
        d = Daemon(parse_config(text, "demo.yaml"), tmp_path / "state", simulate=True, clock=clock)
        await d.start()
        try:
            assert d.journal is not None
            assert d.engine.zone_state("leadership") == "disarmed"
            t.elapse(1)
            t.step(3600)  # 18:00:01: NTP after a boot with a slow clock
            d.status()  # anything asking the time notices; the look runs on the loop
            await settle()
            assert clock.jumps == 1
            assert d.engine.zone_state("leadership") == "armed_away"
            assert d.engine.zone_state("finance") == "armed_away"
            steps = [e for e in d.journal.events() if "clock_step_s" in e.detail]
            assert [e.detail["clock_step_s"] for e in steps] == [3600.0]
        finally:
            await d.stop("test over")
            clock.close()

    asyncio.run(body())


def test_virtual_clock_jump_tells_listeners_and_fires_nothing_early() -> None:
    clock = VirtualClock(datetime(2026, 3, 4, 5, 0, tzinfo=UTC))
    fired: list[str] = []
    seen: list[timedelta] = []
    clock.add_jump_listener(seen.append)
    clock.call_later(timedelta(seconds=30), lambda: fired.append("30s"))
    clock.jump(clock.now() - timedelta(minutes=5))
    clock.run_due()
    assert fired == [] and seen == [timedelta(minutes=-5)]
    clock.jump(clock.now() + timedelta(minutes=10))
    assert fired == []  # jump fires nothing by itself
    clock.run_due()
    assert fired == ["30s"] and seen == [timedelta(minutes=-5), timedelta(minutes=10)]
    clock.jump(clock.now())  # no step, no news
    assert len(seen) == 2


@pytest.mark.parametrize("step", [timedelta(hours=1), timedelta(hours=-1)], ids=["fwd", "back"])
def test_clock_step_neither_invents_nor_delays_a_silent_detector(
    tmp_path: Path, step: timedelta
) -> None:
    """A step 5 s after the detector's last heartbeat: no `silent` trouble at the step
    (forward), and the trouble still comes 15 s after that heartbeat, not an hour late
    (back)."""

    async def body() -> None:
        async with InProcess(tmp_path / "state", T0) as site:
            d = site.daemon
            assert d.hw is not None and d.hw.sim is not None
            port = d.hw.sim.serial["rf.roof"]
            station = d.detectors["rf.roof"]
            n = site.count()
            for seq in (1, 2):
                port.write(hb(seq))
                await until(lambda s=seq: station.monitor.lines_ok == s, "a heartbeat")
                await site.advance(timedelta(seconds=5))
            await site.jump(step)  # 5 s after the last heartbeat
            await site.advance(timedelta(seconds=4))
            assert "trouble" not in site.kinds(n), "a clock step made the detector 'silent'"
            await site.advance(timedelta(seconds=7))  # 16 s since the last heartbeat
            assert "trouble" in site.kinds(n), "the silent detector's trouble is late"

    asyncio.run(body())
