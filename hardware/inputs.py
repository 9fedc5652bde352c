"""Sensor inputs: door and window contacts, PIR motion detectors, vibration sensors, tamper loops.

Each sensor is one GPIO pin. How the pin level maps to "active" (door open, motion, knock,
tamper loop cut) depends on how the sensor is wired (`wiring` in the config, see
hardware/README.md):

  nc           normally-closed contact to GND, internal pull-up: active when the pin reads HIGH
               (the loop opened, or the wire was cut, so a cut wire always raises the alarm)
  no           normally-open contact to GND, internal pull-up: active when the pin reads LOW
  active_high  a module with its own push-pull output (PIR, SW-420), no pull: active when HIGH
  active_low   the same, active when LOW

Contacts bounce. The first edge counts at once (an alarm must not wait); further edges are
ignored for the debounce time, then the pin is read again and a last change is reported if it
differs, so a state is never missed. Pin callbacks may come from the GPIO library's own thread;
every change is handed to the asyncio loop, and all of the logic runs there.
"""

from __future__ import annotations

import asyncio
import logging
import threading
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from datetime import datetime, timedelta
from functools import partial
from typing import Any

from gpiozero import DigitalInputDevice

from controller.clock import Clock, TimerHandle
from controller.config import Sensor, SiteConfig, Wiring
from hardware.backend import HardwareError

log = logging.getLogger(__name__)

OnChange = Callable[[str, bool, datetime], None]

# wiring -> (gpiozero pull_up, gpiozero active_state, sensor active when gpiozero says active?)
_WIRING: dict[str, tuple[bool | None, bool | None, bool]] = {
    # pull-up: gpiozero calls the device active when the pin is LOW (contact closed); for a
    # normally-closed loop that is the quiet state, so the sensor is active when it is not.
    "nc": (True, None, False),
    "no": (True, None, True),
    "active_high": (None, True, True),
    "active_low": (None, False, True),
}

DEFAULT_DEBOUNCE = timedelta(milliseconds=30)


def active_level(wiring: Wiring | str) -> bool:
    """The pin level (True = high) at which a sensor wired this way is active."""
    if wiring not in _WIRING:
        raise ValueError(f"unknown wiring {wiring!r}: use nc, no, active_high or active_low")
    return wiring in ("nc", "active_high")


class EdgeHandover:
    """Carries edges from the GPIO library's thread to the loop: one wake-up of the loop per
    burst of edges (the first one schedules a pass, later ones join it), not one per edge, so a
    storm on many pins costs the pin thread a queue append per edge. Edges keep their order."""

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self._loop = loop
        self._edges: deque[tuple[Callable[[bool], None], bool]] = deque()
        self._lock = threading.Lock()
        self._scheduled = False

    def put(self, handler: Callable[[bool], None], active: bool) -> None:
        """Any thread: `handler(active)` will run on the loop."""
        self._edges.append((handler, active))
        with self._lock:
            if self._scheduled:
                return  # the pass already scheduled takes this edge too
            self._scheduled = True
        try:
            self._loop.call_soon_threadsafe(self._run)
        except RuntimeError:  # the loop is closed: shutting down
            self._edges.clear()
            with self._lock:
                self._scheduled = False

    def _run(self) -> None:
        with self._lock:
            self._scheduled = False  # an edge from now on schedules a new pass
        edges = self._edges
        while edges:
            handler, active = edges.popleft()
            try:
                handler(active)
            except Exception:
                log.exception("sensor edge handler failed")


