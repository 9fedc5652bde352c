"""The matrix keypad driver scanning the emulated matrix of mock pins, on a virtual clock."""

from __future__ import annotations

import asyncio
import dataclasses
import threading
from datetime import UTC, datetime, timedelta

import pytest

from controller.clock import VirtualClock
from hardware.backend import HardwareError, pin_factory_for
from hardware.keypad import MatrixKeypad
from hardware.pins import KeypadPins, SitePins
from hardware.sim import SimKeypad, SimulatedHardware, let_loop_run

T0 = datetime(2026, 2, 16, 19, 0, tzinfo=UTC)
MS = timedelta(milliseconds=1)

KP_4X3 = KeypadPins("kp3", (6, 13, 19, 26), (12, 16, 20), ("123", "456", "789", "*0#"))
KP_4X4 = KeypadPins("kp4", (4, 17, 27, 22), (5, 23, 24, 25), ("123A", "456B", "789C", "*0#D"))


def open_keypad(pins: KeypadPins, factory, clock, loop, on_key) -> MatrixKeypad:
    return MatrixKeypad(
        pins.rows, pins.cols, pins.layout, factory, clock, loop, on_key, name=pins.id
    )


class Rig:
    def __init__(self, keypad: KeypadPins, *, sim_first: bool = True) -> None:
        self.pins = SitePins(keypads=(keypad,))
        self.kpconf = keypad
        self.factory = pin_factory_for("simulated")
        self.clock = VirtualClock(T0)
        self.loop = asyncio.get_running_loop()
        self.keys: list[tuple[str, datetime]] = []
        self.threads: set[int] = set()
        if sim_first:
            self.sim = SimulatedHardware(self.pins, self.factory)
        self.kp = open_keypad(keypad, self.factory, self.clock, self.loop, self.on_key)
        if not sim_first:
            self.sim = SimulatedHardware(self.pins, self.factory)
        self.matrix: SimKeypad = self.sim.keypad(self.kpconf.id)

    def on_key(self, char: str, at: datetime) -> None:
        self.threads.add(threading.get_ident())
        self.keys.append((char, at))

    def typed(self) -> str:
        return "".join(c for c, _ in self.keys)

    async def advance(self, delta: timedelta) -> None:
        await let_loop_run()
        self.clock.advance(delta)
        await let_loop_run()

    def close(self) -> None:
        self.kp.close()
        self.sim.close()
        self.factory.close()


def run(keypad: dict, coro_fn, **kw):
    async def main():
        rig = Rig(keypad, **kw)
        try:
            await coro_fn(rig)
        finally:
            rig.close()

    asyncio.run(main())


@pytest.mark.parametrize("keypad", [KP_4X3, KP_4X4], ids=["4x3", "4x4"])
def test_every_key_through_the_emulated_matrix(keypad):
    async def body(rig: Rig):
        everything = "".join(rig.kpconf.layout)
        assert len(everything) == len(keypad.rows) * len(keypad.cols)
        await rig.sim.press_keys(rig.kpconf.id, everything, rig.clock)
        assert rig.typed() == everything
        assert rig.threads == {threading.get_ident()}
        assert rig.kp.idle and rig.clock.next_due() is None
        assert rig.matrix.conflicts == 0

    run(keypad, body)


def test_key_time_is_when_it_was_recognised():
    async def body(rig: Rig):
        await rig.sim.press_keys("kp3", "12", rig.clock)
        # pressed at 0 and at 200 ms (100 ms hold + 100 ms gap), each seen 20 ms later
        assert rig.keys == [("1", T0 + 20 * MS), ("2", T0 + 220 * MS)]

    run(KP_4X3, body)


def test_pins_are_set_up_as_designed():
    async def body(rig: Rig):
        for p in KP_4X3.cols:
            pin = rig.factory.pin(p)
            assert pin.function == "input" and pin.pull == "up" and pin.state
        for p in KP_4X3.rows:
            pin = rig.factory.pin(p)
            assert pin.function == "output" and not pin.state  # idle: every row driven low

    run(KP_4X3, body)


