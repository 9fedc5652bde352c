"""Sensor inputs: door and window contacts, PIR motion detectors, vibration sensors, tamper loops.

Each sensor is one GPIO pin, given as plain values like gpiozero's own devices take them: the
pin, its pull resistor (`pull_up`: True up, False down, None floating) and the level at which
the sensor is active (`active_high`). A normally-closed loop to GND on the pull-up is active
when the pin reads HIGH (the loop opened, or the wire was cut); a module with a push-pull output
(PIR, SW-420) needs no pull. Which config `wiring:` means which values is the controller's
business (controller/wiring.py, hardware/README.md).

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

from hardware.backend import HardwareError
from hardware.pins import InputPin
from hardware.timing import Scheduler, TimerHandle

log = logging.getLogger(__name__)

OnChange = Callable[[str, bool, datetime], None]

DEFAULT_DEBOUNCE = timedelta(milliseconds=30)


def _gpiozero_polarity(pull_up: bool | None, active_high: bool) -> tuple[bool | None, bool]:
    """gpiozero's `active_state` for these values, and whether its "active" is the inverse of
    the sensor's. With a pull resistor gpiozero fixes the polarity itself (pulled up: active
    when LOW) and refuses an active_state, so a sensor active at the pulled level (a
    normally-closed loop on the pull-up) is read inverted."""
    if pull_up is None:
        return active_high, False
    return None, active_high == pull_up


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
        id: str,
        pin: int,
        factory: Any,
        clock: Scheduler,
        loop: asyncio.AbstractEventLoop,
        on_change: OnChange,
        *,
        pull_up: bool | None,
        active_high: bool,
        debounce: timedelta = DEFAULT_DEBOUNCE,
        handover: EdgeHandover | None = None,
    ) -> None:
        if debounce < timedelta(0):
            raise ValueError("debounce cannot be negative")
        self._handover = handover if handover is not None else EdgeHandover(loop)
        self.id = id
        self.pin = pin
        self.pull_up = pull_up
        self.active_high = active_high
        active_state, self._invert = _gpiozero_polarity(pull_up, active_high)
        self._clock = clock
        self._loop = loop
        self._on_change = on_change
        self._debounce = debounce
        self._timer: TimerHandle | None = None
        self._closed = False
        try:
            self._dev = DigitalInputDevice(
                pin, pull_up=pull_up, active_state=active_state, pin_factory=factory
            )
        except Exception as e:
            raise HardwareError(f"sensor {id}: GPIO{pin}: {e}") from None
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
            raise HardwareError(f"sensor {self.id}: cannot read GPIO{self.pin}: {e}") from None

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
    """Every sensor input of a site, by sensor id, all debounced alike. If one pin cannot be
    set up, the ones already opened are released again before the error is raised."""

    def __init__(
        self,
        pins: Iterable[InputPin],
        factory: Any,
        clock: Scheduler,
        loop: asyncio.AbstractEventLoop,
        on_change: OnChange,
        debounce: timedelta = DEFAULT_DEBOUNCE,
    ) -> None:
        self._inputs: dict[str, SensorInput] = {}
        handover = EdgeHandover(loop)  # one for every pin: a burst on many pins is one wake-up
        try:
            for p in pins:
                if p.id in self._inputs:
                    raise HardwareError(f"sensor {p.id} is defined twice")
                self._inputs[p.id] = SensorInput(
                    p.id,
                    p.pin,
                    factory,
                    clock,
                    loop,
                    on_change,
                    pull_up=p.pull_up,
                    active_high=p.active_high,
                    debounce=debounce,
                    handover=handover,
                )
        except BaseException:
            self.close()
            raise

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
