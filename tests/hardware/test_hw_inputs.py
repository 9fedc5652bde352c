"""Sensor inputs on mock pins, from plain values: pull and polarity, debounce on the virtual
clock, thread hand-off."""

from __future__ import annotations

import asyncio
import threading
from datetime import UTC, datetime, timedelta

import pytest

from controller.clock import VirtualClock
from hardware.backend import HardwareError, SimPin, pin_factory_for
from hardware.inputs import Inputs, SensorInput
from hardware.pins import InputPin, SitePins
from hardware.sim import SimulatedHardware, let_loop_run

T0 = datetime(2026, 2, 16, 19, 0, tzinfo=UTC)
MS = timedelta(milliseconds=1)

PINS = (
    InputPin("door", 17, pull_up=True, active_high=True),  # normally-closed loop to GND
    InputPin("pir", 27, pull_up=None, active_high=True),  # a module's push-pull output
    InputPin("panic", 22, pull_up=True, active_high=False),  # normally-open button to GND
    InputPin("smoke", 23, pull_up=None, active_high=False),
)


class Rig:
    """Inputs + simulated wiring on one virtual clock and the running loop."""

    def __init__(self, debounce: timedelta = 30 * MS, pins: tuple[InputPin, ...] = PINS) -> None:
        self.factory = pin_factory_for("simulated")
        self.clock = VirtualClock(T0)
        self.loop = asyncio.get_running_loop()
        self.sim = SimulatedHardware(SitePins(inputs=pins), self.factory)
        self.changes: list[tuple[str, bool, datetime]] = []
        self.threads: set[int] = set()
        self.inputs = Inputs(pins, self.factory, self.clock, self.loop, self.record, debounce)

    def contact(self, sensor_id: str, pin: int, **kwargs) -> SensorInput:
        """One more normally-closed contact on the rig's pins, clock and loop."""
        return SensorInput(
            sensor_id,
            pin,
            self.factory,
            self.clock,
            self.loop,
            self.record,
            pull_up=True,
            active_high=True,
            **kwargs,
        )

    def record(self, sensor_id: str, active: bool, at: datetime) -> None:
        self.threads.add(threading.get_ident())
        self.changes.append((sensor_id, active, at))

    async def advance(self, delta: timedelta) -> None:
        await let_loop_run()
        self.clock.advance(delta)
        await let_loop_run()

    def close(self) -> None:
        self.inputs.close()
        self.sim.close()
        self.factory.close()


def run(coro_fn):
    async def main():
        rig = Rig()
        try:
            await coro_fn(rig)
        finally:
            rig.close()

    asyncio.run(main())


# ----------------------------------------------------------------------------- polarity


@pytest.mark.parametrize(
    ("pull_up", "active_high", "pull"),
    [
        (True, True, "up"),  # normally-closed contact to GND
        (True, False, "up"),  # normally-open contact to GND
        (None, True, "floating"),  # push-pull module output
        (None, False, "floating"),
        (False, True, "down"),  # normally-open contact to 3.3 V
        (False, False, "down"),  # normally-closed contact to 3.3 V
    ],
)
def test_pull_and_active_level_set_the_pin_and_its_polarity(pull_up, active_high, pull):
    async def body():
        rig = Rig(pins=(InputPin("s", 17, pull_up=pull_up, active_high=active_high),))
        try:
            pin = rig.factory.pin(17)
            assert pin.pull == pull
            assert rig.inputs["s"].read() is False and rig.inputs["s"].active is False
            assert bool(pin.state) is (not active_high)
            rig.sim.set("s", True)
            assert bool(pin.state) is active_high
            await let_loop_run()
            assert [(s, a) for s, a, _ in rig.changes] == [("s", True)]
            assert rig.inputs["s"].read() is True and rig.inputs["s"].active is True
            await rig.advance(50 * MS)
            rig.sim.set("s", False)
            await let_loop_run()
            assert [(s, a) for s, a, _ in rig.changes] == [("s", True), ("s", False)]
        finally:
            rig.close()

    asyncio.run(body())


