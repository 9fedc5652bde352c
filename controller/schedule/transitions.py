"""Arming by schedule and by the holiday calendar: when each group of zones arms and disarms itself.

Everything here is pure: time comes in as an argument (aware datetimes, UTC inside), nothing reads
the wall clock or sleeps. The daemon drives `ScheduleRunner` from its own clock (real or virtual),
so `sim advance` fires the schedule exactly as real time would.

How a schedule is read (config `schedules:`; times are wall-clock times in the site's time zone)
------------------------------------------------------------------------------------------------
Each schedule has an `arm` and a `disarm` time. The *armed window* of a day D starts at D's arm
time and ends at the next disarm time: on the same day when disarm is later than arm (arm 08:00,
disarm 18:00), otherwise the next morning (arm 22:00, disarm 06:00: the 06:00 disarm belongs to
the window that began at 22:00 the evening before).

`days` chooses the days whose window runs ("in days"):
  daily        every day
  workdays     the calendar's workdays: weekdays that are not holidays, plus make-up working days
  weekends     the calendar's weekend days, except make-up working days
  [mon, fri]   those weekdays, whatever the calendar says

A *day off* is any day that is not a calendar workday (a weekend day or a holiday; see
controller/schedule/calendar.py). `holidays` says what a day off does to the windows:

  follow      days off are like any other day: D's window runs iff D is in `days`.
  stay_armed  the zones stay armed on days off. D's window runs iff D is in `days` OR D is a day
              off (the arm time applies on every day off, so zones that a guard disarmed by hand
              on a holiday are armed again by the evening); a disarm that falls on a day off is
              skipped. Zones armed on the evening before a block of days off therefore stay
              armed through it and disarm at the disarm time of the next workday.
              Reference config (arm 17:30, disarm 07:30, workdays): armed Friday 17:30, still
              armed all weekend and all through Tết 16-20 Feb 2026, disarmed Monday 23 Feb 07:30.
  disarmed    no arming on days off: D's window runs iff D is in `days` and D is a workday.
              (A window begun on a workday still ends normally the next morning.)

With `workdays` and `follow`, the window of the last workday before a day off still ends the next
morning, and no window starts on the day off: use `stay_armed` to keep an office armed.

Turning wall-clock times into instants (for sites with daylight saving time): a time that occurs
twice (clocks go back) means its first occurrence; a time that does not exist (clocks jump
forward over it) means the instant of the jump, so an arm at 02:30 on a spring-forward night
happens when the clock jumps from 02:00 to 03:00. Order is kept: a later wall-clock time never
maps to an earlier instant. When two transitions fall on one instant, they take effect in
wall-clock order, the last one deciding the state.

The catch-up rule
-----------------
At any instant, a scheduled zone's *scheduled state* is the action of the most recent effective
transition at or before that instant (searched back up to 400 days; with none found the schedule
has no say). `ScheduleRunner.start` brings every zone to that state, unless a manual arm or
disarm of the zone is on record at or after that transition: the manual action wins.
A catch-up arm happens at once, without a pre-arm warning (nobody is there to postpone it, and
arming late is worse); if the runner starts inside a warning period, the warning is given at once.

Live operation (`ScheduleRunner.tick`)
--------------------------------------
Before each scheduled arm reached live, a `PreArmWarning` is issued `prearm_warning` (60 s)
earlier, so the keypad buzzer can beep; a valid code during the warning postpones the arm by the
schedule's `postpone` (30 min) counted from the pending arm time (`postpone` returns
`Postponed`, to be reported), and the warning repeats before the postponed arm. The next
scheduled transition of that schedule cancels a pending postponed arm. If the daemon is stuck
past an arm time (a late tick), the arm happens at once without a stale warning, so the runner's
state at every tick equals the catch-up rule whenever nothing is postponed.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta, tzinfo
from typing import Any, Literal, Protocol

from controller import texts
from controller.config import Schedule, SiteConfig
from controller.engine.messages import MODE_NAMES
from controller.schedule.calendar import OfficeCalendar

Action = Literal["arm", "disarm"]
Rule = Literal["days", "day_off"]
Status = Literal["scheduled", "skipped"]

SEARCH_DAYS = 400
"""How far back the catch-up rule and forward `next_transition` look for a transition."""

_DAY_NAMES = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
_ONE_DAY = timedelta(days=1)

texts.register(
    {
        "schedule.arm": {"vi": "bật báo động", "en": "arm"},
        "schedule.disarm": {"vi": "tắt báo động", "en": "disarm"},
        "schedule.skipped": {"vi": "bỏ qua", "en": "skipped"},
        "schedule.keep_armed": {"vi": "giữ bật (ngày nghỉ)", "en": "keep armed (day off)"},
        "schedule.header": {
            "vi": "Lịch bật/tắt báo động từ {start} ({days} ngày), múi giờ {tz}",
            "en": "Arming schedule from {start} ({days} days), time zone {tz}",
        },
        "schedule.none": {
            "vi": "Không có lần bật/tắt nào theo lịch trong khoảng này.",
            "en": "No scheduled arming or disarming in this period.",
        },
        "schedule.weekdays": {
            "vi": "T2 T3 T4 T5 T6 T7 CN",
            "en": "Mon Tue Wed Thu Fri Sat Sun",
        },
    }
)


class Calendar(Protocol):
    """What the schedule needs from a calendar (controller.schedule.calendar.OfficeCalendar has it)."""

    def is_workday(self, d: date) -> bool: ...

    def is_weekend(self, d: date) -> bool: ...

    def holiday_name(self, d: date) -> str | None: ...

    def day_off_name(self, d: date) -> str | None: ...


# ----------------------------------------------------------------------------- time conversion


def local_to_utc(day: date, at: time, tz: tzinfo) -> datetime:
    """The aware UTC instant at which the wall clock of `tz` shows `at` on `day`.

    An ambiguous time (clocks go back) gives its first occurrence; a time skipped by a
    forward jump gives the instant of the jump (the first instant the clock shows a later time).
    """
    naive = datetime.combine(day, at.replace(tzinfo=None, fold=0))
    first = naive.replace(tzinfo=tz).astimezone(UTC)
    if first.astimezone(tz).replace(tzinfo=None) == naive:
        return first
    # Non-existent wall time. The jump lies within a day before `first`; find the first instant
    # whose wall time is >= naive (wall time is non-decreasing across a forward jump).
    lo = int((first - timedelta(days=1)).timestamp())
    hi = int(first.timestamp())
    while lo < hi:
        mid = (lo + hi) // 2
        if datetime.fromtimestamp(mid, tz).replace(tzinfo=None) >= naive:
            hi = mid
        else:
            lo = mid + 1
    return datetime.fromtimestamp(lo, UTC)


# ----------------------------------------------------------------------------- transitions


@dataclass(frozen=True)
class Transition:
    """One scheduled arm or disarm of a group of zones.

    `at` is the aware UTC instant, `local` the same instant on the site's clock. `day` is the day
    whose armed window this transition opens or closes. `rule` is "days" when `days` made it and
    "day_off" when only the `stay_armed` policy did (a re-arm on a day off). `reason` names the
    day off that shaped it (holiday name, or "weekend"), else None. `schedule` is the index of
    the schedule in the list given.
    """

    at: datetime
    local: datetime
    zones: tuple[str, ...]
    action: Action
    mode: str
    reason: str | None = None
    rule: Rule = "days"
    schedule: int = 0
    day: date | None = None
    open_sensors: Literal["bypass", "refuse"] = "bypass"

    def to_json(self) -> dict[str, Any]:
        return {
            "at": self.at.isoformat(),
            "local": self.local.isoformat(),
            "zones": list(self.zones),
            "action": self.action,
            "mode": self.mode,
            "reason": self.reason,
            "rule": self.rule,
            "schedule": self.schedule,
            "day": None if self.day is None else self.day.isoformat(),
        }


@dataclass(frozen=True)
class _Event:
    """A transition, or one the holiday policy skipped (kept for the preview)."""

    transition: Transition
    skipped: bool


def _in_days(s: Schedule, cal: Calendar, d: date) -> bool:
    if s.days == "daily":
        return True
    if s.days == "workdays":
        return cal.is_workday(d)
    if s.days == "weekends":
        return cal.is_weekend(d) and not cal.is_workday(d)
    return _DAY_NAMES[d.weekday()] in s.days


def _nominally_in_days(s: Schedule, cal: Calendar, d: date) -> bool:
    """In `days` if there were no holidays (for showing arms a holiday skipped)."""
    if s.days == "workdays":
        return not cal.is_weekend(d) or cal.is_workday(d)
    return _in_days(s, cal, d)


def _window_runs(s: Schedule, cal: Calendar, d: date) -> tuple[bool, Rule]:
    in_days = _in_days(s, cal, d)
    if s.holidays == "follow":
        return in_days, "days"
    off = not cal.is_workday(d)
    if s.holidays == "stay_armed":
        return (in_days or off), ("days" if in_days else "day_off")
    return (in_days and not off), "days"  # disarmed


def _day_events(s: Schedule, cal: Calendar, d: date, tz: tzinfo, index: int) -> list[_Event]:
    """The arm and disarm of day d's window (the disarm may fall on d + 1), skipped ones flagged,
    in time order."""

    def event(
        on: date, at: time, action: Action, reason: str | None, rule: Rule, skipped: bool
    ) -> _Event:
        utc_at = local_to_utc(on, at, tz)
        t = Transition(
            at=utc_at,
            local=utc_at.astimezone(tz),
            zones=tuple(s.zones),
            action=action,
            mode=s.mode,
            reason=reason,
            rule=rule,
            schedule=index,
            day=d,
            open_sensors=s.open_sensors,
        )
        return _Event(t, skipped)

    runs, rule = _window_runs(s, cal, d)
    if not runs:
        if _nominally_in_days(s, cal, d):  # a day off took this arm away: show it as skipped
            return [event(d, s.arm, "arm", cal.day_off_name(d), "days", True)]
        return []
    arm_reason = cal.day_off_name(d) if rule == "day_off" else None
    end_day = d if s.disarm > s.arm else d + _ONE_DAY
    skip_disarm = s.holidays == "stay_armed" and not cal.is_workday(end_day)
    disarm_reason = cal.day_off_name(end_day) if skip_disarm else None
    return [
        event(d, s.arm, "arm", arm_reason, rule, False),
        event(end_day, s.disarm, "disarm", disarm_reason, "days", skip_disarm),
    ]


def order_key(t: Transition) -> tuple[datetime, date, int]:
    """Total order of one schedule's transitions: by instant, then window day, arm before disarm
    (two transitions share an instant only when a clock jump swallows both)."""
    return (t.at, t.day or t.local.date(), 0 if t.action == "arm" else 1)


def _local_date(at: datetime, tz: tzinfo) -> date:
    return at.astimezone(tz).date()


def _iter_events(
    s: Schedule,
    cal: Calendar,
    tz: tzinfo,
    after: datetime,
    *,
    index: int = 0,
    max_days: int = SEARCH_DAYS,
    include_skipped: bool = False,
    after_key: tuple[datetime, date, int] | None = None,
) -> Iterator[_Event]:
    """Events with at > after (or, given after_key, ordered after it), in order, over at most
    `max_days` days past `after`'s date."""
    first = _local_date(after, tz) - timedelta(days=2)
    for k in range(max_days + 3):
        for ev in _day_events(s, cal, first + timedelta(days=k), tz, index):
            t = ev.transition
            later = t.at > after if after_key is None else order_key(t) > after_key
            if later and (include_skipped or not ev.skipped):
                yield ev


