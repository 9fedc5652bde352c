"""The daemon's clock. Nothing time-dependent reads the wall clock directly: it asks a Clock.

`RealClock` follows the system time on an asyncio loop; `VirtualClock` (simulation and tests)
stands still until `advance()` moves it, firing every due timer in order on the way.
All times are timezone-aware UTC datetimes; convert to the site's zone only for display.
"""

from __future__ import annotations

import asyncio
import heapq
import itertools
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Protocol


def utc(dt: datetime) -> datetime:
    """An aware UTC datetime (naive input is taken as UTC)."""
    if dt.tzinfo is None:
        return dt.replace(tzinfo=UTC)
    return dt.astimezone(UTC)


class TimerHandle(Protocol):
    def cancel(self) -> None: ...


class Clock(Protocol):
    def now(self) -> datetime: ...

    def call_at(self, when: datetime, callback: Callable[[], None]) -> TimerHandle: ...

    @property
    def virtual(self) -> bool: ...


class _VirtualTimer:
    __slots__ = ("when", "callback", "cancelled")

    def __init__(self, when: datetime, callback: Callable[[], None]):
        self.when = when
        self.callback = callback
        self.cancelled = False

    def cancel(self) -> None:
        self.cancelled = True


class VirtualClock:
    """A clock that moves only when told to. Timers due at the same instant fire in the order
    they were set; a timer set by a callback for a time already passed fires next, at once."""

    virtual = True

    def __init__(self, start: datetime):
        self._now = utc(start)
        self._heap: list[tuple[datetime, int, _VirtualTimer]] = []
        self._counter = itertools.count()

    def now(self) -> datetime:
        return self._now

    def call_at(self, when: datetime, callback: Callable[[], None]) -> _VirtualTimer:
        t = _VirtualTimer(max(utc(when), self._now), callback)
        heapq.heappush(self._heap, (t.when, next(self._counter), t))
        return t

    def call_later(self, delay: timedelta, callback: Callable[[], None]) -> _VirtualTimer:
        return self.call_at(self._now + delay, callback)

    def next_due(self) -> datetime | None:
        while self._heap and self._heap[0][2].cancelled:
            heapq.heappop(self._heap)
        return self._heap[0][0] if self._heap else None

    def run_due(self) -> int:
        """Fire every timer due now (including ones those timers set for now)."""
        return self._advance_to(self._now)

    def advance(self, delta: timedelta) -> int:
        if delta < timedelta(0):
            raise ValueError(
                "the virtual clock only moves forward; use jump() for an NTP-like step"
            )
        return self._advance_to(self._now + delta)

    def advance_to(self, when: datetime) -> int:
        return self._advance_to(max(utc(when), self._now))

    def _advance_to(self, target: datetime) -> int:
        fired = 0
        while True:
            due = self.next_due()
            if due is None or due > target:
                break
            _, _, t = heapq.heappop(self._heap)
            self._now = max(self._now, t.when)
            t.cancelled = True
            t.callback()
            fired += 1
        self._now = target
        return fired

    def jump(self, when: datetime) -> None:
        """Step the clock like an NTP correction, without firing anything on the way:
        timers now in the past fire at the next run_due()/advance()."""
        self._now = utc(when)


class _RealTimer:
    __slots__ = ("handle", "cancelled")

    def __init__(self) -> None:
        self.handle: asyncio.TimerHandle | None = None
        self.cancelled = False

    def cancel(self) -> None:
        self.cancelled = True
        if self.handle is not None:
            self.handle.cancel()


class RealClock:
    """System time on an asyncio loop. A timer is set for a wall-clock instant; when it wakes
    early (the clock was stepped back) it sleeps again, so timers follow the time of day."""

    virtual = False
    MAX_SLEEP = 60.0  # re-check at least this often, so a clock step forward is noticed

    def __init__(self, loop: asyncio.AbstractEventLoop | None = None):
        self._loop = loop

    @property
    def loop(self) -> asyncio.AbstractEventLoop:
        if self._loop is None:
            self._loop = asyncio.get_running_loop()
        return self._loop

    def now(self) -> datetime:
        return datetime.now(UTC)

    def call_at(self, when: datetime, callback: Callable[[], None]) -> _RealTimer:
        timer = _RealTimer()
        when = utc(when)

        def wake() -> None:
            if timer.cancelled:
                return
            left = (when - self.now()).total_seconds()
            if left > 0.0005:
                timer.handle = self.loop.call_later(min(left, self.MAX_SLEEP), wake)
                return
            timer.cancelled = True
            callback()

        left = (when - self.now()).total_seconds()
        timer.handle = self.loop.call_later(max(0.0, min(left, self.MAX_SLEEP)), wake)
        return timer

    def call_later(self, delay: timedelta, callback: Callable[[], None]) -> _RealTimer:
        return self.call_at(self.now() + delay, callback)