def test_nc_contact_needs_the_pull_up():
    # An open normally-closed loop drives nothing: only the pull-up makes it read high. The sim
    # models that (sim_drive(None)), so a driver without the pull-up would miss the open door.
    async def body(rig: Rig):
        pin: SimPin = rig.factory.pin(17)
        rig.sim.set("door", True)
        assert pin.external is None and pin.pull == "up" and pin.state
        assert rig.inputs["door"].read() is True

    run(body)


def test_every_kind_of_input_reads_quiet_at_boot():
    async def body(rig: Rig):
        assert rig.inputs.baseline() == {
            "door": False,
            "pir": False,
            "panic": False,
            "smoke": False,
        }
        assert rig.inputs.states() == rig.inputs.baseline()
        assert rig.changes == []

    run(body)


def test_baseline_reads_sensors_active_at_boot_without_reporting():
    async def body():
        factory = pin_factory_for("simulated")
        sim = SimulatedHardware(SitePins(inputs=PINS), factory)
        sim.set("door", True)
        sim.set("panic", True)
        loop = asyncio.get_running_loop()
        changes: list = []
        inputs = Inputs(PINS, factory, VirtualClock(T0), loop, lambda *a: changes.append(a))
        try:
            await let_loop_run()
            assert inputs.baseline() == {"door": True, "pir": False, "panic": True, "smoke": False}
            assert inputs["door"].active is True
            assert changes == []  # the boot baseline is read, not reported
        finally:
            inputs.close()
            sim.close()
            factory.close()

    asyncio.run(body())


# ----------------------------------------------------------------------------- debounce


def test_leading_edge_is_reported_at_once():
    async def body(rig: Rig):
        rig.sim.set("door", True)
        await let_loop_run()  # no clock movement at all
        assert rig.changes == [("door", True, T0)]

    run(body)


def test_bouncy_edges_give_one_change():
    async def body(rig: Rig):
        for level in (True, False, True, False, True, False, True):
            rig.sim.set("door", level)
            await let_loop_run(1)
        await rig.advance(10 * MS)
        for level in (False, True):
            rig.sim.set("door", level)
            await let_loop_run(1)
        await rig.advance(100 * MS)
        assert rig.changes == [("door", True, T0)]
        assert rig.inputs["door"].active is True
        assert not rig.inputs["door"].settling
        assert rig.clock.next_due() is None

    run(body)


def test_change_during_lockout_is_not_lost():
    async def body(rig: Rig):
        rig.sim.set("door", True)
        await let_loop_run()
        await rig.advance(5 * MS)
        rig.sim.set("door", False)  # closed again within the debounce time
        await let_loop_run()
        assert [a for _, a, _ in rig.changes] == [True]
        await rig.advance(25 * MS)  # the lockout ends: the pin is read again
        assert rig.changes == [("door", True, T0), ("door", False, T0 + 30 * MS)]
        # the second change starts its own lockout, then all is quiet
        await rig.advance(30 * MS)
        assert len(rig.changes) == 2
        assert rig.clock.next_due() is None

    run(body)


def test_blip_shorter_than_debounce_while_active_is_filtered():
    async def body(rig: Rig):
        rig.sim.set("pir", True)
        await rig.advance(100 * MS)
        rig.sim.set("pir", False)
        await let_loop_run()
        await rig.advance(5 * MS)
        rig.sim.set("pir", True)
        await rig.advance(50 * MS)
        # the drop was reported at once (leading edge) and the return after the lockout
        assert [a for _, a, _ in rig.changes] == [True, False, True]
        assert rig.changes[2][2] == T0 + 130 * MS

    run(body)


def test_sensors_debounce_independently():
    async def body(rig: Rig):
        rig.sim.set("door", True)
        rig.sim.set("pir", True)
        await let_loop_run()
        rig.sim.set("door", False)
        await let_loop_run()
        assert {(s, a) for s, a, _ in rig.changes} == {("door", True), ("pir", True)}
        await rig.advance(30 * MS)
        assert ("door", False, T0 + 30 * MS) in rig.changes
        assert rig.inputs.states() == {"door": False, "pir": True, "panic": False, "smoke": False}

    run(body)


