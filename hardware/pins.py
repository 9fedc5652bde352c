"""A site's pins in the drivers' own terms: plain values, as gpiozero's devices take them.

The drivers and the simulated twin take these records, never the site config: the controller
maps its config onto them (controller/wiring.py), so how a sensor type is usually wired, or
what a `wiring:` word means, is the controller's knowledge, and hardware/ stays a layer under it.
Pin numbers are BCM GPIO numbers.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class InputPin:
    """One sensor input. `pull_up` has gpiozero's meaning (True: internal pull-up, False:
    pull-down, None: floating, for a module that drives its own output); `active_high` is the
    pin level at which the sensor is active (door open, motion, loop cut)."""

    id: str
    pin: int
    pull_up: bool | None
    active_high: bool


@dataclass(frozen=True, slots=True)
class OutputPin:
    """One siren or relay output; `active_high=False` for a relay board that switches on low."""

    id: str
    pin: int
    active_high: bool = True


@dataclass(frozen=True, slots=True)
class KeypadPins:
    """A matrix keypad: its row and column pins, its layout (one string per row, one key per
    column) and the pin of its buzzer, if it has one."""

    id: str
    rows: tuple[int, ...]
    cols: tuple[int, ...]
    layout: tuple[str, ...]
    buzzer: int | None = None


@dataclass(frozen=True, slots=True)
class SitePins:
    """Everything wired to one Pi: what the simulated twin plays, and what the drivers open.
    `serial_ports` are the ids of the serial devices (drone detectors) the twin gives a pty."""

    inputs: tuple[InputPin, ...] = ()
    outputs: tuple[OutputPin, ...] = ()
    keypads: tuple[KeypadPins, ...] = ()
    serial_ports: tuple[str, ...] = ()
