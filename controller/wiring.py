"""From the site config to the drivers' plain values (hardware.pins): the one place that knows
what a `wiring:` word means for a pin, and which pins a sensor, siren or keypad uses.

hardware/ takes pins, pull resistors and levels as gpiozero does and knows nothing of the
config; the config knows each sensor type's usual wiring (controller/sensor_types.py). This
module joins the two, so the drivers and the simulated twin are built from the same values.
"""

from __future__ import annotations

from controller.config import Keypad, Loop, Sensor, Siren, SiteConfig
from controller.sensor_types import Wiring
from hardware.pins import InputPin, KeypadPins, OutputPin, SitePins

# wiring -> (gpiozero pull_up, the pin level at which the sensor is active); hardware/README.md
_WIRING: dict[str, tuple[bool | None, bool]] = {
    # a normally-closed contact to GND on the pull-up: quiet reads LOW, an opened loop or a cut
    # wire lets the pull-up win, so active is HIGH
    "nc": (True, True),
    "no": (True, False),  # a normally-open contact to GND: active when it closes, LOW
    "active_high": (None, True),  # a module's own push-pull output: no pull resistor
    "active_low": (None, False),
}


def pull_and_level(wiring: Wiring | str) -> tuple[bool | None, bool]:
    """gpiozero's `pull_up` for a sensor wired this way, and the level (True = high) at which it
    is active. Raises ValueError for a word that is no wiring."""
    try:
        return _WIRING[wiring]
    except KeyError:
        raise ValueError(
            f"unknown wiring {wiring!r}: use nc, no, active_high or active_low"
        ) from None


def active_level(wiring: Wiring | str) -> bool:
    """The pin level (True = high) at which a sensor wired this way is active."""
    return pull_and_level(wiring)[1]


def input_pin(sensor: Sensor) -> InputPin:
    """A sensor's input, with its type's default wiring where the config gives none."""
    if sensor.pin is None:
        raise ValueError(f"sensor {sensor.id} is a supervised loop on the ADC, not on a pin")
    pull_up, active_high = pull_and_level(sensor.effective_wiring)
    return InputPin(sensor.id, sensor.pin, pull_up, active_high)


def output_pin(siren: Siren) -> OutputPin:
    return OutputPin(siren.id, siren.pin, siren.active_high)


def keypad_pins(keypad: Keypad) -> KeypadPins:
    """A keypad's matrix and buzzer pins, with its layout (the 4x3 or 4x4 default if not set)."""
    return KeypadPins(
        keypad.id, tuple(keypad.rows), tuple(keypad.cols), tuple(keypad.layout), keypad.buzzer
    )


def site_pins(config: SiteConfig) -> SitePins:
    """Everything the config wires to the Pi; the drone detectors' ids name its serial lines."""
    return SitePins(
        # supervised loops are read through the ADC (controller/supervision/), not a pin
        inputs=tuple(input_pin(s) for s in config.sensors if s.pin is not None)
        + power_pins(config),
        outputs=tuple(output_pin(s) for s in config.sirens),
        keypads=tuple(keypad_pins(k) for k in config.keypads),
        serial_ports=tuple(d.id for d in config.drone_detectors),
    )


MAINS_INPUT = "@mains"  # no config id starts with @: the mains pin's name among the inputs


def power_pins(config: SiteConfig) -> tuple[InputPin, ...]:
    """The mains input on a pin (`power.mains.pin`), active while mains is present."""
    p = config.power
    if p is None or p.mains is None or p.mains.pin is None:
        return ()
    return (InputPin(MAINS_INPUT, p.mains.pin, True, p.mains.present == "high"),)


def adc_channels(config: SiteConfig) -> tuple[int, ...]:
    """The ADC channels in use (loops, mains, battery, siren lines), in order."""
    chans = [s.loop.channel for s in config.sensors if s.loop is not None]
    p = config.power
    if p is not None:
        chans += [x.channel for x in (p.mains, p.battery) if x is not None and x.channel is not None]
        chans += [s.channel for s in p.sirens]
    return tuple(sorted(chans))


def loop_volts(loop: Loop, vref: float, state: str) -> float:
    """What a loop reads in this state: a cut the full reference, a short 0 V (whatever the
    bands say, as the copper does), normal and alarm the middle of their band."""
    if state == "cut":
        return vref
    if state == "short":
        return 0.0
    band = next((b for b in loop.band_set(vref) if b.state == state), None)
    if band is None:
        raise ValueError(f"this loop has no {state} band")
    return round((band.lo + band.hi) / 2, 4)


def twin_volts(config: SiteConfig) -> dict[int, float]:
    """What each channel of the simulated ADC reads on a quiet, healthy site: loops in the middle
    of their normal band, mains present, a charged battery (13.2 V), siren lines mid-range."""
    vref = config.adc.vref if config.adc is not None else 3.3
    out: dict[int, float] = {}
    for s in config.sensors:
        if s.loop is not None:
            out[s.loop.channel] = loop_volts(s.loop, vref, "normal")
    p = config.power
    if p is not None:
        if p.mains is not None and p.mains.channel is not None:
            out[p.mains.channel] = vref
        if p.battery is not None:
            out[p.battery.channel] = round(min(vref, 13.2 / p.battery.divider), 4)
        for line in p.sirens:
            out[line.channel] = round((line.short_below + line.open_above) / 2, 4)
    return out
