"""Invariants of the alarm engine under thousands of random input/time sequences."""

from __future__ import annotations

from datetime import timedelta

from hypothesis import given, settings
from hypothesis import strategies as st

from controller.config import SiteConfig
from controller.engine import Arm, Bypass, Disarm, Engine, Input, SensorChange, SetOutput, Silence
from controller.engine.model import Emit
from tests.conftest import T0, config_with

ARMED = {"arming", "armed_away", "armed_home", "armed_night", "pending", "triggered"}


def _config() -> SiteConfig:
    data = config_with().model_dump()
    data["sensors"] += [
        {"id": "fire.hall", "name": "Báo khói", "type": "fire", "zone": "perimeter", "pin": 7},
        {"id": "panic.director", "name": "Nút khẩn", "type": "panic", "zone": "leadership", "pin": 8},
        {"id": "win.finance", "name": "Cửa sổ", "type": "window", "zone": "finance", "pin": 9, "response": "instant"},
    ]
    data["zones"][2]["siren_time"] = timedelta(seconds=90)
    return SiteConfig.model_validate(data)


CFG = _config()
SENSORS = [s.id for s in CFG.sensors]
ZONES = [z.id for z in CFG.zones]

zones_st = st.lists(st.sampled_from(ZONES), min_size=1, max_size=3, unique=True).map(tuple)
inputs_st = st.one_of(
    st.builds(SensorChange, st.sampled_from(SENSORS), st.booleans()),
    st.builds(SensorChange, st.sampled_from(SENSORS), st.booleans()),  # weight sensor changes
    st.builds(
        Arm, zones_st, st.sampled_from(["away", "home", "night"]), st.just("bao-ve-1"), st.just("test"),
        st.booleans(), st.booleans(), st.booleans(),
    ),
    st.builds(Disarm, zones_st, st.just("bao-ve-1"), st.just("test"), st.booleans()),
    st.builds(Bypass, st.sampled_from(SENSORS), st.booleans(), st.just("bao-ve-1")),
    st.builds(Silence, zones_st, st.just("bao-ve-1")),
)
gap_st = st.one_of(st.just(0.0), st.floats(0.01, 3.0), st.floats(3.0, 400.0))
steps_st = st.lists(st.tuples(gap_st, inputs_st), min_size=1, max_size=60)


def run(steps: list[tuple[float, Input]], extra_wakeups: list[float] | None = None):
    """Feed the steps; optionally call advance() at extra points inside each gap.
    Yields (input, before_states, after_states, effects) per step."""
    eng = Engine(CFG)
    now = T0
    eng.boot(now, {s: False for s in SENSORS})
    trace = []
    for i, (gap, inp) in enumerate(steps):
        effects = []
        if extra_wakeups:
            frac = extra_wakeups[i % len(extra_wakeups)]
            mid = now + timedelta(seconds=gap * frac)
            before = {z: eng.zone_state(z) for z in ZONES}
            effects += eng.advance(mid)
            trace.append((None, before, {z: eng.zone_state(z) for z in ZONES}, effects, dict(eng.outputs)))
            effects = []
        now += timedelta(seconds=gap)
        before = {z: eng.zone_state(z) for z in ZONES}
        effects += eng.handle(inp, now)
        trace.append((inp, before, {z: eng.zone_state(z) for z in ZONES}, effects, dict(eng.outputs)))
    return eng, trace


def events_of(trace):
    return [e.event for _, _, _, effs, _ in trace for e in effs if isinstance(e, Emit)]


@settings(max_examples=400)
@given(steps_st)
def test_a_siren_is_never_on_without_an_alarm_in_one_of_its_zones(steps):
    eng, trace = run(steps)
    for _, _, after, effects, outputs in trace:
        for siren in CFG.sirens:
            if outputs[siren.id]:
                assert any(after[z] == "triggered" for z in siren.zones)
        # outputs are announced before events, so sirens never wait for the journal
        kinds = [isinstance(e, SetOutput) for e in effects]
        assert kinds == sorted(kinds, reverse=True)


@settings(max_examples=400)
@given(steps_st)
def test_a_zone_never_leaves_armed_without_a_disarm(steps):
    eng = Engine(CFG)
    now = T0
    eng.boot(now, {s: False for s in SENSORS})
    for gap, inp in steps:
        # wake up half-way too: a timer alone must never disarm anything
        before = {z: eng.zones[z].phase for z in ZONES}
        eng.advance(now + timedelta(seconds=gap / 2))
        assert all(eng.zones[z].phase != "disarmed" for z in ZONES if before[z] != "disarmed")
        now += timedelta(seconds=gap)
        before = {z: eng.zones[z].phase for z in ZONES}
        eng.handle(inp, now)
        for z in ZONES:
            if before[z] != "disarmed" and eng.zones[z].phase == "disarmed":
                assert isinstance(inp, Disarm) and z in inp.zones


@settings(max_examples=300)
@given(steps_st, st.lists(st.floats(0.0, 1.0), min_size=1, max_size=5))
def test_timers_fire_in_order_whatever_the_interleaving(steps, fracs):
    _, plain = run(steps)
    _, woken = run(steps, extra_wakeups=fracs)
    a = [(e.kind, e.cid, e.zone, e.sensor, e.ts) for e in events_of(plain)]
    b = [(e.kind, e.cid, e.zone, e.sensor, e.ts) for e in events_of(woken)]
    assert a == b
    ts = [e.ts for e in events_of(plain)]
    assert ts == sorted(ts)


@settings(max_examples=400)
@given(steps_st)
def test_every_state_change_produces_exactly_one_event(steps):
    _, trace = run(steps)
    for _, before, after, effects, _ in trace:
        for z in ZONES:
            chain = [e.event for e in effects if isinstance(e, Emit) and e.event.zone == z and "state" in e.event.detail]
            if before[z] == after[z] and not chain:
                continue
            assert chain, f"{z}: {before[z]} -> {after[z]} without an event"
            assert chain[0].detail["previous"] == before[z]
            assert chain[-1].detail["state"] == after[z]
            for prev, nxt in zip(chain, chain[1:], strict=False):
                assert nxt.detail["previous"] == prev.detail["state"]
            for ev in chain:
                assert ev.detail["previous"] != ev.detail["state"]


@settings(max_examples=200)
@given(steps_st)
def test_snapshot_restore_round_trip_keeps_zone_states(steps):
    eng, _ = run(steps)
    now = T0 + timedelta(days=2)
    snap = eng.snapshot()
    twin = Engine(CFG)
    twin.boot(now, {s: False for s in SENSORS}, snap)
    for z in ZONES:
        # after the downtime every deadline has passed; an armed zone is still armed
        if eng.zones[z].phase != "disarmed":
            assert twin.zones[z].phase == "armed"
        else:
            assert twin.zones[z].phase == "disarmed"
