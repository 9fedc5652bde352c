"""What the drivers need of a clock: "now", and "call me at T", as two small protocols.

The drivers time debounces, buzzer patterns and port retries on the daemon's clock (real, or
virtual in simulation and tests), never on the wall clock. They name only these protocols, so
any clock with `now()` and `call_at()` drives them (the daemon's `controller.clock` clocks do,
structurally) and hardware/ depends on nothing of the controller's.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Protocol


class TimerHandle(Protocol):
    """A pending call; `cancel()` before it is due means it never runs."""

    def cancel(self) -> None: ...


class Scheduler(Protocol):
    """Aware UTC time, and timers on it that run on the asyncio loop's thread."""

    def now(self) -> datetime: ...

    def call_at(self, when: datetime, callback: Callable[[], None]) -> TimerHandle: ...


class SimScheduler(Scheduler, Protocol):
    """A scheduler that also says whether its time is virtual (then the simulated twin moves it
    with its `advance(delta)` instead of really waiting)."""

    @property
    def virtual(self) -> bool: ...
