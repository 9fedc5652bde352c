"""The keypads in the daemon: keys from the matrix driver go through the key-sequence logic
(controller/keypad.py), the code is checked off the loop (AccessService), the decision is applied
to the engine, and the buzzer answers: a short beep per key, a long one for accepted, three short
for refused, and beeping through exit and entry delays (faster in the last 10 s).
"""

from __future__ import annotations

import asyncio
import logging
from datetime import datetime
from typing import TYPE_CHECKING

from controller.keypad import KeypadController, KeypadStep, Request

if TYPE_CHECKING:
    from controller.clock import TimerHandle
    from controller.config import Keypad
    from controller.daemon import Daemon
    from hardware import Buzzer

log = logging.getLogger(__name__)


class KeypadStation:
    def __init__(self, daemon: Daemon, keypad: Keypad, buzzer: Buzzer | None):
        assert daemon.access is not None
        self.daemon = daemon
        self.keypad = keypad
        self.ctl = KeypadController(keypad, daemon.access.gate)
        self.buzzer = buzzer
        self._timer: TimerHandle | None = None
        self._tasks: set[asyncio.Task[None]] = set()
        self._delay_until: datetime | None = None

    # ------------------------------------------------------------------ keys

    def on_key(self, char: str, at: datetime) -> None:
        self._handle(self.ctl.key(char, self.daemon.clock.now()))

    def _handle(self, step: KeypadStep) -> None:
        for sound in step.sounds:
            self._play(sound)
        if step.events:
            self.daemon.record_external(list(step.events))
        if step.verify is not None:
            task = asyncio.get_running_loop().create_task(self._verify(step.verify))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)
        self._reschedule()

    async def _verify(self, request: Request) -> None:
        access = self.daemon.access
        assert access is not None
        loop = asyncio.get_running_loop()
        try:
            match = await loop.run_in_executor(
                access._executor, access.authenticator.identify, request.code
            )
        except Exception:
            log.exception("code check failed at %s", self.keypad.id)
            match = None
        now = self.daemon.clock.now()
        decision = self.ctl.complete(request, match, now, self.daemon.zone_states())
        if decision.events:
            self.daemon.record_external(list(decision.events))
        schedules = self.daemon.schedules
        if decision.ok and schedules is not None and schedules.warning_running(tuple(decision.zones)):
            # a valid code during the pre-arm warning puts the automatic arming off
            ok = schedules.postpone(tuple(decision.zones))
        else:
            ok = decision.ok and self.daemon.apply_decision(decision)
        for sound in self.ctl.result(ok, self.daemon.clock.now()):
            self._play(sound)
        access._reschedule()
        self._reschedule()

    async def idle(self) -> None:
        """Wait for code checks under way (the simulator's `sim keys` replies after them)."""
        while self._tasks:
            await asyncio.gather(*list(self._tasks), return_exceptions=True)

    def _play(self, sound: str) -> None:
        if self.buzzer is not None:
            self.buzzer.play(sound)

    def _reschedule(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        due = self.ctl.next_due()
        if due is not None:
            self._timer = self.daemon.clock.call_at(due, self._tick)

    def _tick(self) -> None:
        self._timer = None
        self._handle(self.ctl.tick(self.daemon.clock.now()))

    # ------------------------------------------------------------------ delay beeps

    def update_delay_beeps(self) -> None:
        """Beep while any of this keypad's zones is in its exit or entry delay."""
        if self.buzzer is None:
            return
        dues = []
        for z in self.keypad.zones:
            zs = self.daemon.engine.zones[z]
            dues += [d for d in (zs.exit_due, zs.entry_due) if d is not None]
        until = max(dues) if dues else None
        if until == self._delay_until:
            return
        self._delay_until = until
        if until is None:
            self.buzzer.stop()
        else:
            self.buzzer.start_delay_beeps(until)

    def close(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
        for t in self._tasks:
            t.cancel()