def test_edges_from_another_thread_are_handled_on_the_loop_thread():
    async def body(rig: Rig):
        loop_thread = threading.get_ident()
        t = threading.Thread(target=rig.sim.set, args=("door", True))
        t.start()
        t.join()
        for _ in range(100):
            if rig.changes:
                break
            await asyncio.sleep(0)
        assert [(s, a) for s, a, _ in rig.changes] == [("door", True)]
        assert rig.threads == {loop_thread}

    run(body)


def test_a_burst_of_edges_from_threads_wakes_the_loop_once_and_keeps_their_order():
    async def body(rig: Rig):
        loop = asyncio.get_running_loop()
        wakeups = 0
        real = loop.call_soon_threadsafe

        def counting(cb, *args):  # type: ignore[no-untyped-def]
            nonlocal wakeups
            wakeups += 1
            return real(cb, *args)

        loop.call_soon_threadsafe = counting  # type: ignore[method-assign]
        try:
            order = ["door", "pir", "panic", "smoke"]

            def storm() -> None:
                for sid in order:
                    rig.sim.set(sid, True)

            t = threading.Thread(target=storm)
            t.start()
            t.join()
            await let_loop_run()
        finally:
            del loop.call_soon_threadsafe
        assert [(s, a) for s, a, _ in rig.changes] == [(sid, True) for sid in order]
        assert wakeups == 1
        assert rig.threads == {threading.get_ident()}
        # the next burst wakes the loop again
        await rig.advance(40 * MS)
        t = threading.Thread(target=rig.sim.set, args=("door", False))
        t.start()
        t.join()
        await let_loop_run()
        assert rig.changes[-1][:2] == ("door", False)

    run(body)


def test_resync_reports_a_missed_change():
    async def body(rig: Rig):
        # the pin changes with no edge delivered (as if the GPIO library lost one)
        pin: SimPin = rig.factory.pin(27)
        saved = pin.when_changed
        pin.when_changed = None
        rig.sim.set("pir", True)
        pin.when_changed = saved
        await let_loop_run()
        assert rig.changes == []
        assert rig.inputs.resync() == ["pir"]
        assert rig.changes == [("pir", True, T0)]
        assert rig.inputs.resync() == []

    run(body)


def test_callback_error_does_not_break_debounce():
    async def body():
        factory = pin_factory_for("simulated")
        sim = SimulatedHardware(SitePins(inputs=PINS), factory)
        clock = VirtualClock(T0)
        seen: list = []

        def bad(sensor_id, active, at):
            seen.append(active)
            raise RuntimeError("boom")

        loop = asyncio.get_running_loop()
        inp = SensorInput("door", 17, factory, clock, loop, bad, pull_up=True, active_high=True)
        try:
            sim.set("door", True)
            await let_loop_run()
            sim.set("door", False)
            await let_loop_run()
            clock.advance(30 * MS)
            assert seen == [True, False]
            assert inp.active is False
        finally:
            inp.close()
            sim.close()
            factory.close()

    asyncio.run(body())


def test_closed_input_reports_nothing():
    async def body(rig: Rig):
        rig.inputs["door"].close()
        rig.sim.set("door", True)
        await rig.advance(100 * MS)
        assert rig.changes == []

    run(body)


# ----------------------------------------------------------------------------- errors


def test_pin_in_use_is_a_clear_error():
    async def body(rig: Rig):
        with pytest.raises(HardwareError, match=r"sensor dup: GPIO17"):
            rig.contact("dup", 17)

    run(body)


def test_inputs_are_released_when_one_fails():
    async def body():
        factory = pin_factory_for("simulated")
        pins = [InputPin("a", 17, True, True), InputPin("b", 17, True, True)]
        loop = asyncio.get_running_loop()
        with pytest.raises(HardwareError, match="sensor b"):
            Inputs(pins, factory, VirtualClock(T0), loop, print)
        # sensor a's pin was released again
        inp = SensorInput(
            "a", 17, factory, VirtualClock(T0), loop, print, pull_up=True, active_high=True
        )
        inp.close()
        factory.close()

    asyncio.run(body())


def test_unknown_sensor_lookup_and_bad_arguments():
    async def body(rig: Rig):
        with pytest.raises(KeyError, match="unknown sensor 'nope'"):
            rig.inputs["nope"]
        with pytest.raises(ValueError, match="debounce"):
            rig.contact("x", 5, debounce=timedelta(seconds=-1))

    run(body)
