"""Checking a code on the daemon's loop without blocking it: the code is verified (scrypt) in a
worker thread, the decision (arm, disarm, refused, lockout, duress) is taken by the pure
AccessGate on the daemon's clock, and its events go to the journal. One service serves the
keypads, the local CLI and remote commands alike, each source with its own lockout counter.

Attempts from one source are checked one at a time, and the lockout is looked at again just
before each code goes to the worker: a burst sent before the lockout began is not checked
after it began (16 guesses in a burst would otherwise all be tried). At most
MAX_QUEUED_PER_SOURCE attempts of one source wait; more are refused as busy, unchecked and
uncounted. A locked source's attempts never reach the code check at all, so the answer takes
the same time whatever the code (a right code is otherwise answered faster: it is cached).
"""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta

from controller.access.gate import AccessGate, Attempt, Authenticator, Decision, Lockout, Match
from controller.config import SiteConfig
from controller.events import EventDraft
from controller.timers import TimerDriver

MAX_QUEUED_PER_SOURCE = 2  # attempts of one source waiting for their code check


class AccessService:
    def __init__(
        self,
        cfg: SiteConfig,
        timers: TimerDriver,
        record: Callable[[list[EventDraft]], object],
        saved_lockout: object = None,
    ):
        clock = self.clock = timers.clock
        self._record = record
        self.authenticator = Authenticator(cfg.users)
        lockout = Lockout()
        lockout.restore(saved_lockout, clock.now())  # a restart or reload keeps the count
        self.gate = AccessGate(lockout, lang=cfg.site.language, tz=cfg.tz)
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="code-check")
        self._deadline = timers.deadline(self.gate.next_due, self._tick)
        self._queued: Counter[str] = Counter()  # attempts per source in check()
        self._turns: dict[str, asyncio.Lock] = {}  # one code check at a time per source

    async def check(
        self, attempt: Attempt, code: object, zone_states: Mapping[str, str] | None = None
    ) -> Decision:
        """Identify the code and decide. Never raises on a bad code; never logs it."""
        src = attempt.source
        locked = self.gate.precheck(src, attempt.channel, self.clock.now(), attempt.zones)
        if locked is not None:
            self._done(locked)
            return locked
        if self._queued[src] >= MAX_QUEUED_PER_SOURCE:
            return self.gate.busy(src, attempt.channel, attempt.zones)
        self._queued[src] += 1
        try:
            turn = self._turns.setdefault(src, asyncio.Lock())
            async with turn:
                # again: an attempt that waited here may find the source locked by now
                locked = self.gate.precheck(src, attempt.channel, self.clock.now(), attempt.zones)
                if locked is not None:
                    self._done(locked)
                    return locked
                loop = asyncio.get_running_loop()
                match = await loop.run_in_executor(
                    self._executor, self.authenticator.identify, code
                )
                decision = self.gate.decide(attempt, match, self.clock.now(), zone_states)
        finally:
            self._queued[src] -= 1
            if self._queued[src] <= 0:
                del self._queued[src]
                self._turns.pop(src, None)
        self._done(decision)
        return decision

    async def identify(self, code: object) -> Match | None:
        """Whose code this is, checked in the worker thread (a keypad decides itself)."""
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._executor, self.authenticator.identify, code)

    def refuse(self, reason: str, source: str, channel: str, zones: Sequence[str] = ()) -> Decision:
        """A refusal decided before any code was checked (keypad timeout, entry too long)."""
        decision = self.gate.refuse_entry(reason, source, channel, self.clock.now(), zones)  # type: ignore[arg-type]
        self._done(decision)
        return decision

    def locked(self) -> dict[str, str]:
        return {
            src: until.isoformat()
            for src, until in self.gate.lockout.locked(self.clock.now()).items()
        }

    def _done(self, decision: Decision) -> None:
        if decision.events:
            self._record(list(decision.events))
        self.reschedule()

    def clock_stepped(self, delta: timedelta) -> None:
        """A clock step: lockouts keep their length (see Lockout.clock_stepped)."""
        self.gate.lockout.clock_stepped(delta)
        self.reschedule()

    def reschedule(self) -> None:
        """The gate's next lockout end may have moved (a code was decided)."""
        self._deadline.reschedule()

    def _tick(self) -> None:
        events = self.gate.tick(self.clock.now())
        if events:
            self._record(events)
        self.reschedule()

    def close(self) -> None:
        self._deadline.cancel()
        self._executor.shutdown(wait=False, cancel_futures=True)
