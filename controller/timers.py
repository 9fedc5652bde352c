"""The one timer driver: every part of the daemon that waits for a time of its own (the engine's
delays, lockouts, a keypad's timeout, a schedule's next transition, a detector's silence) has a
`Deadline` here instead of its own copy of "cancel the timer, ask when, set it again".

A deadline asks its owner when it is next due (`next_due()`, None: nothing to wait for) and
calls `fire()` then. The owner calls `reschedule()` after anything that may move it; after a
clock step the daemon calls `reschedule_all()` once every part has moved its own times.

A part that awaits (a network answer, a back-off) waits on the same clock through `Waits`.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable
from datetime import datetime, timedelta
from typing import TypeVar

from controller.clock import Clock, TimerHandle

NextDue = Callable[[], datetime | None]
T = TypeVar("T")


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


class _Wait:
    __slots__ = ("when", "fire", "handle", "sleep")

    def __init__(self, when: datetime, fire: Callable[[], None], sleep: bool) -> None:
        self.when = when
        self.fire = fire
        self.sleep = sleep  # a back-off (nothing else can end it), not a timeout
        self.handle: TimerHandle | None = None


class Waits:
    """Awaitable waits on the daemon's clock, for a part that awaits a network answer (the
    DC-09 sender): `sleep(delay)`, and `within(delay, awaitable)` that raises TimeoutError
    when the clock gets to the end first. On a virtual clock they end only when it is moved,
    so tests advance it instead of sleeping. A clock step moves every pending end by the step
    (a delay keeps its length), like the components' own deadlines."""

    def __init__(self, clock: Clock) -> None:
        self.clock = clock
        self._pending: list[_Wait] = []

    @property
    def sleeping(self) -> int:
        """How many back-offs are waiting for the clock (and for nothing else)."""
        return sum(1 for w in self._pending if w.sleep)

    @property
    def timing(self) -> int:
        """How many waits for an answer have a timeout running."""
        return sum(1 for w in self._pending if not w.sleep)

    def _arm(self, delay: timedelta, fire: Callable[[], None], sleep: bool) -> _Wait:
        w = _Wait(self.clock.now() + max(delay, timedelta(0)), fire, sleep)
        w.handle = self.clock.call_at(w.when, fire)
        self._pending.append(w)
        return w

    def _disarm(self, w: _Wait) -> None:
        if w.handle is not None:
            w.handle.cancel()
        if w in self._pending:
            self._pending.remove(w)

    async def sleep(self, delay: timedelta) -> None:
        fut: asyncio.Future[None] = asyncio.get_running_loop().create_future()

        def fire() -> None:
            if not fut.done():
                fut.set_result(None)

        w = self._arm(delay, fire, sleep=True)
        try:
            await fut
        finally:
            self._disarm(w)

    async def within(self, delay: timedelta, aw: Awaitable[T]) -> T:
        loop = asyncio.get_running_loop()
        task: asyncio.Future[T] = asyncio.ensure_future(aw)
        expired: asyncio.Future[T] = loop.create_future()  # never given a result: only done

        def fire() -> None:
            if not expired.done():
                expired.cancel()

        w = self._arm(delay, fire, sleep=False)
        try:
            await asyncio.wait({task, expired}, return_when=asyncio.FIRST_COMPLETED)
        except BaseException:
            task.cancel()
            raise
        finally:
            self._disarm(w)
        if task.done():
            return task.result()
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError, Exception):
            await task
        raise TimeoutError(f"no answer within {delay.total_seconds():g} s")

    def clock_stepped(self, delta: timedelta) -> None:
        for w in self._pending:
            if w.handle is not None:
                w.handle.cancel()
            w.when += delta
            w.handle = self.clock.call_at(w.when, w.fire)

    def close(self) -> None:
        for w in list(self._pending):
            self._disarm(w)
