"""The daemon's clock. Nothing time-dependent reads the wall clock directly: it asks a Clock.

`RealClock` follows the system time on an asyncio loop; `VirtualClock` (simulation and tests)
stands still until `advance()` moves it, firing every due timer in order on the way.
All times are timezone-aware UTC datetimes; convert to the site's zone only for display.

Clock steps. A Pi without a battery clock boots at a stale time and steps when NTP syncs; an
operator may set the time by hand. Both clocks tell their jump listeners
(`add_jump_listener(cb)`, `cb(delta)` with `delta` the size of the step, positive forward)
whenever the time of day steps: `VirtualClock.jump()` always does; `RealClock` notices a step
by comparing how far the wall clock (time.time) moved against the monotonic clock
(time.monotonic) since its last look. It looks whenever the time is asked, on every timer
wake-up (before deciding whether that timer is due) and every `JUMP_CHECK` seconds of
monotonic time while anyone listens: two clock reads, no disk, no allocation worth speaking
of. Listeners run on the loop before any timer made due by the step fires, and on a loop
`now()` shows the new time only once they have run, so they can move their own deadlines
first and nothing meets the new time with deadlines that have not moved.
Timers set with `call_at` keep following the time of day (a step back makes them wait, a step
forward makes them due); what a step means for a delay that was running is the listener's call.
"""

from __future__ import annotations

import asyncio
import heapq
import itertools
import logging
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Protocol

log = logging.getLogger(__name__)

JumpListener = Callable[[timedelta], None]


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

    def add_jump_listener(self, listener: JumpListener) -> None: ...

    def remove_jump_listener(self, listener: JumpListener) -> None: ...


class _JumpListeners:
    """The listeners told about clock steps (shared by both clocks)."""

    def __init__(self) -> None:
        self._jump_listeners: list[JumpListener] = []
        self.jumps = 0  # steps noticed so far

    def add_jump_listener(self, listener: JumpListener) -> None:
        if listener not in self._jump_listeners:
            self._jump_listeners.append(listener)

    def remove_jump_listener(self, listener: JumpListener) -> None:
        if listener in self._jump_listeners:
            self._jump_listeners.remove(listener)

    def _notify_jump(self, delta: timedelta) -> None:
        self.jumps += 1
        for listener in list(self._jump_listeners):
            try:
                listener(delta)
            except Exception:  # one listener's bug must not stop the others (or the clock)
                log.exception("clock jump listener %r failed", listener)


class _VirtualTimer:
    __slots__ = ("when", "callback", "cancelled")

    def __init__(self, when: datetime, callback: Callable[[], None]):
        self.when = when
        self.callback = callback
        self.cancelled = False

    def cancel(self) -> None:
        self.cancelled = True


class VirtualClock(_JumpListeners):
    """A clock that moves only when told to. Timers due at the same instant fire in the order
    they were set; a timer set by a callback for a time already passed fires next, at once."""

    virtual = True

    def __init__(self, start: datetime):
        super().__init__()
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
        """Step the clock like an NTP correction, without firing anything on the way: the jump
        listeners are told at once (they may move their timers); timers keep their instants,
        so after a step forward those now in the past fire at the next run_due()/advance(),
        and after a step back they wait for the clock to get there again."""
        when = utc(when)
        delta = when - self._now
        self._now = when
        if delta:
            self._notify_jump(delta)


class _RealTimer:
    __slots__ = ("handle", "cancelled")

    def __init__(self) -> None:
        self.handle: asyncio.TimerHandle | None = None
        self.cancelled = False

    def cancel(self) -> None:
        self.cancelled = True
        if self.handle is not None:
            self.handle.cancel()


