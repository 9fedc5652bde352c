"""The one timer driver: every part of the daemon that waits for a time of its own (the engine's
delays, lockouts, a keypad's timeout, a schedule's next transition, a detector's silence) has a
`Deadline` here instead of its own copy of "cancel the timer, ask when, set it again".

A deadline asks its owner when it is next due (`next_due()`, None: nothing to wait for) and
calls `fire()` then. The owner calls `reschedule()` after anything that may move it; after a
clock step the daemon calls `reschedule_all()` once every part has moved its own times.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime

from controller.clock import Clock, TimerHandle

NextDue = Callable[[], datetime | None]


class Deadline:
    """One owner's next deadline on the clock (at most one timer set at any moment)."""

    def __init__(self, driver: TimerDriver, next_due: NextDue, fire: Callable[[], None]) -> None:
        self._driver = driver
        self._next_due = next_due
        self._fire = fire
        self._handle: TimerHandle | None = None
        self.due: datetime | None = None  # when the timer is set for, None when none is

    def reschedule(self) -> None:
        """Set the timer for the owner's next due time (or none), dropping the one set."""
        self._cancel_timer()
        due = self._next_due()
        if due is not None:
            self.due = due
            self._handle = self._driver.clock.call_at(due, self._on_timer)

    def cancel(self) -> None:
        """No more timers for this owner (it is closing)."""
        self._cancel_timer()
        self._driver.forget(self)

    def _cancel_timer(self) -> None:
        if self._handle is not None:
            self._handle.cancel()
            self._handle = None
        self.due = None

    def _on_timer(self) -> None:
        self._handle = None
        self.due = None
        self._fire()


class TimerDriver:
    """Hands out deadlines on one clock and knows them all, for a clock step and for stop."""

    def __init__(self, clock: Clock) -> None:
        self.clock = clock
        self._deadlines: list[Deadline] = []

    def deadline(self, next_due: NextDue, fire: Callable[[], None]) -> Deadline:
        dl = Deadline(self, next_due, fire)
        self._deadlines.append(dl)
        return dl

    def forget(self, deadline: Deadline) -> None:
        if deadline in self._deadlines:
            self._deadlines.remove(deadline)

    def reschedule_all(self) -> None:
        """After a clock step: every owner has moved its times; set every timer again."""
        for dl in list(self._deadlines):
            dl.reschedule()

    def pending(self) -> int:
        """How many deadlines have a timer set (for status and tests)."""
        return sum(1 for dl in self._deadlines if dl.due is not None)

    def close(self) -> None:
        for dl in list(self._deadlines):
            dl.cancel()
