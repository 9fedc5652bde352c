"""The simulated twin on the reference config, and choosing the pin backend."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from gpiozero.pins.mock import MockFactory

from controller.clock import RealClock, VirtualClock
from controller.config import load_config
from controller.wiring import site_pins
from hardware.backend import HardwareError, SimPin, is_simulated, pin_factory_for
from hardware.inputs import Inputs
from hardware.outputs import Buzzer, Outputs
from hardware.serial_line import SerialLineReader
from hardware.sim import SimulatedHardware, UnknownDevice, let_loop_run, pass_time
from tests.conftest import REFERENCE

T0 = datetime(2026, 2, 16, 19, 0, tzinfo=UTC)
MS = timedelta(milliseconds=1)


@pytest.fixture
def config():
    return load_config(REFERENCE).config


class Site:
    """The reference site's drivers on simulated hardware."""

    def __init__(self, config, tmp: Path) -> None:
        self.config = config
        self.factory = pin_factory_for("simulated")
        self.clock = VirtualClock(T0)
        self.loop = asyncio.get_running_loop()
        pins = site_pins(config)
        self.sim = SimulatedHardware(pins, self.factory, serial_dir=tmp)
        self.changes: list[tuple[str, bool, datetime]] = []
        self.inputs = Inputs(
            pins.inputs,
            self.factory,
            self.clock,
            self.loop,
            lambda *a: self.changes.append(a),
            config.hardware.debounce,
        )
        self.outputs = Outputs.from_pins(pins.outputs, self.factory)

    def close(self) -> None:
        self.inputs.close()
        self.outputs.close()
        self.sim.close()
        self.factory.close()


def run(config, tmp_path, coro_fn):
    async def main():
        site = Site(config, tmp_path)
        try:
            await coro_fn(site)
        finally:
            site.close()

    asyncio.run(main())


# ----------------------------------------------------------------------------- sensors


def test_every_reference_sensor_starts_quiet_and_follows_set(config, tmp_path):
    async def body(site: Site):
        assert site.inputs.baseline() == {s.id: False for s in config.sensors}
        for s in config.sensors:
            site.sim.set(s.id, True)
            await let_loop_run()
            assert site.inputs[s.id].read() is True
            site.clock.advance(50 * MS)
            site.sim.set(s.id, "inactive")
            await let_loop_run()
            site.clock.advance(50 * MS)
        assert [(sid, a) for sid, a, _ in site.changes] == [
            (s.id, a) for s in config.sensors for a in (True, False)
        ]

    run(config, tmp_path, body)


def test_door_contact_levels_follow_the_wiring(config, tmp_path):
    async def body(site: Site):
        assert site.sim.level("door.director") is False  # nc loop closed to GND
        assert site.sim.level("pir.director") is False  # PIR output low
        site.sim.set("door.director", "active")
        site.sim.set("pir.director", True)
        assert site.sim.level("door.director") is True  # loop open: the pull-up wins
        assert site.sim.level("pir.director") is True

    run(config, tmp_path, body)


def test_unknown_sensor_is_a_clear_key_error_and_changes_nothing(config, tmp_path):
    async def body(site: Site):
        with pytest.raises(KeyError) as err:
            site.sim.set("door.ceo", True)
        assert isinstance(err.value, UnknownDevice)
        assert str(err.value).startswith("unknown sensor 'door.ceo' (known: door.director, ")
        with pytest.raises(ValueError, match="'active' or 'inactive'"):
            site.sim.set("door.director", "open")
        with pytest.raises(TypeError, match="True/False"):
            site.sim.set("door.director", 1)
        await let_loop_run()
        assert site.changes == [] and site.inputs.baseline()["door.director"] is False

    run(config, tmp_path, body)


def test_pulses_on_the_virtual_clock(config, tmp_path):
    async def body(site: Site):
        await site.sim.pulse("vib.safe1", 3, 0.5, 0.1, site.clock)
        starts = [at for sid, active, at in site.changes if active]
        ends = [at for sid, active, at in site.changes if not active]
        assert starts == [T0, T0 + 500 * MS, T0 + 1000 * MS]
        assert ends == [T0 + 100 * MS, T0 + 600 * MS, T0 + 1100 * MS]
        assert site.clock.now() == T0 + 1100 * MS  # no trailing gap after the last pulse

    run(config, tmp_path, body)


def test_pulse_arguments_are_checked_before_anything_moves(config, tmp_path):
    async def body(site: Site):
        bad = [
            ({"count": 0}, ValueError, "count"),
            ({"count": True}, ValueError, "count"),
            ({"width": 0}, ValueError, "width must be positive"),
            ({"interval": 0.1, "width": 0.1}, ValueError, "longer than the pulse width"),
            ({"interval": "1s"}, TypeError, "interval must be a duration"),
        ]
        for kwargs, exc, match in bad:
            with pytest.raises(exc, match=match):
                await site.sim.pulse("vib.safe1", clock=site.clock, **kwargs)
        with pytest.raises(KeyError, match="unknown sensor"):
            await site.sim.pulse("vib.nope", clock=site.clock)
        with pytest.raises(TypeError, match="clock"):
            await site.sim.pulse("vib.safe1")
        assert site.changes == [] and site.clock.now() == T0

    run(config, tmp_path, body)