def _as_list(schedules: Schedule | Sequence[Schedule]) -> list[Schedule]:
    return [schedules] if isinstance(schedules, Schedule) else list(schedules)


def _aware(dt: datetime, what: str) -> datetime:
    if dt.tzinfo is None or dt.utcoffset() is None:
        raise ValueError(f"{what} must be an aware datetime (with a time zone), got {dt!r}")
    return dt.astimezone(UTC)


def transitions(
    schedule: Schedule,
    calendar: Calendar,
    start: datetime,
    end: datetime,
    tz: tzinfo,
    *,
    index: int = 0,
) -> list[Transition]:
    """Effective transitions of one schedule with start <= at < end, in time order."""
    start, end = _aware(start, "start"), _aware(end, "end")
    out: list[Transition] = []
    if end <= start:
        return out
    span = (end - start).days + 2
    for ev in _iter_events(
        schedule, calendar, tz, start - timedelta(microseconds=1), index=index, max_days=span
    ):
        if ev.transition.at >= end:
            break
        out.append(ev.transition)
    return out


def next_transition(
    schedules: Schedule | Sequence[Schedule],
    calendar: Calendar,
    now: datetime,
    tz: tzinfo,
    *,
    max_days: int = SEARCH_DAYS,
) -> Transition | None:
    """The first effective transition strictly after `now` (over all schedules given), or None
    if there is none within `max_days`."""
    now = _aware(now, "now")
    best: Transition | None = None
    for i, s in enumerate(_as_list(schedules)):
        for ev in _iter_events(s, calendar, tz, now, index=i, max_days=max_days):
            if best is None or ev.transition.at < best.at:
                best = ev.transition
            break
    return best