def test_a_held_key_gives_one_key():
    async def body(rig: Rig):
        rig.matrix.down("5")
        for _ in range(50):  # held for 5 s
            await rig.advance(100 * MS)
        assert rig.typed() == "5"
        assert rig.kp.state == "held" and rig.clock.next_due() is None  # waits for an edge
        rig.matrix.up("5")
        await rig.advance(100 * MS)
        assert rig.kp.idle
        await rig.sim.press_keys("kp3", "5", rig.clock)
        assert rig.typed() == "55"

    run(KP_4X3, body)


def test_two_keys_at_once_report_nothing():
    async def body(rig: Rig):
        rig.matrix.down("1", "9")
        await rig.advance(200 * MS)
        assert rig.keys == [] and rig.kp.ignored == 1
        rig.matrix.up("1")
        await rig.advance(200 * MS)
        assert rig.keys == []  # 9 is still down: nothing new until all are up
        rig.matrix.up("9")
        await rig.advance(200 * MS)
        assert rig.kp.idle
        await rig.sim.press_keys("kp3", "7", rig.clock)
        assert rig.typed() == "7"

    run(KP_4X3, body)


def test_second_key_while_first_is_held_is_ignored():
    async def body(rig: Rig):
        rig.matrix.down("1")
        await rig.advance(100 * MS)
        rig.matrix.down("2")
        await rig.advance(100 * MS)
        rig.matrix.up("1")
        await rig.advance(100 * MS)
        rig.matrix.up("2")
        await rig.advance(100 * MS)
        assert rig.typed() == "1" and rig.kp.idle

    run(KP_4X3, body)


def test_two_keys_in_one_column_never_short_two_outputs():
    async def body(rig: Rig):
        rig.matrix.down("1", "4")  # rows 1 and 2, column 1
        await rig.advance(200 * MS)
        rig.matrix.release_all()
        await rig.advance(200 * MS)
        assert rig.kp.scans >= 1 and rig.matrix.conflicts == 0 and rig.keys == []

    run(KP_4X3, body)


def test_ghost_key_of_three_pressed_together_is_not_reported():
    async def body(rig: Rig):
        # 1, 2 and 4 pressed: scanning row 2 also finds 5 through 4-1-2 (a ghost)
        rig.matrix.down("1", "2", "4")
        await rig.advance(200 * MS)
        rig.matrix.release_all()
        await rig.advance(200 * MS)
        assert rig.keys == [] and rig.kp.idle

    run(KP_4X3, body)


def test_ghost_is_real_in_the_emulation():
    # the sim really joins wires: with 1, 2 and 4 down and only row 2 driven low, column 2
    # (key 5's column) reads low although 5 is not pressed
    async def body(rig: Rig):
        rig.kp.close()
        rows = [rig.factory.pin(p) for p in KP_4X3.rows]
        cols = [rig.factory.pin(p) for p in KP_4X3.cols]
        for r in rows:
            r.function = "input"
        for c in cols:
            c.pull = "up"
        rig.matrix.down("1", "2", "4")
        rows[1].function = "output"
        rows[1].state = False
        assert [bool(c.state) for c in cols] == [False, False, True]

    run(KP_4X3, body)


def test_contact_glitch_shorter_than_debounce_is_no_key():
    async def body(rig: Rig):
        rig.matrix.down("3")
        await let_loop_run()
        await rig.advance(5 * MS)
        rig.matrix.up("3")
        await rig.advance(100 * MS)
        assert rig.keys == [] and rig.kp.idle

    run(KP_4X3, body)


def test_bouncy_press_gives_one_key():
    async def body(rig: Rig):
        for _ in range(4):
            rig.matrix.down("8")
            await let_loop_run()
            rig.matrix.up("8")
            await let_loop_run()
        rig.matrix.down("8")
        await rig.advance(100 * MS)
        for _ in range(3):  # bouncy release
            rig.matrix.up("8")
            await let_loop_run()
            rig.matrix.down("8")
            await let_loop_run()
        rig.matrix.up("8")
        await rig.advance(100 * MS)
        assert rig.typed() == "8" and rig.kp.idle

    run(KP_4X3, body)


def test_idle_keypad_schedules_nothing_and_starts_no_thread():
    async def body(rig: Rig):
        before = threading.active_count()
        await rig.sim.press_keys("kp3", "2468#", rig.clock)
        scans = rig.kp.scans
        assert scans == 5
        for _ in range(10):  # a minute with nobody typing
            await rig.advance(timedelta(seconds=6))
        assert rig.kp.scans == scans  # no polling
        assert rig.kp.idle and rig.clock.next_due() is None
        assert threading.active_count() == before

    run(KP_4X3, body)