def test_pulse_with_a_real_clock_waits_instead_of_advancing(config, tmp_path):
    async def body(site: Site):
        await site.sim.pulse("vib.safe1", 2, 0.004, 0.002, RealClock(site.loop))
        await let_loop_run()
        site.clock.advance(50 * MS)  # the inputs' own debounce runs on the virtual clock
        assert site.clock.now() == T0 + 50 * MS  # the pulse did not move the virtual clock
        assert [a for _, a, _ in site.changes][0] is True
        assert site.inputs["vib.safe1"].active is False

    run(config, tmp_path, body)


def test_pass_time_uses_the_daemons_advance_when_given():
    async def body():
        clock = VirtualClock(T0)
        seen: list[timedelta] = []

        async def advance(delta: timedelta) -> None:
            seen.append(delta)
            clock.advance(delta)

        await pass_time(clock, 250 * MS, advance)
        assert seen == [250 * MS] and clock.now() == T0 + 250 * MS
        with pytest.raises(ValueError, match="backwards"):
            await pass_time(clock, -MS)

    asyncio.run(body())


# ----------------------------------------------------------------------------- outputs


def test_output_states_read_from_the_pins(config, tmp_path):
    async def body(site: Site):
        assert site.sim.output_states() == {"siren.hall": False}
        site.outputs.set("siren.hall", True)
        assert site.sim.output_states() == {"siren.hall": True}
        buzzer = Buzzer(21, site.factory, site.clock)
        buzzer.play("key")
        assert site.sim.output_states(include_buzzers=True) == {
            "siren.hall": True,
            "keypad.hall.buzzer": True,
        }
        site.clock.advance(100 * MS)
        assert site.sim.output_states(include_buzzers=True)["keypad.hall.buzzer"] is False
        buzzer.close()

    run(config, tmp_path, body)


def test_outputs_with_no_driver_read_off():
    async def body():
        config = load_config(REFERENCE).config
        factory = pin_factory_for("simulated")
        sim = SimulatedHardware(site_pins(config), factory)
        try:
            assert sim.output_states(include_buzzers=True) == {
                "siren.hall": False,
                "keypad.hall.buzzer": False,
            }
        finally:
            sim.close()
            factory.close()

    asyncio.run(body())


# ----------------------------------------------------------------------------- serial


def test_serial_line_reaches_the_real_reader(config, tmp_path):
    async def body(site: Site):
        port = site.sim.serial_port("rf.roof")
        assert port == str(tmp_path / "rf.roof.tty")
        lines: list[bytes] = []
        reader = SerialLineReader(
            port, 115200, site.clock, site.loop, lambda b, at, tl: lines.append(b), print
        )
        reader.start()
        try:
            site.sim.write_serial("rf.roof", '{"v":1,"t":"hello"}*00000000')
            for _ in range(3000):
                if lines:
                    break
                await asyncio.sleep(0.001)
            assert lines == [b'{"v":1,"t":"hello"}*00000000']
        finally:
            reader.stop()
        with pytest.raises(KeyError, match="unknown drone detector 'rf.x' \\(known: rf.roof\\)"):
            site.sim.write_serial("rf.x", "x")

    run(config, tmp_path, body)


def test_sim_cleans_up_its_temporary_serial_directory(config):
    factory = pin_factory_for("simulated")
    sim = SimulatedHardware(site_pins(config), factory)
    link = Path(sim.serial_port("rf.roof"))
    assert link.is_symlink()
    sim.close()
    assert not link.parent.exists()
    factory.close()


# ----------------------------------------------------------------------------- backend


def test_simulated_backend_gives_sim_pins():
    f = pin_factory_for("simulated")
    try:
        assert is_simulated(f) and isinstance(f.pin(17), SimPin)
    finally:
        f.close()


def test_sim_needs_the_simulated_factory(config):
    plain = MockFactory()
    with pytest.raises(TypeError, match="pin_factory_for\\('simulated'\\)"):
        SimulatedHardware(site_pins(config), plain)
    plain.close()


def test_gpio_backend_without_gpio_is_a_clear_error(monkeypatch):
    monkeypatch.delenv("GPIOZERO_PIN_FACTORY", raising=False)
    try:
        import lgpio  # noqa: F401
    except ImportError:
        pass
    else:  # pragma: no cover - running on a Raspberry Pi
        pytest.skip("this machine has GPIO")
    with pytest.raises(HardwareError, match="no GPIO found on this machine") as err:
        pin_factory_for("gpio")
    assert "--simulate" in str(err.value)


def test_gpio_backend_honours_the_mock_environment_variable(monkeypatch):
    monkeypatch.setenv("GPIOZERO_PIN_FACTORY", "mock")
    f = pin_factory_for("gpio")
    assert is_simulated(f)
    f.close()


def test_unknown_backend():
    with pytest.raises(HardwareError, match="unknown hardware backend 'arduino'"):
        pin_factory_for("arduino")


def test_sim_pin_holds_its_level_whatever_pull_the_driver_sets():
    f = pin_factory_for("simulated")
    pin: SimPin = f.pin(17)
    pin.sim_drive(False)
    pin.pull = "up"  # a driver setting its pull-up after the sim drove the pin
    assert pin.state is False
    pin.sim_drive(None)  # let go: the pull-up decides
    assert pin.state is True
    pin.pull = "down"
    assert pin.state is False
    f.close()
