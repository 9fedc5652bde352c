"""Schedules in the daemon: the pure ScheduleRunner (controller/schedule.py) driven by the
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
from typing import TYPE_CHECKING, Any

from controller import texts
from controller.calendar import OfficeCalendar
from controller.engine import Arm, Disarm
from controller.events import EventDraft
from controller.schedule import AutoArm, AutoDisarm, Postponed, PreArmWarning, ScheduleRunner

if TYPE_CHECKING:
    from controller.clock import TimerHandle
    from controller.daemon import Daemon

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


class ScheduleService:
    def __init__(self, daemon: Daemon):
        self.daemon = daemon
        cfg = daemon.cfg
        self.calendar = OfficeCalendar(cfg.holidays, cfg.site.language)
        self.runner = ScheduleRunner(cfg.schedules, self.calendar, cfg.tz)
        self.scheduled_zones = {z for s in cfg.schedules for z in s.zones}
        self._timer: TimerHandle | None = None
        self._manual: dict[str, str] = {}
        self._listening = False

    def start(self) -> None:
        if not self.daemon.cfg.schedules:
            return
        assert self.daemon.journal is not None
        saved = self.daemon.journal.load_state(MANUAL_KEY) or {}
        manual: dict[str, datetime] = {}
        for zone, at in saved.items() if isinstance(saved, dict) else ():
            try:
                manual[zone] = datetime.fromisoformat(at)
                self._manual[zone] = at
            except (TypeError, ValueError):
                continue
        self._do(self.runner.start(self.daemon.clock.now(), manual))
        self._reschedule()
        self.daemon.clock.add_jump_listener(self.clock_jumped)
        self._listening = True

    def clock_jumped(self, delta: timedelta) -> None:
        """The clock stepped by `delta`: catch up from the new time and time the next
        transition again (the timer set for the old next transition is dropped)."""
        if not self.runner.started:
            return
        log.info("clock stepped by %s: schedules catch up", delta)
        self._do(self.runner.clock_jumped(self.daemon.clock.now()))
        self._reschedule()

    def note_manual(self, zones: tuple[str, ...], at: datetime) -> None:
        """A user armed or disarmed these zones by hand: that wins over the catch-up."""
        zones = tuple(z for z in zones if z in self.scheduled_zones)
        if not zones or not self.daemon.cfg.schedules:
            return
        self.runner.note_manual(zones, at)
        for z in zones:
            self._manual[z] = at.isoformat()
        assert self.daemon.journal is not None
        self.daemon.journal.save_state(MANUAL_KEY, dict(self._manual))

    def postpone(self, zones: tuple[str, ...]) -> bool:
        """A valid code during a pre-arm warning postpones the auto-arm. True if it did."""
        actions = self.runner.postpone(zones, self.daemon.clock.now())
        self._do(actions)
        self._reschedule()
        return bool(actions)

    def warning_running(self, zones: tuple[str, ...]) -> bool:
        now = self.daemon.clock.now()
        return any(set(w.zones) & set(zones) for w in self.runner.pending_warnings(now))

    def _tick(self) -> None:
        self._timer = None
        self._do(self.runner.tick(self.daemon.clock.now()))
        self._reschedule()

    def _reschedule(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        due = self.runner.next_due()
        if due is not None:
            self._timer = self.daemon.clock.call_at(due, self._tick)

    def _names(self, zones: tuple[str, ...]) -> str:
        return ", ".join(self.daemon.cfg.zone(z).name or z for z in zones)

    def _do(self, actions: list[Any]) -> None:
        d = self.daemon
        for a in actions:
            if isinstance(a, AutoArm):
                d.submit(
                    Arm(
                        tuple(a.zones),
                        a.mode,
                        source="schedule",
                        automatic=True,  # type: ignore[arg-type]
                        force=a.open_sensors == "bypass",
                        instant=True,
                    )
                )
            elif isinstance(a, AutoDisarm):
                d.submit(Disarm(tuple(a.zones), source="schedule", automatic=True))
            elif isinstance(a, PreArmWarning):
                if all(d.engine.zones[z].phase != "disarmed" for z in a.zones):
                    continue  # nobody to warn, nothing will change
                self._notice("scheduling.prearm", "prearm_warning", a.zones, "arm_at", a.arm_at)
                for station in d.keypads.values():
                    if set(station.keypad.zones) & set(a.zones) and station.buzzer is not None:
                        station.buzzer.start_prearm_beeps(a.arm_at)
            elif isinstance(a, Postponed):
                self._notice("scheduling.postponed", "postponed", a.zones, "until", a.until)

    def _notice(
        self, key: str, what: str, zones: tuple[str, ...], field: str, when: datetime
    ) -> None:
        """A `system` event about the schedule (pre-arm warning, postponement)."""
        d = self.daemon
        at = when.astimezone(d.cfg.tz).strftime("%H:%M")
        text = texts.render(d.cfg.site.language, key, zones=self._names(zones), at=at)
        detail = {"schedule": what, "zones": list(zones), field: when.isoformat()}
        d.record_external([EventDraft(kind="system", ts=d.clock.now(), text=text, detail=detail)])

    def close(self) -> None:
        if self._listening:
            self.daemon.clock.remove_jump_listener(self.clock_jumped)
            self._listening = False
        if self._timer is not None:
            self._timer.cancel()