class RealClock(_JumpListeners):
    """System time on an asyncio loop. A timer is set for a wall-clock instant; when it wakes
    early (the clock was stepped back) it sleeps again, so timers follow the time of day.

    `wall` and `mono` (seconds, like time.time and time.monotonic) can be injected for tests;
    a step is a change of more than `jump_threshold` seconds in wall minus monotonic time
    between two looks (slewing by NTP moves it by at most 0.5 ms/s, far below that). Every
    now() is also a look: it follows slewing, and queues a full look on the loop when it sees
    a step, so a step is noticed as soon as anything asks the time."""

    virtual = False
    MAX_SLEEP = 60.0  # re-check at least this often, so a clock step forward is noticed
    JUMP_CHECK = 30.0  # seconds of monotonic time between two looks while anyone listens
    JUMP_THRESHOLD = 1.0

    def __init__(
        self,
        loop: asyncio.AbstractEventLoop | None = None,
        *,
        wall: Callable[[], float] = time.time,
        mono: Callable[[], float] = time.monotonic,
        jump_threshold: float = JUMP_THRESHOLD,
    ):
        super().__init__()
        self._loop = loop
        self._wall = wall
        self._mono = mono
        self.jump_threshold = jump_threshold
        self._offset = wall() - mono()  # wall minus monotonic time at the last look
        self._look_queued = False
        self._watch: asyncio.TimerHandle | None = None

    @property
    def loop(self) -> asyncio.AbstractEventLoop:
        if self._loop is None:
            self._loop = asyncio.get_running_loop()
        return self._loop

    def now(self) -> datetime:
        """The time of day. On a loop, a step shows here only once the listeners have been
        told (a look is queued on the loop at once), so nothing stamped or compared with the
        new time runs against deadlines the step has not moved yet."""
        mono = self._mono()
        offset = self._wall() - mono
        if abs(offset - self._offset) <= self.jump_threshold:
            self._offset = offset  # slewing (or a sub-threshold step) is simply followed
        else:
            loop = self._loop
            if loop is None:
                try:
                    loop = self.loop
                except RuntimeError:  # no loop: nothing is timed here, the time is the time
                    return datetime.fromtimestamp(mono + offset, UTC)
            if not self._look_queued:
                self._look_queued = True
                loop.call_soon_threadsafe(self.check_jump)  # now() may run on paho's thread
        return datetime.fromtimestamp(mono + self._offset, UTC)

    def check_jump(self) -> timedelta | None:
        """Look for a step of the wall clock since the last look; tell the listeners about
        one. Returns the step, or None. Cheap enough to call on every wake-up. Call it on the
        loop's thread (listeners run where it is called)."""
        self._look_queued = False
        offset = self._wall() - self._mono()
        drift = offset - self._offset
        self._offset = offset
        if abs(drift) <= self.jump_threshold:
            return None
        delta = timedelta(seconds=drift)
        log.warning("system clock stepped by %+.3f s", drift)
        self._notify_jump(delta)
        return delta

    def add_jump_listener(self, listener: JumpListener) -> None:
        super().add_jump_listener(listener)
        self._arm_watch()

    def remove_jump_listener(self, listener: JumpListener) -> None:
        super().remove_jump_listener(listener)
        if not self._jump_listeners and self._watch is not None:
            self._watch.cancel()
            self._watch = None

    def _arm_watch(self) -> None:
        if self._watch is not None or not self._jump_listeners:
            return
        try:
            loop = self.loop
        except RuntimeError:  # no loop yet: timer wake-ups still look
            return
        self._watch = loop.call_later(self.JUMP_CHECK, self._watch_tick)

    def _watch_tick(self) -> None:
        self._watch = None
        self.check_jump()
        self._arm_watch()

    def call_at(self, when: datetime, callback: Callable[[], None]) -> _RealTimer:
        timer = _RealTimer()
        when = utc(when)

        def wake() -> None:
            if timer.cancelled:
                return
            self.check_jump()  # listeners may move (cancel) this very timer first
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

    def close(self) -> None:
        """Stop the periodic look (the loop is going away)."""
        if self._watch is not None:
            self._watch.cancel()
            self._watch = None
