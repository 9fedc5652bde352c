"""Outputs: sirens (through a relay or a MOSFET) and the keypad buzzer.

An `Output` is a plain on/off pin. It is switched off when it is set up and again when it is
closed, so a restart or a crash of the controller never leaves a siren sounding by accident.

The `Buzzer` (an active buzzer at the keypad: it sounds while its pin is on) plays short
patterns that a guard learns to recognise:

  key      one short chirp (50 ms) per key press
  accept   one long beep (1 s): code accepted
  refuse   three short beeps: wrong code, or the keypad is locked
  prearm   two short chirps: the schedule is about to arm (a one-shot; see start_prearm_beeps)

and two continuous modes:

  delay    during an exit or entry delay: a beep every second, every half second in the last
           10 seconds (`start_delay_beeps(until)`)
  prearm   before a scheduled arming: two chirps every 5 seconds (`start_prearm_beeps(until)`)

A one-shot pattern plays over the continuous mode, which carries on underneath. All timing runs
on the daemon's clock (virtual in simulation and tests); nothing here sleeps.
"""

from __future__ import annotations

import logging
from collections import deque
from collections.abc import Iterable, Iterator
from datetime import datetime, timedelta
from typing import Any, Literal

from gpiozero import DigitalOutputDevice

from hardware.backend import HardwareError
from hardware.pins import OutputPin
from hardware.timing import Scheduler, TimerHandle

log = logging.getLogger(__name__)

_MS = timedelta(milliseconds=1)

Step = tuple[bool, timedelta]

PATTERNS: dict[str, tuple[Step, ...]] = {
    "key": ((True, 50 * _MS),),
    "accept": ((True, 1000 * _MS),),
    "refuse": (
        (True, 100 * _MS),
        (False, 100 * _MS),
        (True, 100 * _MS),
        (False, 100 * _MS),
        (True, 100 * _MS),
    ),
    "prearm": ((True, 80 * _MS), (False, 120 * _MS), (True, 80 * _MS)),
}

DELAY_BEEP = 100 * _MS
DELAY_PERIOD = timedelta(seconds=1)
DELAY_FAST_PERIOD = timedelta(milliseconds=500)
DELAY_FAST_LAST = timedelta(seconds=10)
PREARM_PERIOD = timedelta(seconds=5)


class Output:
    """A siren, strobe or relay on one pin. Off at start and on close."""

    def __init__(self, id: str, pin: int, active_high: bool, factory: Any) -> None:
        self.id = id
        self.pin = pin
        self.active_high = active_high
        self._closed = False
        try:
            self._dev = DigitalOutputDevice(
                pin, active_high=active_high, initial_value=False, pin_factory=factory
            )
        except Exception as e:
            raise HardwareError(f"output {id}: GPIO{pin}: {e}") from None

    @property
    def is_on(self) -> bool:
        if self._closed:
            return False
        return bool(self._dev.is_active)

    def set(self, on: bool) -> None:
        """Switch the output; raises HardwareError if the pin cannot be driven."""
        if self._closed:
            raise HardwareError(f"output {self.id} is closed")
        try:
            if on:
                self._dev.on()
            else:
                self._dev.off()
        except Exception as e:
            raise HardwareError(f"output {self.id}: cannot drive GPIO{self.pin}: {e}") from None

    def on(self) -> None:
        self.set(True)

    def off(self) -> None:
        self.set(False)

    def close(self) -> None:
        if self._closed:
            return
        try:
            self._dev.off()
        except Exception:  # pragma: no cover
            log.exception("switching %s off", self.id)
        self._closed = True
        self._dev.close()


class Outputs:
    """The sirens of a site, by id."""

    def __init__(self, outputs: Iterable[Output] = ()) -> None:
        self._outputs: dict[str, Output] = {}
        for o in outputs:
            self._outputs[o.id] = o

    @classmethod
    def from_pins(cls, pins: Iterable[OutputPin], factory: Any) -> Outputs:
        """An `Output` on each pin, all off; if one cannot be set up, the ones already opened
        are closed again before the error is raised."""
        made: list[Output] = []
        try:
            for p in pins:
                made.append(Output(p.id, p.pin, p.active_high, factory))
        except BaseException:
            for o in made:
                o.close()
            raise
        return cls(made)

    def __getitem__(self, output_id: str) -> Output:
        try:
            return self._outputs[output_id]
        except KeyError:
            raise KeyError(f"unknown output {output_id!r}") from None

    def __contains__(self, output_id: object) -> bool:
        return output_id in self._outputs

    def __iter__(self) -> Iterator[Output]:
        return iter(self._outputs.values())

    def set(self, output_id: str, on: bool) -> None:
        self[output_id].set(on)

    def states(self) -> dict[str, bool]:
        return {oid: o.is_on for oid, o in self._outputs.items()}

    def close(self) -> None:
        for o in self._outputs.values():
            o.close()


Mode = Literal["idle", "delay", "prearm"]


