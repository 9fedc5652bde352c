"""The keypads in the daemon: keys from the matrix driver go through the key-sequence logic
(controller/keypad/logic.py), the code is checked off the loop (AccessService), the decision is applied
to the engine, and the buzzer answers: a short beep per key, a long one for accepted, three short
for refused, and beeping through exit and entry delays (faster in the last 10 s).
"""

from __future__ import annotations

import asyncio
import logging
from datetime import datetime
from typing import TYPE_CHECKING

from controller.component import Component
from controller.keypad.logic import KeypadController, KeypadStep, Request

if TYPE_CHECKING:
    from controller.config import Keypad
    from controller.site import Site
    from hardware import Buzzer

log = logging.getLogger(__name__)


class KeypadStation:
    """One keypad: its key-sequence logic, its buzzer and its code checks under way."""

    def __init__(self, site: Site, keypad: Keypad, buzzer: Buzzer | None):
        self.site = site
        self.keypad = keypad
        self.ctl = KeypadController(keypad, site.access.gate)
        self.buzzer = buzzer
        self._deadline = site.timers.deadline(self.ctl.next_due, self._tick)
        self._tasks: set[asyncio.Task[None]] = set()
        self._delay_until: datetime | None = None

    # ------------------------------------------------------------------ keys

    def on_key(self, char: str, at: datetime) -> None:
        self._handle(self.ctl.key(char, self.site.clock.now()))

    def _handle(self, step: KeypadStep) -> None:
        for sound in step.sounds:
            self._play(sound)
        if step.events:
            self.site.record(list(step.events))
        if step.verify is not None:
            task = asyncio.get_running_loop().create_task(self._verify(step.verify))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)
        self._deadline.reschedule()

    async def _verify(self, request: Request) -> None:
        access = self.site.access
        try:
            match = await access.identify(request.code)
        except Exception:
            log.exception("code check failed at %s", self.keypad.id)
            match = None
        now = self.site.clock.now()
        decision = self.ctl.complete(request, match, now, self.site.zone_states())
        if decision.events:
            self.site.record(list(decision.events))
        ok = decision.ok and self.site.apply_decision(decision)
        for sound in self.ctl.result(ok, self.site.clock.now()):
            self._play(sound)
        access.reschedule()
        self._deadline.reschedule()

    async def idle(self) -> None:
        """Wait for code checks under way (the simulator's `sim keys` replies after them)."""
        while self._tasks:
            await asyncio.gather(*list(self._tasks), return_exceptions=True)

    def _play(self, sound: str) -> None:
        if self.buzzer is not None:
            self.buzzer.play(sound)

    def _tick(self) -> None:
        self._handle(self.ctl.tick(self.site.clock.now()))

    # ------------------------------------------------------------------ delay beeps

    def update_delay_beeps(self) -> None:
        """Beep while any of this keypad's zones is in its exit or entry delay."""
        if self.buzzer is None:
            return
        dues = []
        for z in self.keypad.zones:
            zs = self.site.engine.zones[z]
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
        self._deadline.cancel()
        for t in self._tasks:
            t.cancel()


class Keypads(Component):
    """Every keypad of the site, each a `KeypadStation`, fed by the keypad drivers."""

    name = "keypads"

    def __init__(self, site: Site) -> None:
        super().__init__(site)
        self.stations = {
            k.id: KeypadStation(site, k, site.buzzer(k.id)) for k in site.config.keypads
        }

    def start(self) -> None:
        self.site.listen_keys(self._on_key)
        self.engine_stepped()  # beep through a delay the engine restored at boot

    def _on_key(self, keypad: str, char: str, at: datetime) -> None:
        self.stations[keypad].on_key(char, at)

    def engine_stepped(self) -> None:
        for station in self.stations.values():
            station.update_delay_beeps()

    async def idle(self, keypad: str) -> None:
        """Wait for the code checks under way at `keypad`."""
        await self.stations[keypad].idle()

    def close(self) -> None:
        for station in self.stations.values():
            station.close()