class SensorInput:
    """One debounced sensor input.

    `on_change(sensor_id, active, at)` is called on the loop thread for every debounced
    change; nothing is called at construction (read `.active` for the state at start).
    """

    def __init__(
        self,
        sensor: Sensor,
        factory: Any,
        clock: Clock,
        loop: asyncio.AbstractEventLoop,
        on_change: OnChange,
        debounce: timedelta = DEFAULT_DEBOUNCE,
        handover: EdgeHandover | None = None,
    ) -> None:
        if debounce < timedelta(0):
            raise ValueError("debounce cannot be negative")
        self._handover = handover if handover is not None else EdgeHandover(loop)
        self.sensor = sensor
        self.id = sensor.id
        self.wiring: str = sensor.effective_wiring
        pull_up, active_state, same = _WIRING[self.wiring]
        self._invert = not same
        self._clock = clock
        self._loop = loop
        self._on_change = on_change
        self._debounce = debounce
        self._timer: TimerHandle | None = None
        self._closed = False
        try:
            self._dev = DigitalInputDevice(
                sensor.pin, pull_up=pull_up, active_state=active_state, pin_factory=factory
            )
        except Exception as e:
            raise HardwareError(f"sensor {sensor.id}: GPIO{sensor.pin}: {e}") from None
        self._active = self.read()
        self._dev.when_activated = partial(self._edge_from_pin_thread, True)
        self._dev.when_deactivated = partial(self._edge_from_pin_thread, False)

    # -- public -------------------------------------------------------------------------
    @property
    def active(self) -> bool:
        """The debounced state, as last reported (or as read at start)."""
        return self._active

    @property
    def settling(self) -> bool:
        """True while edges are being ignored after a change (a timer is pending)."""
        return self._timer is not None

    def read(self) -> bool:
        """The pin right now, as active/inactive (for the baseline at boot; not debounced)."""
        try:
            return bool(self._dev.is_active) != self._invert
        except Exception as e:
            raise HardwareError(
                f"sensor {self.id}: cannot read GPIO{self.sensor.pin}: {e}"
            ) from None

    def resync(self) -> bool:
        """Read the pin again and report a difference as if an edge had come (call it on the
        loop thread now and then, e.g. with the heartbeat, in case an edge was ever lost).
        Returns True if a change was reported."""
        if self._closed or self._timer is not None:
            return False
        level = self.read()
        if level != self._active:
            self._report(level)
            return True
        return False

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        try:
            self._dev.close()
        except Exception:  # pragma: no cover - closing a half-dead pin
            log.exception("closing sensor %s", self.id)

    # -- pin thread ---------------------------------------------------------------------
    def _edge_from_pin_thread(self, device_active: bool) -> None:
        # gpiozero calls this on the GPIO library's thread (on mock pins, on the caller's):
        # carry the level this edge reported over to the loop thread, and nothing else.
        self._handover.put(self._edge, device_active != self._invert)

    # -- loop thread --------------------------------------------------------------------
    def _edge(self, active: bool) -> None:
        if self._closed or self._timer is not None:
            return  # ignored during the debounce time; the pin is read again at its end
        if active != self._active:
            self._report(active)

    def _report(self, active: bool) -> None:
        self._active = active
        now = self._clock.now()
        self._timer = self._clock.call_at(now + self._debounce, self._settled)
        try:
            self._on_change(self.id, active, now)
        except Exception:
            log.exception("on_change for sensor %s failed", self.id)

    def _settled(self) -> None:
        self._timer = None
        if self._closed:
            return
        try:
            level = self.read()
        except HardwareError:
            log.exception("re-reading sensor %s", self.id)
            return
        if level != self._active:
            self._report(level)


class Inputs:
    """Every sensor input of a site, by sensor id."""

    def __init__(
        self,
        sensors: Iterable[Sensor],
        factory: Any,
        clock: Clock,
        loop: asyncio.AbstractEventLoop,
        on_change: OnChange,
        debounce: timedelta = DEFAULT_DEBOUNCE,
    ) -> None:
        self._inputs: dict[str, SensorInput] = {}
        handover = EdgeHandover(loop)  # one for every pin: a burst on many pins is one wake-up
        try:
            for s in sensors:
                if s.id in self._inputs:
                    raise HardwareError(f"sensor {s.id} is defined twice")
                self._inputs[s.id] = SensorInput(
                    s, factory, clock, loop, on_change, debounce, handover
                )
        except BaseException:
            self.close()
            raise

    @classmethod
    def from_config(
        cls,
        config: SiteConfig,
        factory: Any,
        clock: Clock,
        loop: asyncio.AbstractEventLoop,
        on_change: OnChange,
    ) -> Inputs:
        return cls(config.sensors, factory, clock, loop, on_change, config.hardware.debounce)

    def __getitem__(self, sensor_id: str) -> SensorInput:
        try:
            return self._inputs[sensor_id]
        except KeyError:
            raise KeyError(f"unknown sensor {sensor_id!r}") from None

    def __iter__(self) -> Iterator[SensorInput]:
        return iter(self._inputs.values())

    def __len__(self) -> int:
        return len(self._inputs)

    def baseline(self) -> dict[str, bool]:
        """Every pin read now (at boot, before the first change is reported)."""
        return {sid: inp.read() for sid, inp in self._inputs.items()}

    def states(self) -> dict[str, bool]:
        """The debounced states."""
        return {sid: inp.active for sid, inp in self._inputs.items()}

    def resync(self) -> list[str]:
        return [sid for sid, inp in self._inputs.items() if inp.resync()]

    def close(self) -> None:
        for inp in self._inputs.values():
            inp.close()