class Buzzer:
    """The keypad buzzer; see the module docstring for the patterns. Loop thread only."""

    def __init__(self, pin: int, factory: Any, clock: Scheduler, active_high: bool = True) -> None:
        self.pin = pin
        self._clock = clock
        self._closed = False
        try:
            self._dev = DigitalOutputDevice(
                pin, active_high=active_high, initial_value=False, pin_factory=factory
            )
        except Exception as e:
            raise HardwareError(f"buzzer: GPIO{pin}: {e}") from None
        self._level = False
        # one-shot pattern (foreground)
        self._fg_name: str | None = None
        self._fg_steps: deque[Step] = deque()
        self._fg_level = False
        self._fg_timer: TimerHandle | None = None
        # continuous mode (background)
        self._mode: Mode = "idle"
        self._until: datetime | None = None
        self._bg_level = False
        self._bg_steps: deque[Step] = deque()
        self._bg_tick_at: datetime | None = None
        self._bg_timer: TimerHandle | None = None

    # -- state --------------------------------------------------------------------------
    @property
    def is_on(self) -> bool:
        return self._level

    @property
    def mode(self) -> Mode:
        return self._mode

    @property
    def playing(self) -> str | None:
        """The one-shot pattern playing now, if any."""
        return self._fg_name

    @property
    def idle(self) -> bool:
        """Silent, with nothing scheduled."""
        return self._fg_timer is None and self._bg_timer is None and not self._level

    # -- one-shot patterns --------------------------------------------------------------
    def play(self, pattern: str) -> None:
        """Play 'key', 'accept', 'refuse' or 'prearm' now (replacing a one-shot under way)."""
        if pattern not in PATTERNS:
            raise ValueError(f"unknown buzzer pattern {pattern!r}: use {', '.join(PATTERNS)}")
        if self._closed:
            return
        self._cancel_fg()
        self._fg_name = pattern
        self._fg_steps = deque(PATTERNS[pattern])
        self._fg_next()

    def _fg_next(self) -> None:
        self._fg_timer = None
        if not self._fg_steps:
            self._fg_name = None
            self._fg_level = False
            self._apply()
            return
        level, duration = self._fg_steps.popleft()
        self._fg_level = level
        self._apply()
        self._fg_timer = self._clock.call_at(self._clock.now() + duration, self._fg_next)

    def _cancel_fg(self) -> None:
        if self._fg_timer is not None:
            self._fg_timer.cancel()
        self._fg_timer = None
        self._fg_name = None
        self._fg_steps.clear()
        self._fg_level = False

    # -- continuous modes ---------------------------------------------------------------
    def start_delay_beeps(self, until: datetime) -> None:
        """Beep through an exit or entry delay ending at `until` (faster in its last 10 s);
        stops by itself at `until`. Calling it again moves the end (a restarted delay)."""
        self._start_bg("delay", until)

    def start_prearm_beeps(self, until: datetime) -> None:
        """Warn before a scheduled arming at `until`: two chirps every 5 seconds."""
        self._start_bg("prearm", until)

    def stop(self) -> None:
        """Stop the continuous beeping; a one-shot pattern under way (e.g. 'accept') ends
        normally. Call it before play('accept') or after, the result is the same."""
        self._cancel_bg()
        self._apply()

    def silence(self) -> None:
        """Everything off at once."""
        self._cancel_fg()
        self._cancel_bg()
        self._apply()

    def _start_bg(self, mode: Mode, until: datetime) -> None:
        if until.tzinfo is None:
            raise ValueError("until must be a timezone-aware datetime")
        if self._closed:
            return
        self._cancel_bg()
        self._mode = mode
        self._until = until
        self._bg_tick()

    def _period(self, now: datetime) -> timedelta:
        assert self._until is not None
        if self._mode == "prearm":
            return PREARM_PERIOD
        return DELAY_FAST_PERIOD if self._until - now <= DELAY_FAST_LAST else DELAY_PERIOD

    def _bg_tick(self) -> None:
        self._bg_timer = None
        now = self._clock.now()
        if self._until is None or now >= self._until:
            self._cancel_bg()
            self._apply()
            return
        self._bg_tick_at = now + self._period(now)
        if self._mode == "prearm":
            self._bg_steps = deque(PATTERNS["prearm"])
        else:
            self._bg_steps = deque([(True, DELAY_BEEP)])
        self._bg_next()

    def _bg_next(self) -> None:
        self._bg_timer = None
        now = self._clock.now()
        if self._bg_steps:
            level, duration = self._bg_steps.popleft()
            self._bg_level = level
            self._apply()
            self._bg_timer = self._clock.call_at(now + duration, self._bg_next)
            return
        self._bg_level = False
        self._apply()
        assert self._bg_tick_at is not None and self._until is not None
        nxt = min(self._bg_tick_at, self._until)
        self._bg_timer = self._clock.call_at(nxt, self._bg_tick)

    def _cancel_bg(self) -> None:
        if self._bg_timer is not None:
            self._bg_timer.cancel()
        self._bg_timer = None
        self._mode = "idle"
        self._until = None
        self._bg_level = False
        self._bg_steps.clear()
        self._bg_tick_at = None

    # -- pin ----------------------------------------------------------------------------
    def _apply(self) -> None:
        level = self._fg_level if self._fg_name is not None else self._bg_level
        if level == self._level or self._closed:
            return
        self._level = level
        try:
            if level:
                self._dev.on()
            else:
                self._dev.off()
        except Exception:
            log.exception("buzzer on GPIO%s cannot be driven", self.pin)

    def close(self) -> None:
        if self._closed:
            return
        self._cancel_fg()
        self._cancel_bg()
        self._apply()
        self._closed = True
        try:
            self._dev.off()
        finally:
            self._dev.close()
