"""The mapping from the site config to the drivers' plain values (controller/wiring.py): what
each `wiring:` word means for the pin, each type's default, and the whole reference site."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from typing import get_args

import pytest

from controller.clock import VirtualClock
from controller.config import SiteConfig
from controller.sensor_types import SENSOR_TYPES, Wiring
from controller.wiring import active_level, input_pin, pull_and_level, site_pins
from hardware.backend import pin_factory_for
from hardware.inputs import Inputs
from hardware.pins import InputPin, KeypadPins, OutputPin
from hardware.sim import SimulatedHardware, let_loop_run

T0 = datetime(2026, 2, 16, 19, 0, tzinfo=UTC)


def _site(sensor: dict) -> SiteConfig:
    return SiteConfig.model_validate(
        {"site": {"id": "t"}, "zones": [{"id": "z"}], "sensors": [{"zone": "z", **sensor}]}
    )


@pytest.mark.parametrize(
    ("wiring", "pull_up", "level_when_active"),
    [
        ("nc", True, True),  # a closed loop to GND reads low; open or cut, the pull-up wins
        ("no", True, False),
        ("active_high", None, True),  # a module's own output: no pull resistor
        ("active_low", None, False),
    ],
)
def test_each_wiring_word_means_a_pull_resistor_and_an_active_level(
    wiring: str, pull_up: bool | None, level_when_active: bool
) -> None:
    assert pull_and_level(wiring) == (pull_up, level_when_active)
    assert active_level(wiring) is level_when_active


def test_every_wiring_the_config_accepts_has_a_meaning_and_an_unknown_word_is_refused() -> None:
    for wiring in get_args(Wiring):
        pull_and_level(wiring)
    with pytest.raises(ValueError, match="unknown wiring 'twisted'"):
        active_level("twisted")


@pytest.mark.parametrize("kind", sorted(SENSOR_TYPES))
def test_a_sensor_without_wiring_gets_its_types_default(kind: str) -> None:
    sensor = _site({"id": "s", "type": kind, "pin": 17}).sensors[0]
    pull_up, active_high = pull_and_level(SENSOR_TYPES[kind].default_wiring)
    assert input_pin(sensor) == InputPin("s", 17, pull_up, active_high)


def test_a_sensors_own_wiring_overrides_its_types_default() -> None:
    sensor = _site({"id": "s", "type": "door", "pin": 17, "wiring": "active_low"}).sensors[0]
    assert input_pin(sensor) == InputPin("s", 17, None, False)


@pytest.mark.parametrize(
    ("wiring", "pull"),
    [("nc", "up"), ("no", "up"), ("active_high", "floating"), ("active_low", "floating")],
)
def test_a_configured_sensor_reads_active_at_its_wirings_level_on_the_twin(
    wiring: str, pull: str
) -> None:
    async def body() -> None:
        config = _site({"id": "s", "type": "door", "pin": 17, "wiring": wiring})
        pins = site_pins(config)
        factory = pin_factory_for("simulated")
        sim = SimulatedHardware(pins, factory)
        changes: list[bool] = []
        inputs = Inputs(
            pins.inputs,
            factory,
            VirtualClock(T0),
            asyncio.get_running_loop(),
            lambda sid, active, at: changes.append(active),
            config.hardware.debounce,
        )
        try:
            pin = factory.pin(17)
            assert pin.pull == pull and inputs["s"].read() is False
            sim.set("s", True)
            await let_loop_run()
            assert bool(pin.state) is active_level(wiring)
            assert changes == [True] and inputs["s"].active is True
        finally:
            inputs.close()
            sim.close()
            factory.close()

    asyncio.run(body())


def test_the_reference_site_maps_onto_its_pin_map(ref_config: SiteConfig) -> None:
    pins = site_pins(ref_config)
    assert [(p.id, p.pin) for p in pins.inputs] == [(s.id, s.pin) for s in ref_config.sensors]
    by_id = {p.id: p for p in pins.inputs}  # as hardware/README.md's pin map wires them
    assert by_id["door.director"] == InputPin("door.director", 17, True, True)
    assert by_id["pir.director"] == InputPin("pir.director", 27, None, True)
    assert pins.outputs == (OutputPin("siren.hall", 5, True),)
    assert pins.keypads == (
        KeypadPins("keypad.hall", (6, 13, 19, 26), (12, 16, 20), ("123", "456", "789", "*0#"), 21),
    )
    assert pins.serial_ports == ("rf.roof",)