def last_transition(
    schedule: Schedule,
    calendar: Calendar,
    now: datetime,
    tz: tzinfo,
    *,
    index: int = 0,
    max_days: int = SEARCH_DAYS,
) -> Transition | None:
    """The most recent effective transition at or before `now`, or None within `max_days`."""
    now = _aware(now, "now")
    top = _local_date(now, tz) + _ONE_DAY
    best: Transition | None = None
    for k in range(max_days + 2):
        d = top - timedelta(days=k)
        for ev in _day_events(schedule, calendar, d, tz, index):
            t = ev.transition
            if not ev.skipped and t.at <= now and (best is None or order_key(t) > order_key(best)):
                best = t
        # Windows are in time order (each one's events come after the previous window's), so
        # once a window has given a candidate, earlier windows cannot hold a later one.
        if best is not None:
            break
    return best


@dataclass(frozen=True)
class ZoneTarget:
    """A zone's scheduled state by the catch-up rule: what its most recent transition did."""

    zone: str
    action: Action
    mode: str
    transition: Transition

    @property
    def armed(self) -> bool:
        return self.action == "arm"


def scheduled_state(
    schedules: Sequence[Schedule],
    calendar: Calendar,
    now: datetime,
    tz: tzinfo,
    *,
    max_days: int = SEARCH_DAYS,
) -> dict[str, ZoneTarget]:
    """The catch-up rule: zone -> state of its schedule's most recent transition at or before
    `now`. Zones whose schedule has no transition within `max_days` are left out."""
    out: dict[str, ZoneTarget] = {}
    for i, s in enumerate(schedules):
        t = last_transition(s, calendar, now, tz, index=i, max_days=max_days)
        if t is None:
            continue
        for z in s.zones:
            out[z] = ZoneTarget(z, t.action, t.mode, t)
    return out


