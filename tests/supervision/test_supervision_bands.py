"""The supervised-loop decoder: bands from the wiring, one state per reading, hysteresis and a
debounce on the given times (never the wall clock)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from hypothesis import given, settings
from hypothesis import strategies as st

from controller.supervision.bands import (
    Band,
    Decoder,
    LoopWiring,
    band_problems,
    bands_from,
    calibrated_bands,
    classify,
    volts,
    wiring_bands,
)

T0 = datetime(2026, 3, 4, 11, 0, tzinfo=UTC)
VREF = 3.3
MS = timedelta(milliseconds=1)

wirings = st.builds(
    LoopWiring,
    contact=st.sampled_from(["nc", "no"]),
    eol=st.sampled_from(["single", "double"]),
    eol_ohms=st.sampled_from([1000.0, 2200.0, 3300.0, 4700.0, 5600.0, 10000.0]),
    alarm_ohms=st.sampled_from([1000.0, 2200.0, 4700.0, 10000.0]),
    pull_up_ohms=st.sampled_from([2200.0, 4700.0, 10000.0]),
    tolerance=st.sampled_from([0.01, 0.02, 0.05]),
)
readings = st.floats(min_value=-1.0, max_value=5.0, allow_nan=False)


def test_a_deol_loop_tells_normal_alarm_cut_and_short_apart() -> None:
    bands = wiring_bands(LoopWiring(contact="nc", eol="double"), VREF)
    assert [b.state for b in bands] == ["short", "normal", "alarm", "cut"]
    assert classify(bands, volts(VREF, 4700, 4700)) == "normal"  # 1.65 V
    assert classify(bands, volts(VREF, 4700, 9400)) == "alarm"  # 2.2 V
    assert classify(bands, VREF) == "cut"
    assert classify(bands, 0.0) == "short"
    assert classify(bands, 1.0) == "trouble"  # between short and normal: no state


def test_a_single_eol_loop_reads_its_one_tamper_and_takes_the_other_for_an_alarm() -> None:
    nc = wiring_bands(LoopWiring(contact="nc", eol="single"), VREF)
    assert (classify(nc, VREF), classify(nc, 0.0)) == ("alarm", "short")
    no = wiring_bands(LoopWiring(contact="no", eol="single"), VREF)
    assert (classify(no, VREF), classify(no, 0.0)) == ("cut", "alarm")


@given(
    st.sampled_from(["nc", "no"]),
    st.sampled_from(["single", "double"]),
    st.sampled_from([1000.0, 2200.0, 3300.0, 4700.0, 5600.0, 10000.0]),
    st.sampled_from([0.5, 1.0, 2.0]),
    st.sampled_from([0.5, 1.0, 2.0]),
    st.sampled_from([0.01, 0.02, 0.05]),
)
def test_resistors_within_a_factor_two_of_each_other_always_give_bands_apart(
    contact: str, eol: str, r: float, alarm_k: float, pull_k: float, tol: float
) -> None:
    """What hardware/README.md recommends: EOL, alarm and pull-up resistors of one value, or
    within a factor of two, 5 % parts or better."""
    w = LoopWiring(contact, eol, r, r * alarm_k, r * pull_k, tol)  # type: ignore[arg-type]
    assert band_problems(wiring_bands(w, VREF), 0.05) == []


@given(wirings, readings)
def test_any_reading_maps_to_exactly_one_state(w: LoopWiring, v: float) -> None:
    bands = wiring_bands(w, VREF)
    if band_problems(bands):
        return
    holding = [b.state for b in bands if b.holds(v)]
    assert len(holding) <= 1
    assert classify(bands, v) == (holding[0] if holding else "trouble")


@settings(max_examples=300)
@given(
    wirings,
    st.data(),
    st.lists(st.floats(min_value=-1.0, max_value=1.0), min_size=1, max_size=60),
    st.lists(st.integers(min_value=1, max_value=500), min_size=60, max_size=60),
)
def test_noise_inside_the_hysteresis_never_flaps_a_loop(
    w: LoopWiring, data: st.DataObject, noise: list[float], gaps_ms: list[int]
) -> None:
    bands = wiring_bands(w, VREF)
    if band_problems(bands, 0.05):
        return
    band = data.draw(st.sampled_from(bands))
    centre = data.draw(st.floats(min_value=band.lo, max_value=band.hi))
    dec = Decoder(bands, hysteresis=0.05, debounce=timedelta(milliseconds=200))
    now = T0
    assert dec.feed(centre, now) == band.state
    for n, gap in zip(noise, gaps_ms, strict=False):
        now += gap * MS
        assert dec.feed(centre + n * 0.05, now) is None  # at most the hysteresis off, any time
        assert dec.state == band.state


@given(st.lists(st.integers(min_value=1, max_value=199), min_size=1, max_size=30))
def test_a_glitch_shorter_than_the_debounce_never_counts(glitch_ms: list[int]) -> None:
    bands = wiring_bands(LoopWiring(), VREF)
    dec = Decoder(bands, hysteresis=0.05, debounce=timedelta(milliseconds=200))
    now = T0
    dec.feed(1.65, now)
    for ms in glitch_ms:  # a cut that lasts less than the debounce, then normal again
        assert dec.feed(VREF, now) is None
        now += ms * MS
        assert dec.feed(1.65, now) is None
        now += 5 * MS
    assert dec.state == "normal"


def test_a_change_that_holds_the_debounce_settles_on_the_daemon_time() -> None:
    dec = Decoder(wiring_bands(LoopWiring(), VREF), debounce=timedelta(milliseconds=200))
    assert dec.feed(1.65, T0) == "normal"
    assert dec.feed(0.0, T0 + 10 * MS) is None
    assert dec.next_due() == T0 + 210 * MS
    assert dec.feed(0.0, T0 + 209 * MS) is None
    assert dec.feed(0.0, T0 + 210 * MS) == "short"
    assert dec.next_due() is None


def test_a_lost_adc_makes_the_loop_unknown_until_the_next_reading_settles_at_once() -> None:
    dec = Decoder(wiring_bands(LoopWiring(), VREF))
    dec.feed(1.65, T0)
    dec.lost()
    assert dec.state == "unknown" and dec.last_volts is None
    assert dec.feed(2.2, T0 + MS) == "alarm"


def test_bands_that_overlap_or_sit_within_the_hysteresis_are_named() -> None:
    bands = bands_from({"normal": [1.5, 1.8], "alarm": [1.7, 2.3]})
    assert band_problems(bands) == [
        "bands normal and alarm overlap (normal up to 1.8 V, alarm from 1.7 V)"
    ]
    close = bands_from({"normal": [1.5, 1.8], "alarm": [1.85, 2.3]})
    assert "not more than twice the hysteresis" in band_problems(close, 0.05)[0]
    assert band_problems((Band("alarm", 2.0, 2.5),)) == ["no normal band"]


def test_calibration_centres_normal_and_alarm_on_what_the_loop_read() -> None:
    bands = calibrated_bands(LoopWiring(), VREF, normal_v=1.60, alarm_v=2.25)
    by = {b.state: b for b in bands}
    assert (by["normal"].lo, by["normal"].hi) == (1.468, 1.732)
    assert (by["alarm"].lo, by["alarm"].hi) == (2.118, 2.382)
    assert band_problems(bands, 0.05) == []
