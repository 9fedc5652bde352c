"""Schedules in the daemon: the pure ScheduleRunner (controller/schedule/transitions.py) driven by the
daemon's clock. At start it catches up (each scheduled zone takes the state of its latest
scheduled transition unless a later manual arm/disarm is on record); then it fires pre-arm
warnings (keypad beeps), auto-arms (R403) and auto-disarms (E403) at their times. A manual arm
or disarm is remembered in the journal so a restart does not undo it. When the clock steps (NTP
correction, time set by hand; see controller/clock.py) the runner catches up again from the new
time, exactly as at a start: pending warnings and postponements are dropped, manual actions
still win, and the next transition is timed from the new time.
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any, cast

from controller import texts
from controller.component import Component
from controller.engine import Arm, Disarm, Input
from controller.engine.model import Mode
from controller.events import EventDraft
from controller.schedule.calendar import OfficeCalendar
from controller.schedule.transitions import (
    AutoArm,
    AutoDisarm,
    Postponed,
    PreArmWarning,
    ScheduleRunner,
)

if TYPE_CHECKING:
    from controller.site import Site

log = logging.getLogger(__name__)

texts.register(
    {
        "scheduling.prearm": {
            "vi": "Cảnh báo: {zones} sẽ tự động bật bảo vệ lúc {at}",
            "en": "Warning: {zones} will arm automatically at {at}",
        },
        "scheduling.postponed": {
            "vi": "Hoãn tự động bật bảo vệ {zones} đến {at}",
            "en": "Automatic arming of {zones} postponed to {at}",
        },
    }
)

MANUAL_KEY = "manual_arming"


class ScheduleService(Component):
    """The site's schedules on the daemon's clock (see the module's docstring)."""

    name = "schedules"

    def __init__(self, site: Site):
        super().__init__(site)
        cfg = site.config
        self.calendar = OfficeCalendar(cfg.holidays, cfg.site.language)
        self.runner = ScheduleRunner(cfg.schedules, self.calendar, cfg.tz)
        self.scheduled_zones = {z for s in cfg.schedules for z in s.zones}
        self._deadline = site.timers.deadline(self.runner.next_due, self._tick)
        self._manual: dict[str, str] = {}

    def start(self) -> None:
        if not self.site.config.schedules:
            return
        saved = self.site.logbook.load_state(MANUAL_KEY) or {}
        manual: dict[str, datetime] = {}
        for zone, at in saved.items() if isinstance(saved, dict) else ():
            try:
                manual[zone] = datetime.fromisoformat(at)
                self._manual[zone] = at
            except (TypeError, ValueError):
                continue
        self._do(self.runner.start(self.site.clock.now(), manual))
        self._deadline.reschedule()

    def clock_stepped(self, delta: timedelta) -> None:
        """The clock stepped by `delta`: catch up from the new time (the timer driver then
        times the next transition again)."""
        if not self.runner.started:
            return
        log.info("clock stepped by %s: schedules catch up", delta)
        self._do(self.runner.clock_jumped(self.site.clock.now()))
        self._deadline.reschedule()

    def input_submitted(self, inp: Input) -> None:
        if isinstance(inp, (Arm, Disarm)) and not inp.automatic:
            self.note_manual(inp.zones, self.site.clock.now())

    def claim_decision(self, decision: Any) -> bool | None:
        """A valid code during the pre-arm warning puts the automatic arming off."""
        zones = tuple(decision.zones)
        if self.warning_running(zones):
            return self.postpone(zones)
        return None

    def note_manual(self, zones: tuple[str, ...], at: datetime) -> None:
        """A user armed or disarmed these zones by hand: that wins over the catch-up."""
        zones = tuple(z for z in zones if z in self.scheduled_zones)
        if not zones or not self.site.config.schedules:
            return
        self.runner.note_manual(zones, at)
        for z in zones:
            self._manual[z] = at.isoformat()
        self.site.logbook.save_state(MANUAL_KEY, dict(self._manual))

    def postpone(self, zones: tuple[str, ...]) -> bool:
        """A valid code during a pre-arm warning postpones the auto-arm. True if it did."""
        actions = self.runner.postpone(zones, self.site.clock.now())
        self._do(actions)
        self._deadline.reschedule()
        return bool(actions)

    def warning_running(self, zones: tuple[str, ...]) -> bool:
        now = self.site.clock.now()
        return any(set(w.zones) & set(zones) for w in self.runner.pending_warnings(now))

    def _tick(self) -> None:
        self._do(self.runner.tick(self.site.clock.now()))
        self._deadline.reschedule()

    def _names(self, zones: tuple[str, ...]) -> str:
        return ", ".join(self.site.config.zone(z).name or z for z in zones)

    def _do(self, actions: list[Any]) -> None:
        site = self.site
        for a in actions:
            if isinstance(a, AutoArm):
                site.submit(
                    Arm(
                        tuple(a.zones),
                        cast(Mode, a.mode),  # a schedule's mode is validated by the config
                        source="schedule",
                        automatic=True,
                        force=a.open_sensors == "bypass",
                        instant=True,
                    )
                )
            elif isinstance(a, AutoDisarm):
                site.submit(Disarm(tuple(a.zones), source="schedule", automatic=True))
            elif isinstance(a, PreArmWarning):
                if all(site.engine.zones[z].phase != "disarmed" for z in a.zones):
                    continue  # nobody to warn, nothing will change
                self._notice("scheduling.prearm", "prearm_warning", a.zones, "arm_at", a.arm_at)
                for keypad in site.config.keypads:
                    buzzer = site.buzzer(keypad.id)
                    if set(keypad.zones) & set(a.zones) and buzzer is not None:
                        buzzer.start_prearm_beeps(a.arm_at)
            elif isinstance(a, Postponed):
                self._notice("scheduling.postponed", "postponed", a.zones, "until", a.until)

    def _notice(
        self, key: str, what: str, zones: tuple[str, ...], field: str, when: datetime
    ) -> None:
        """A `system` event about the schedule (pre-arm warning, postponement)."""
        site = self.site
        at = when.astimezone(site.config.tz).strftime("%H:%M")
        text = texts.render(site.config.site.language, key, zones=self._names(zones), at=at)
        detail = {"schedule": what, "zones": list(zones), field: when.isoformat()}
        site.record([EventDraft(kind="system", ts=site.clock.now(), text=text, detail=detail)])

    def close(self) -> None:
        self._deadline.cancel()
