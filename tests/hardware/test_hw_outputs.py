"""Sirens/relays and the keypad buzzer on mock pins; buzzer patterns timed on the virtual clock."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from controller.clock import VirtualClock
from hardware.backend import HardwareError, SimPin, pin_factory_for
from hardware.outputs import Buzzer, Output, Outputs
from hardware.pins import OutputPin

T0 = datetime(2026, 2, 16, 19, 0, tzinfo=UTC)
MS = timedelta(milliseconds=1)
S = timedelta(seconds=1)


@pytest.fixture
def factory():
    f = pin_factory_for("simulated")
    yield f
    f.close()


# ----------------------------------------------------------------------------- outputs


def test_output_is_off_at_start_on_when_asked_and_off_on_close(factory):
    pin: SimPin = factory.pin(5)
    out = Output("siren.hall", 5, True, factory)
    assert pin.function == "output" and not pin.state and out.is_on is False
    out.on()
    assert pin.state and out.is_on is True
    out.off()
    assert not pin.state and out.is_on is False
    out.on()
    out.close()
    assert not pin.state and out.is_on is False
    with pytest.raises(HardwareError, match="closed"):
        out.on()


def test_active_low_relay_is_driven_low_to_switch_on(factory):
    pin: SimPin = factory.pin(6)
    out = Output("relay", 6, False, factory)
    assert pin.state  # off = high for an active-low relay module
    out.set(True)
    assert not pin.state and out.is_on
    out.close()
    assert pin.state or pin.function == "input"


def test_output_on_a_busy_pin_is_a_clear_error(factory):
    first = Output("a", 5, True, factory)
    with pytest.raises(HardwareError, match=r"output b: GPIO5"):
        Output("b", 5, True, factory)
    first.close()


def test_outputs_open_on_their_pins_all_off_whatever_their_polarity():
    pins = [OutputPin("siren.in", 5), OutputPin("siren.out", 6, active_high=False)]
    f = pin_factory_for("simulated")
    outs = Outputs.from_pins(pins, f)
    try:
        assert outs.states() == {"siren.in": False, "siren.out": False}
        outs.set("siren.out", True)
        assert outs.states() == {"siren.in": False, "siren.out": True}
        assert not f.pin(6).state
        assert "siren.in" in outs and "x" not in outs
        with pytest.raises(KeyError, match="unknown output 'x'"):
            outs.set("x", True)
    finally:
        outs.close()
        assert not f.pin(5).state
        f.close()


def test_outputs_that_cannot_all_open_release_the_pins_they_took():
    f = pin_factory_for("simulated")
    with pytest.raises(HardwareError, match=r"output b: GPIO5"):
        Outputs.from_pins([OutputPin("a", 5), OutputPin("b", 5)], f)
    again = Output("c", 5, True, f)  # output a's pin was released again
    again.close()
    f.close()


# ----------------------------------------------------------------------------- buzzer


class BuzzerRig:
    def __init__(self, factory) -> None:
        self.clock = VirtualClock(T0)
        self.buzzer = Buzzer(21, factory, self.clock)
        self.pin: SimPin = factory.pin(21)
        self.edges: list[tuple[timedelta, bool]] = []
        self.pin.listeners.append(self._record)

    def _record(self, pin: SimPin) -> None:
        self.edges.append((self.clock.now() - T0, bool(pin.state)))

    def ons(self) -> list[timedelta]:
        return [t for t, level in self.edges if level]

    def spans(self) -> list[tuple[timedelta, timedelta]]:
        """(on at, on for) of every beep."""
        out = []
        start = None
        for t, level in self.edges:
            if level:
                start = t
            elif start is not None:
                out.append((start, t - start))
                start = None
        return out


@pytest.fixture
def bz(factory):
    rig = BuzzerRig(factory)
    yield rig
    rig.buzzer.close()


def test_buzzer_starts_silent(bz):
    assert bz.buzzer.is_on is False and bz.buzzer.idle and bz.clock.next_due() is None
    assert bz.pin.function == "output" and not bz.pin.state


def test_key_beep_is_50ms(bz):
    bz.buzzer.play("key")
    assert bz.buzzer.is_on and bz.buzzer.playing == "key"
    bz.clock.advance(S)
    assert bz.spans() == [(0 * MS, 50 * MS)]
    assert bz.buzzer.idle and bz.buzzer.playing is None


def test_accept_is_one_long_beep(bz):
    bz.buzzer.play("accept")
    bz.clock.advance(3 * S)
    assert bz.spans() == [(0 * MS, 1000 * MS)]


def test_refuse_is_three_short_beeps(bz):
    bz.buzzer.play("refuse")
    bz.clock.advance(3 * S)
    assert bz.spans() == [(0 * MS, 100 * MS), (200 * MS, 100 * MS), (400 * MS, 100 * MS)]
    assert bz.buzzer.idle


def test_new_one_shot_replaces_the_one_playing(bz):
    bz.buzzer.play("accept")
    bz.clock.advance(300 * MS)
    bz.buzzer.play("key")
    bz.clock.advance(3 * S)
    # accept cut short at 300 ms; the key chirp is a new beep from 300 ms to 350 ms
    assert bz.edges == [(0 * MS, True), (350 * MS, False)]


def test_delay_beeps_once_a_second_then_twice_in_the_last_10s(bz):
    bz.buzzer.start_delay_beeps(T0 + 15 * S)
    assert bz.buzzer.mode == "delay"
    bz.clock.advance(20 * S)
    spans = bz.spans()
    slow = [timedelta(seconds=s) for s in range(5)]
    fast = [timedelta(seconds=5) + k * 500 * MS for k in range(20)]
    assert [t for t, _ in spans] == slow + fast
    assert all(length == 100 * MS for _, length in spans)
    assert max(t for t, _ in spans) < 15 * S
    assert bz.buzzer.mode == "idle" and bz.buzzer.idle and bz.clock.next_due() is None


def test_a_restarted_delay_moves_the_end(bz):
    bz.buzzer.start_delay_beeps(T0 + 60 * S)
    bz.clock.advance(2500 * MS)
    bz.buzzer.start_delay_beeps(T0 + 2500 * MS + 12 * S)
    bz.clock.advance(30 * S)
    ons = bz.ons()
    assert ons[:3] == [0 * S, 1 * S, 2 * S]
    assert ons[3] == 2500 * MS  # restarted
    assert ons[4] == 3500 * MS  # 11 s left: still the slow rate
    assert ons[5] == 4500 * MS  # 10 s left: fast from here
    assert ons[6] == 5000 * MS
    assert ons[-1] < 14500 * MS and bz.buzzer.idle


def test_key_press_during_delay_plays_over_it_and_the_delay_continues(bz):
    bz.buzzer.start_delay_beeps(T0 + 30 * S)
    bz.clock.advance(1300 * MS)  # between the beeps of 1 s and 2 s
    bz.buzzer.play("refuse")
    bz.clock.advance(2 * S)
    assert bz.spans()[:6] == [
        (0 * MS, 100 * MS),
        (1000 * MS, 100 * MS),
        (1300 * MS, 100 * MS),  # the refusal
        (1500 * MS, 100 * MS),
        (1700 * MS, 100 * MS),
        (2000 * MS, 100 * MS),  # the delay beeps carry on underneath
    ]
    assert bz.buzzer.mode == "delay"


def test_one_shot_over_a_beep_that_is_on_keeps_the_buzzer_on(bz):
    bz.buzzer.start_delay_beeps(T0 + 30 * S)
    bz.clock.advance(1020 * MS)  # inside the beep at 1 s
    bz.buzzer.play("key")  # on until 1.07, inside the delay beep that lasts until 1.1
    bz.clock.advance(500 * MS)
    assert bz.spans()[1] == (1000 * MS, 100 * MS)  # one beep, to the later of both ends
    bz.buzzer.start_delay_beeps(T0 + 30 * S)  # restarted at 1.52: beeps at once
    bz.clock.advance(40 * MS)
    bz.buzzer.play("accept")  # 1.56 .. 2.56, joined by the delay beeps 1.52-1.62 and 2.52-2.62
    bz.clock.advance(2 * S)
    assert bz.spans()[2] == (1520 * MS, 1100 * MS)


def test_stop_ends_the_delay_beeps_and_lets_accept_finish(bz):
    bz.buzzer.start_delay_beeps(T0 + 30 * S)
    bz.clock.advance(3 * S)
    bz.buzzer.play("accept")
    bz.buzzer.stop()
    assert bz.buzzer.is_on  # the accept beep plays on
    bz.clock.advance(5 * S)
    assert bz.spans()[-1] == (3 * S, 1 * S)
    assert bz.buzzer.idle and bz.clock.next_due() is None


def test_silence_stops_everything_at_once(bz):
    bz.buzzer.start_delay_beeps(T0 + 30 * S)
    bz.buzzer.play("accept")
    bz.buzzer.silence()
    assert not bz.buzzer.is_on and bz.buzzer.idle and bz.clock.next_due() is None


def test_prearm_beeps_two_chirps_every_5s(bz):
    bz.buzzer.start_prearm_beeps(T0 + 12 * S)
    assert bz.buzzer.mode == "prearm"
    bz.clock.advance(20 * S)
    assert bz.ons() == [0 * MS, 200 * MS, 5000 * MS, 5200 * MS, 10000 * MS, 10200 * MS]
    assert bz.buzzer.idle


def test_prearm_one_shot(bz):
    bz.buzzer.play("prearm")
    bz.clock.advance(S)
    assert bz.spans() == [(0 * MS, 80 * MS), (200 * MS, 80 * MS)]


def test_delay_already_over_beeps_nothing(bz):
    bz.buzzer.start_delay_beeps(T0 - S)
    bz.clock.advance(5 * S)
    assert bz.edges == [] and bz.buzzer.idle


def test_bad_buzzer_requests_are_refused_without_change(bz):
    with pytest.raises(ValueError, match="unknown buzzer pattern 'siren'"):
        bz.buzzer.play("siren")
    with pytest.raises(ValueError, match="timezone-aware"):
        bz.buzzer.start_delay_beeps(datetime(2026, 1, 1, 12, 0))
    assert bz.buzzer.idle and bz.edges == []


def test_close_leaves_the_buzzer_off(bz, factory):
    bz.buzzer.start_delay_beeps(T0 + 30 * S)
    bz.clock.advance(20 * MS)
    assert bz.buzzer.is_on
    bz.buzzer.close()
    assert not bz.pin.state and bz.clock.next_due() is None
    bz.buzzer.play("key")  # after close: ignored, no error
    assert not bz.pin.state
