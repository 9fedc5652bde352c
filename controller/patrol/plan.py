"""The rounds a patrol plan expects: pure functions of the plan, the office calendar and the
time zone (no clock, no I/O), shared by the supervisor and `officeguard patrol preview`.

A plan has runs (`every 2h from 22:00 to 06:00 on workdays`, `every 1h all day on holidays`).
A run that starts on local date D makes rounds at its start, then every `every`, as long as a
round with its tolerance (`round_time + tolerance`) ends inside the window; those rounds belong
to the *night of D* (a round at 02:00 on the 18th belongs to the night of the 17th when its run
started at 22:00 on the 17th). When runs overlap (a workday's night running into a holiday
morning), a round due before the previous one's time is up is dropped, so the guard never has
two rounds open at once. The day categories come from controller/schedule/calendar.py: `workdays`,
`days_off` (weekends and holidays), `holidays` (public holidays, Tết, extra days off),
`weekends`, `daily`, or a list of day names.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timedelta, tzinfo
from typing import Any

from controller.config import DAY_NAMES, Patrol, PatrolRun
from controller.schedule.transitions import Calendar, local_to_utc


@dataclass(frozen=True, order=True)
class ExpectedRound:
    """One round a plan expects: due at `due` (UTC), for the night of `night` (local date)."""

    due: datetime
    plan: str
    night: date
    run: int
    reason: str | None  # the day off or holiday that shaped it, None on a plain workday

    def deadline(self, plan: Patrol) -> datetime:
        """The last moment a visit still counts for this round."""
        return self.due + plan.tolerance + plan.round_time

    def to_json(self, tz: tzinfo) -> dict[str, Any]:
        local = self.due.astimezone(tz)
        return {
            "plan": self.plan,
            "night": self.night.isoformat(),
            "due": local.isoformat(),
            "time": local.strftime("%H:%M"),
            "weekday": DAY_NAMES[local.weekday()],
            "reason": self.reason,
        }


def run_applies(run: PatrolRun, cal: Calendar, d: date) -> bool:
    """Whether `run` starts rounds on local date `d`."""
    days = run.days
    if days == "daily":
        return True
    if days == "workdays":
        return cal.is_workday(d)
    if days == "days_off":
        return not cal.is_workday(d)
    if days == "holidays":
        return cal.holiday_name(d) is not None
    if days == "weekends":
        return cal.is_weekend(d) and not cal.is_workday(d)
    return DAY_NAMES[d.weekday()] in days


def _rounds_of_day(plan: Patrol, cal: Calendar, tz: tzinfo, d: date) -> list[ExpectedRound]:
    out: list[ExpectedRound] = []
    need = plan.round_time + plan.tolerance
    for i, run in enumerate(plan.runs):
        if not run_applies(run, cal, d):
            continue
        reason = None if run.days == "daily" else cal.day_off_name(d)
        first = local_to_utc(d, run.start, tz)
        end = first + run.window
        t = first
        while t + need <= end:
            out.append(ExpectedRound(t, plan.id, d, i, reason))
            t += run.every
    return out


def expected_rounds(
    plan: Patrol, cal: Calendar, tz: tzinfo, start: datetime, end: datetime
) -> list[ExpectedRound]:
    """The plan's rounds due in [start, end), in time order, overlaps dropped."""
    first_day = start.astimezone(tz).date() - timedelta(days=2)
    last_day = end.astimezone(tz).date()
    rounds: list[ExpectedRound] = []
    d = first_day
    while d <= last_day:
        rounds += _rounds_of_day(plan, cal, tz, d)
        d += timedelta(days=1)
    rounds.sort()
    kept: list[ExpectedRound] = []
    need = plan.round_time + plan.tolerance
    for r in rounds:
        if kept and r.due < kept[-1].due + need:
            continue
        kept.append(r)
    return [r for r in kept if start <= r.due < end]


def next_round(plan: Patrol, cal: Calendar, tz: tzinfo, after: datetime) -> ExpectedRound | None:
    """The first round whose deadline is after `after` (it may be due already), within 40
    days (a plan that runs only on some holidays may wait that long), or None."""
    start = after - plan.tolerance - plan.round_time
    horizon = after + timedelta(days=40)
    t = start
    while t < horizon:
        chunk = expected_rounds(plan, cal, tz, t, t + timedelta(days=8))
        for r in chunk:
            if r.deadline(plan) > after:
                return r
        t += timedelta(days=8)
    return None


def rounds_of_night(plan: Patrol, cal: Calendar, tz: tzinfo, night: date) -> list[ExpectedRound]:
    """The rounds the plan expects for the night of local date `night`."""
    start = local_to_utc(night, datetime.min.time(), tz)
    rounds = expected_rounds(plan, cal, tz, start, start + timedelta(days=3))
    return [r for r in rounds if r.night == night]


def preview(
    plans: list[Patrol], cal: Calendar, tz: tzinfo, start_date: date, nights: int
) -> list[ExpectedRound]:
    """Every round of the nights start_date .. start_date + nights - 1, in time order."""
    if not 1 <= nights <= 366:
        raise ValueError("nights must be from 1 to 366")
    out: list[ExpectedRound] = []
    for plan in plans:
        for k in range(nights):
            out += rounds_of_night(plan, cal, tz, start_date + timedelta(days=k))
    out.sort()
    return out


def format_preview(rounds: list[ExpectedRound], tz: tzinfo, header: str) -> str:
    """The text of `officeguard patrol preview`: night, weekday, time, plan, and the day off
    or holiday that shaped the round."""
    lines = [header]
    if not rounds:
        lines.append("(no rounds)")
    for r in rounds:
        local = r.due.astimezone(tz)
        note = f"  — {r.reason}" if r.reason else ""
        lines.append(
            f"{r.night.isoformat()}  {DAY_NAMES[r.night.weekday()]}  "
            f"{local:%Y-%m-%d %H:%M}  {r.plan}{note}"
        )
    return "\n".join(lines)
