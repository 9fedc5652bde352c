"""Which GPIO the controller talks to: the Raspberry Pi's real pins, or simulated ones.

`pin_factory_for("gpio")` gives gpiozero's real pin factory (lgpio on a Raspberry Pi) and says
clearly when the machine has no GPIO. `pin_factory_for("simulated")` gives gpiozero's mock pins,
extended (`SimPin`) so the simulator can play the part of the wiring: a door contact that holds a
pin low, a keypad key that joins a row to a column. The same driver code runs on both.
"""

from __future__ import annotations

import logging
import os
import warnings
from collections.abc import Callable
from typing import Any, Literal

from gpiozero.pins.mock import MockFactory, MockPWMPin

Backend = Literal["gpio", "simulated"]

log = logging.getLogger(__name__)


class HardwareError(Exception):
    """A pin or port could not be set up or driven; the message says which and why."""


class SimPin(MockPWMPin):  # type: ignore[misc]
    """A mock pin (with PWM) that the simulator can drive from "outside", like real wiring.

    `sim_drive(True/False)` holds an input at that level whatever its pull resistor says (a
    closed contact to GND, a sensor module's push-pull output); `sim_drive(None)` lets go, and
    the pin follows its pull-up/pull-down again (an open contact). Plain gpiozero mock pins
    forget the outside level whenever a driver sets the pull, which would make the order in
    which the simulator and the drivers start matter.

    Functions in `listeners` are called after the pin's function or output level changes, so
    the simulated keypad matrix can follow what the driver does with its row pins.
    """

    def __init__(self, factory: Any, info: Any) -> None:
        self.external: bool | None = None
        self.listeners: list[Callable[[SimPin], None]] = []
        super().__init__(factory, info)

    # -- simulator side -----------------------------------------------------------------
    def sim_drive(self, level: bool | None) -> None:
        self.external = level
        if self._function == "input":
            self._settle_input()

    @property
    def driving_low(self) -> bool:
        """True when the pin is an output driven low (it pulls whatever it touches low)."""
        return self._function == "output" and not self._state

    @property
    def driving_high(self) -> bool:
        return self._function == "output" and bool(self._state)

    # -- gpiozero side ------------------------------------------------------------------
    def _settle_input(self) -> None:
        level = self.external
        if level is None:
            pull = self._pull
            if pull == "up":
                level = True
            elif pull == "down":
                level = False
            else:
                return  # floating, nothing drives it: it keeps its last level
        if level:
            self.drive_high()
        else:
            self.drive_low()

    def _set_pull(self, value: str) -> None:
        super()._set_pull(value)
        self._settle_input()

    def _set_function(self, value: str) -> None:
        super()._set_function(value)
        if value == "input":
            self._settle_input()
        self._notify()

    def _change_state(self, value: Any) -> bool:
        changed: bool = super()._change_state(value)
        if changed and self._function == "output":
            self._notify()
        return changed

    def _notify(self) -> None:
        for listener in list(getattr(self, "listeners", ())):
            listener(self)


def simulated_factory() -> MockFactory:
    """gpiozero mock pins for the simulator (a Raspberry Pi 3B pin header)."""
    return MockFactory(pin_class=SimPin)


def is_simulated(factory: object) -> bool:
    return isinstance(factory, MockFactory) and issubclass(factory.pin_class, SimPin)


def pin_factory_for(backend: str) -> Any:
    """The gpiozero pin factory for `hardware.backend` of the config.

    'simulated' -> mock pins with `SimPin`; 'gpio' -> gpiozero's default real factory (lgpio on
    a Raspberry Pi; GPIOZERO_PIN_FACTORY is honoured, and `mock` there means simulated pins).
    Raises HardwareError with a plain explanation when no GPIO is present; the caller closes
    the factory (`factory.close()`) at shutdown.
    """
    if backend == "simulated":
        return simulated_factory()
    if backend != "gpio":
        raise HardwareError(f"unknown hardware backend {backend!r}: use gpio or simulated")
    if os.environ.get("GPIOZERO_PIN_FACTORY", "").strip().lower() == "mock":
        return simulated_factory()
    from gpiozero.devices import Device

    default = getattr(Device, "_default_pin_factory", None)
    if default is None:  # pragma: no cover - a gpiozero without it
        raise HardwareError("this gpiozero version has no default pin factory")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            factory = default()
        except Exception as e:
            tried = "; ".join(str(w.message) for w in caught) or str(e)
            raise HardwareError(
                "no GPIO found on this machine (" + tried + "). On a Raspberry Pi install "
                "python3-lgpio and add the service user to the gpio group; on any other "
                "machine use `hardware: {backend: simulated}` or `officeguard run --simulate`."
            ) from None
    return factory


def close_pin_factory(factory: Any) -> bool:
    """Close a pin factory made by `pin_factory_for` at shutdown: every pin it still holds is
    released (set back to an input) and, on a Raspberry Pi, lgpio's handle on the GPIO chip is
    closed, so a restarted daemon (or another program) can claim the pins again. Never raises:
    a factory that fails to close is logged. Returns True when it closed cleanly."""
    if factory is None:
        return True
    try:
        factory.close()
    except Exception as e:
        log.warning("could not close the GPIO pin factory: %s", e)
        return False
    return True