# ----------------------------------------------------------------------------- runner actions


@dataclass(frozen=True)
class PreArmWarning:
    """Beep the keypad buzzer of these zones until `arm_at`: they arm automatically then.

    Given before every scheduled arm, including the evening re-arm of `stay_armed` on a day off
    (`transition.rule == "day_off"`); the daemon should stay quiet when every zone listed is
    already armed (nobody to warn, nothing will change)."""

    zones: tuple[str, ...]
    arm_at: datetime
    transition: Transition


@dataclass(frozen=True)
class AutoArm:
    """Arm these zones now (`R403`). open_sensors: "bypass" = arm with open sensors bypassed and
    report each (`E570`); "refuse" = do not arm if any is open and report `arm_failed` (`E455`).
    catch_up: made by start/clock_jumped (arm at once); postponed: the arm a code postponed."""

    zones: tuple[str, ...]
    mode: str
    open_sensors: Literal["bypass", "refuse"]
    transition: Transition
    catch_up: bool = False
    postponed: bool = False


@dataclass(frozen=True)
class AutoDisarm:
    """Disarm these zones now (`E403`)."""

    zones: tuple[str, ...]
    transition: Transition
    catch_up: bool = False


@dataclass(frozen=True)
class Postponed:
    """A valid code during the pre-arm warning put the auto-arm of these zones off to `until`."""

    zones: tuple[str, ...]
    until: datetime
    transition: Transition