def test_driver_started_after_the_sim_or_before_works_the_same():
    async def body(rig: Rig):
        await rig.sim.press_keys("kp3", "0*#", rig.clock)
        assert rig.typed() == "0*#"

    run(KP_4X3, body, sim_first=False)


def test_key_held_at_start_is_not_reported():
    async def body():
        factory = pin_factory_for("simulated")
        sim = SimulatedHardware(SitePins(keypads=(KP_4X3,)), factory)
        sim.keypad("kp3").down("5")  # stuck key, or a guard leaning on it at boot
        clock = VirtualClock(T0)
        keys: list = []
        kp = open_keypad(
            KP_4X3,
            factory,
            clock,
            asyncio.get_running_loop(),
            lambda c, t: keys.append(c),
        )
        try:
            await let_loop_run()
            clock.advance(timedelta(seconds=1))
            assert keys == [] and kp.state == "held"
            sim.keypad("kp3").up("5")
            await let_loop_run()
            clock.advance(100 * MS)
            await sim.press_keys("kp3", "5", clock)
            assert keys == ["5"]
        finally:
            kp.close()
            sim.close()
            factory.close()

    asyncio.run(body())


def test_on_key_error_does_not_stop_the_keypad():
    async def body(rig: Rig):
        def bad(char, at):
            rig.keys.append((char, at))
            raise RuntimeError("boom")

        rig.kp._on_key = bad
        await rig.sim.press_keys("kp3", "12", rig.clock)
        assert rig.typed() == "12" and rig.kp.idle

    run(KP_4X3, body)


def test_closed_keypad_reports_nothing_and_frees_its_pins():
    async def body(rig: Rig):
        rig.kp.close()
        await rig.sim.press_keys("kp3", "1", rig.clock)
        assert rig.keys == [] and rig.kp.state == "closed"
        again = open_keypad(rig.kpconf, rig.factory, rig.clock, rig.loop, rig.on_key)
        await rig.sim.press_keys("kp3", "2", rig.clock)
        again.close()
        assert rig.typed() == "2"

    run(KP_4X3, body)


def test_custom_layout():
    kp = dataclasses.replace(KP_4X3, rows=(6, 13), layout=("AB#", "CD*"))

    async def body(rig: Rig):
        await rig.sim.press_keys("kp3", "DCBA*#", rig.clock)
        assert rig.typed() == "DCBA*#"

    run(kp, body)


def test_bad_layout_and_pin_clash_are_clear_errors():
    async def body():
        f = pin_factory_for("simulated")
        clock = VirtualClock(T0)
        loop = asyncio.get_running_loop()
        with pytest.raises(ValueError, match="layout row 2"):
            MatrixKeypad([1, 2], [3, 4], ["12", "345"], f, clock, loop, print)
        with pytest.raises(ValueError, match="gives 1 rows"):
            MatrixKeypad([1, 2], [3, 4], ["12"], f, clock, loop, print)
        with pytest.raises(HardwareError, match=r"column 2: GPIO3"):
            MatrixKeypad([2, 3], [4, 3], ["ab", "cd"], f, clock, loop, print)
        # the failed attempt released the pins it had taken
        ok = MatrixKeypad([2, 3], [4, 5], ["ab", "cd"], f, clock, loop, print)
        ok.close()
        f.close()

    asyncio.run(body())


def test_sim_refuses_unknown_keys_without_pressing_anything():
    async def body(rig: Rig):
        with pytest.raises(ValueError, match="no key 'A'"):
            await rig.sim.press_keys("kp3", "12A", rig.clock)
        with pytest.raises(KeyError, match="unknown keypad 'kp9'"):
            await rig.sim.press_keys("kp9", "1", rig.clock)
        with pytest.raises(ValueError, match="give the keys"):
            await rig.sim.press_keys("kp3", "", rig.clock)
        await rig.advance(timedelta(seconds=1))
        assert rig.keys == [] and rig.matrix.pressed == set() and rig.kp.idle

    run(KP_4X3, body)