RunnerAction = PreArmWarning | AutoArm | AutoDisarm | Postponed


@dataclass
class _Pending:
    """An auto-arm a code postponed: these zones arm at `arm_at` (after their own warning)."""

    zones: tuple[str, ...]
    arm_at: datetime
    transition: Transition
    warned: bool = False


@dataclass
class _Track:
    schedule: Schedule
    index: int
    upcoming: Transition | None = None
    warned: bool = False  # the warning for `upcoming` (an arm) has been given
    postponed: list[_Pending] = field(default_factory=list)
    horizon: datetime | None = None  # when upcoming is None: look again from here


class ScheduleRunner:
    """The schedule as the daemon runs it. Pure: every method takes the daemon's `now`.

    Use: `actions = runner.start(now, manual_overrides)`, then call `runner.tick(now)` whenever the
    clock reaches `runner.next_due()` (and after any other wake-up; ticking early or late is
    safe), `runner.postpone(zones, now)` when a valid code is entered during a pre-arm warning,
    `runner.note_manual(zones, at)` when a user arms or disarms by hand, and
    `runner.clock_jumped(now)` after the clock steps (NTP) or a virtual jump. Each call returns
    the actions to carry out, in order.
    """

    def __init__(self, schedules: Sequence[Schedule], calendar: Calendar, tz: tzinfo) -> None:
        seen: dict[str, int] = {}
        for i, s in enumerate(schedules):
            for z in s.zones:
                if z in seen:
                    raise ValueError(f"zone {z} is in schedules[{seen[z]}] and schedules[{i}]")
                seen[z] = i
        self.calendar = calendar
        self.tz = tz
        self._tracks = [_Track(s, i) for i, s in enumerate(schedules)]
        self._manual: dict[str, datetime] = {}
        self._now: datetime | None = None

    # ------------------------------------------------------------------ public
    @property
    def started(self) -> bool:
        return self._now is not None

    def start(
        self, now: datetime, manual_overrides: Mapping[str, datetime] | None = None
    ) -> list[RunnerAction]:
        """Catch up: each scheduled zone takes its scheduled state (see module docstring), unless
        a manual arm/disarm at or after that transition is on record (zone -> aware datetime)."""
        now = _aware(now, "now")
        overrides = {
            z: _aware(at, f"manual_overrides[{z!r}]") for z, at in (manual_overrides or {}).items()
        }
        for zone, at in overrides.items():
            self.note_manual([zone], at)
        return self._catch_up(now)

    def clock_jumped(
        self, now: datetime, manual_overrides: Mapping[str, datetime] | None = None
    ) -> list[RunnerAction]:
        """The clock stepped (either way): forget pending warnings and postponements and catch
        up again from `now`, honouring manual actions noted so far (and any given here).

        A step back never disarms: the catch-up's automatic disarms are dropped, so a wrong or
        spoofed time source cannot open the building (zones already armed stay armed until a
        user disarms them with a code or the next scheduled disarm comes). A step forward
        catches up both ways, as at start."""
        back = self._now is not None and _aware(now, "now") < self._now
        actions = self.start(now, manual_overrides)
        if back:
            actions = [a for a in actions if not isinstance(a, AutoDisarm)]
        return actions

    def note_manual(self, zones: Sequence[str], at: datetime) -> None:
        """Record a manual arm or disarm, so a later catch-up (clock jump) respects it."""
        at = _aware(at, "at")
        for z in zones:
            prev = self._manual.get(z)
            if prev is None or at > prev:
                self._manual[z] = at

    def tick(self, now: datetime) -> list[RunnerAction]:
        """Everything due at or before `now`, in time order. A `now` earlier than the previous
        call means the clock went back: handled as clock_jumped(now)."""
        now = _aware(now, "now")
        if self._now is None:
            raise RuntimeError("ScheduleRunner.start() must be called first")
        if now < self._now:
            return self.clock_jumped(now)
        out: list[RunnerAction] = []
        while True:
            item = self._earliest_due()
            if item is None or item[0] > now:
                break
            self._fire(item, now, out)
        self._now = now
        return out

    def next_due(self) -> datetime | None:
        """When tick should next be called (a warning, an arm, a disarm or a re-check), or None
        when no schedule has anything ahead."""
        item = self._earliest_due()
        return None if item is None else item[0]

    def postpone(self, zones: Sequence[str], now: datetime) -> list[RunnerAction]:
        """A valid code was entered at a keypad covering `zones` during a pre-arm warning: put
        the pending auto-arm of those zones off by the schedule's `postpone`. Returns one
        `Postponed` per schedule affected, or [] when no warning is running for these zones."""
        now = _aware(now, "now")
        out: list[RunnerAction] = []
        wanted = set(zones)
        for tr in self._tracks:
            delay = tr.schedule.postpone
            # a postponed arm whose own warning is running
            for p in list(tr.postponed):
                hit = tuple(z for z in p.zones if z in wanted)
                if hit and p.warned and now < p.arm_at:
                    self._split(tr, p, hit, p.arm_at + delay, out)
            up = tr.upcoming
            if up is None or up.action != "arm" or not tr.warned or not (now < up.at):
                continue
            hit = tuple(z for z in up.zones if z in wanted and not self._postponed(tr, z))
            if not hit:
                continue
            until = up.at + delay
            tr.postponed.append(_Pending(hit, until, up))
            out.append(Postponed(hit, until, up))
        return out

    def pending_warnings(self, now: datetime) -> list[PreArmWarning]:
        """Warnings running at `now` (for status displays and a keypad that reconnects)."""
        now = _aware(now, "now")
        out: list[PreArmWarning] = []
        for tr in self._tracks:
            up = tr.upcoming
            if up is not None and up.action == "arm" and tr.warned and now < up.at:
                zones = tuple(z for z in up.zones if not self._postponed(tr, z))
                if zones:
                    out.append(PreArmWarning(zones, up.at, up))
            for p in tr.postponed:
                if p.warned and now < p.arm_at:
                    out.append(PreArmWarning(p.zones, p.arm_at, p.transition))
        return out

    # ------------------------------------------------------------------ internals
    def _postponed(self, tr: _Track, zone: str) -> bool:
        return any(zone in p.zones for p in tr.postponed)

    def _split(
        self, tr: _Track, p: _Pending, hit: tuple[str, ...], until: datetime, out: list[Any]
    ) -> None:
        rest = tuple(z for z in p.zones if z not in hit)
        tr.postponed.remove(p)
        if rest:
            tr.postponed.append(_Pending(rest, p.arm_at, p.transition, p.warned))
        tr.postponed.append(_Pending(hit, until, p.transition))
        out.append(Postponed(hit, until, p.transition))

    def _advance(self, tr: _Track, after: datetime, done: Transition | None = None) -> None:
        """Load the schedule's next transition after `after` (or after `done`, in order)."""
        key = None if done is None else order_key(done)
        events = _iter_events(
            tr.schedule, self.calendar, self.tz, after, index=tr.index, after_key=key
        )
        nxt = next(iter(events), None)
        tr.upcoming = None if nxt is None else nxt.transition
        tr.warned = False
        tr.horizon = after + timedelta(days=SEARCH_DAYS // 2) if nxt is None else None

    def _catch_up(self, now: datetime) -> list[RunnerAction]:
        out: list[RunnerAction] = []
        self._now = now
        for tr in self._tracks:
            tr.postponed.clear()
            last = last_transition(tr.schedule, self.calendar, now, self.tz, index=tr.index)
            if last is not None:
                zones = tuple(
                    z for z in last.zones if z not in self._manual or self._manual[z] < last.at
                )
                if zones:
                    if last.action == "arm":
                        out.append(
                            AutoArm(zones, last.mode, last.open_sensors, last, catch_up=True)
                        )
                    else:
                        out.append(AutoDisarm(zones, last, catch_up=True))
            self._advance(tr, now)
            up = tr.upcoming
            if up is not None and up.action == "arm":
                warn_at = up.at - tr.schedule.prearm_warning
                if warn_at <= now < up.at:
                    tr.warned = True
                    out.append(PreArmWarning(up.zones, up.at, up))
        return out

    def _earliest_due(self) -> tuple[datetime, int, _Track, _Pending | None] | None:
        """(due time, order, track, postponed arm or None) of the next thing to do."""
        best: tuple[datetime, int, _Track, _Pending | None] | None = None

        def consider(item: tuple[datetime, int, _Track, _Pending | None]) -> None:
            nonlocal best
            if best is None or (item[0], item[1]) < (best[0], best[1]):
                best = item

        for tr in self._tracks:
            up = tr.upcoming
            if up is not None:
                if up.action == "arm" and not tr.warned:
                    consider((up.at - tr.schedule.prearm_warning, 0, tr, None))
                else:
                    consider((up.at, 1, tr, None))
            elif tr.horizon is not None:
                consider((tr.horizon, 2, tr, None))
            for p in tr.postponed:
                if not p.warned:
                    consider((p.arm_at - tr.schedule.prearm_warning, 0, tr, p))
                else:
                    consider((p.arm_at, 1, tr, p))
        return best

    def _fire(
        self,
        item: tuple[datetime, int, _Track, _Pending | None],
        now: datetime,
        out: list[RunnerAction],
    ) -> None:
        due, _, tr, pending = item
        if pending is not None:
            if not pending.warned:
                pending.warned = True
                if now < pending.arm_at:
                    out.append(PreArmWarning(pending.zones, pending.arm_at, pending.transition))
                return
            tr.postponed.remove(pending)
            out.append(
                AutoArm(
                    pending.zones,
                    pending.transition.mode,
                    pending.transition.open_sensors,
                    pending.transition,
                    postponed=True,
                )
            )
            return
        up = tr.upcoming
        if up is None:  # horizon re-check
            self._advance(tr, due)
            return
        if up.action == "arm" and not tr.warned:
            tr.warned = True
            if now < up.at:
                out.append(PreArmWarning(up.zones, up.at, up))
            return
        # The transition itself. Zones whose arm a code postponed wait for their postponed arm;
        # postponed arms left over from an earlier transition are superseded by this one.
        tr.postponed = [p for p in tr.postponed if p.transition == up]
        if up.action == "arm":
            waiting = {z for p in tr.postponed for z in p.zones}
            zones = tuple(z for z in up.zones if z not in waiting)
            if zones:
                out.append(AutoArm(zones, up.mode, up.open_sensors, up))
        else:
            out.append(AutoDisarm(up.zones, up))
        self._advance(tr, up.at, up)


# ----------------------------------------------------------------------------- preview


@dataclass(frozen=True)
class PreviewRow:
    """One line of `officeguard schedule`: a transition, or one a day off skipped."""

    transition: Transition
    status: Status
    holiday: str | None  # the holiday on that local date, if any (whatever it did)
    weekday: str  # localized short weekday name

    @property
    def local(self) -> datetime:
        return self.transition.local

    def to_json(self) -> dict[str, Any]:
        t = self.transition
        return {
            "date": t.local.date().isoformat(),
            "weekday": _DAY_NAMES[t.local.weekday()],
            "time": t.local.strftime("%H:%M"),
            "at": t.at.isoformat(),
            "local": t.local.isoformat(),
            "zones": list(t.zones),
            "action": t.action,
            "mode": t.mode,
            "status": self.status,
            "rule": t.rule,
            "reason": t.reason,
            "holiday": self.holiday,
            "schedule": t.schedule,
        }


def preview(
    schedules: Sequence[Schedule],
    calendar: Calendar,
    tz: tzinfo,
    start_date: date,
    days: int,
    language: str = "vi",
) -> list[PreviewRow]:
    """Every transition (and every one a day off skipped) whose local date is in
    [start_date, start_date + days), in time order."""
    if days < 1:
        raise ValueError("days must be at least 1")
    if days > 3660:
        raise ValueError("days must be at most 3660 (ten years)")
    end_date = start_date + timedelta(days=days)
    names = texts.render(language, "schedule.weekdays").split()
    rows: list[tuple[datetime, str, int, PreviewRow]] = []
    for i, s in enumerate(schedules):
        for k in range(-2, days + 1):
            for ev in _day_events(s, calendar, start_date + timedelta(days=k), tz, i):
                t = ev.transition
                d = t.local.date()
                if not (start_date <= d < end_date):
                    continue
                row = PreviewRow(
                    t,
                    "skipped" if ev.skipped else "scheduled",
                    calendar.holiday_name(d),
                    names[d.weekday()],
                )
                rows.append((t.at, t.local.strftime("%H:%M"), i, row))
    rows.sort(key=lambda r: (r[0], r[2], r[1]))
    return [r[3] for r in rows]


def preview_json(rows: Sequence[PreviewRow]) -> list[dict[str, Any]]:
    """The JSON-able form of `preview` rows (for `officeguard schedule --json`)."""
    return [r.to_json() for r in rows]


def format_preview(
    rows: Sequence[PreviewRow],
    language: str = "vi",
    *,
    header: str | None = None,
) -> str:
    """Plain-text table for `officeguard schedule`: date, weekday, time, action, zones, and the
    holiday or day off that shaped the line. Skipped transitions are shown as such."""
    lines: list[str] = [header] if header else []
    if not rows:
        lines.append(texts.render(language, "schedule.none"))
        return "\n".join(lines)
    cells: list[tuple[str, str, str, str, str, str]] = []
    for r in rows:
        t = r.transition
        verb = texts.render(language, f"schedule.{t.action}")
        if r.status == "skipped":
            what = f"{verb}: {texts.render(language, 'schedule.skipped')}"
        elif t.action == "arm":
            modes = MODE_NAMES.get(language, MODE_NAMES["en"])
            what = f"{verb} ({modes.get(t.mode, t.mode)})"
            if t.rule == "day_off":
                what = f"{verb}: {texts.render(language, 'schedule.keep_armed')}"
        else:
            what = verb
        # "— name": the day off that shaped this line; "(name)": a holiday that did not
        if t.reason:
            note = f"— {t.reason}"
        elif r.holiday:
            note = f"({r.holiday})"
        else:
            note = ""
        cells.append(
            (
                t.local.date().isoformat(),
                r.weekday,
                t.local.strftime("%H:%M"),
                what,
                ", ".join(t.zones),
                note,
            )
        )
    widths = [max(len(c[i]) for c in cells) for i in range(5)]
    for c in cells:
        parts = [c[i].ljust(widths[i]) for i in range(5)]
        line = "  ".join(parts)
        if c[5]:
            line += f"  {c[5]}"
        lines.append(line.rstrip())
    return "\n".join(lines)


def format_header(start: date, days: int, tz_name: str, language: str = "vi") -> str:
    """The title line of `officeguard schedule`."""
    return texts.render(language, "schedule.header", start=start.isoformat(), days=days, tz=tz_name)


def schedule_report(
    cfg: SiteConfig, start_date: date, days: int = 7, *, as_json: bool = False
) -> str:
    """The whole output of `officeguard schedule -c FILE [--from DATE] [--days N] [--json]` for a
    loaded config: a table in the site's language, or one JSON object (site, timezone, from,
    days, holidays in the period, transitions). Raises ValueError for a bad `days` or a
    calendar the holidays package cannot build (unknown subdivision)."""
    lang = cfg.site.language
    cal = OfficeCalendar(cfg.holidays, lang)
    rows = preview(cfg.schedules, cal, cfg.tz, start_date, days, lang)
    if as_json:
        end = start_date + timedelta(days=days)
        return json.dumps(
            {
                "site": cfg.site.id,
                "timezone": cfg.site.timezone,
                "from": start_date.isoformat(),
                "days": days,
                "holidays": [
                    {"date": d.isoformat(), "name": n}
                    for d, n in cal.holidays_between(start_date, end)
                ],
                "transitions": preview_json(rows),
            },
            ensure_ascii=False,
        )
    return format_preview(
        rows, lang, header=format_header(start_date, days, cfg.site.timezone, lang)
    )
