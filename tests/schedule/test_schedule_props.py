"""Property tests: for random schedules, calendars and time zones, the runner ticking forward
through time always holds the catch-up rule's state, the catch-up rule agrees with a plain
re-statement of the documented rules, and transitions come out in order."""

from __future__ import annotations

import os
from collections.abc import Sequence
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from controller.config import Holidays, Schedule
from controller.schedule import transitions as S
from controller.schedule.calendar import OfficeCalendar

SLOW = bool(os.environ.get("OFFICEGUARD_SLOW"))
EXAMPLES = 400 if SLOW else 60
PROPS = settings(
    max_examples=EXAMPLES,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)

DAY_NAMES = ["mon", "tue", "wed", "thu", "fri", "sat", "sun"]
# no DST; DST at 02:00/03:00; DST at midnight (Santiago); a 30-minute DST shift (Lord Howe)
ZONES = [
    "Asia/Ho_Chi_Minh",
    "Europe/Berlin",
    "America/New_York",
    "America/Santiago",
    "Australia/Lord_Howe",
]
BASE = date(2026, 1, 1)


def _dates(max_days: int = 420) -> st.SearchStrategy[date]:
    return st.integers(-30, max_days).map(lambda k: BASE + timedelta(days=k))


@st.composite
def calendars(draw: st.DrawFn) -> OfficeCalendar:
    country = draw(st.sampled_from([None, "VN"]))
    extra = draw(st.lists(_dates(), max_size=12, unique=True))
    working = draw(st.lists(_dates(), max_size=8, unique=True))
    return OfficeCalendar(
        Holidays(country=country, extra=extra, working_days=working),
        draw(st.sampled_from(["vi", "en"])),
    )


# times on a 5-minute grid, so the DST hours (01:00-03:00, 00:00, 02:00-02:30) are hit often
TIMES = st.integers(0, 24 * 12 - 1).map(lambda k: time(k // 12, k % 12 * 5))
DAYS = st.one_of(
    st.sampled_from(["daily", "workdays", "weekends"]),
    st.lists(st.sampled_from(DAY_NAMES), min_size=1, max_size=7, unique=True),
)


@st.composite
def schedule_lists(draw: st.DrawFn) -> list[Schedule]:
    n = draw(st.integers(1, 3))
    out = []
    for i in range(n):
        arm = draw(TIMES)
        disarm = draw(TIMES)
        if disarm == arm:  # the config refuses equal times
            disarm = time((arm.hour + 1) % 24, arm.minute)
        out.append(
            Schedule(
                zones=[f"z{i}a", f"z{i}b"][: draw(st.integers(1, 2))],
                arm=arm,
                disarm=disarm,
                days=draw(DAYS),
                holidays=draw(st.sampled_from(["follow", "stay_armed", "disarmed"])),
                prearm_warning=timedelta(minutes=draw(st.integers(0, 180))),
            )
        )
    return out


STARTS = st.integers(0, 390 * 24 * 60).map(
    lambda m: datetime(2026, 1, 1, tzinfo=UTC) + timedelta(minutes=m, seconds=m % 7)
)


# ----------------------------------------------------------------------------- the oracle


def oracle_events(
    s: Schedule, cal: OfficeCalendar, tz: ZoneInfo, first: date, last: date
) -> list[tuple[datetime, date, int, str]]:
    """The module docstring's rules, written out plainly: (instant, window day, 0 arm/1 disarm,
    action) of every effective transition of windows starting first..last."""
    out = []
    d = first
    while d <= last:
        workday = cal.is_workday(d)
        if s.days == "daily":
            in_days = True
        elif s.days == "workdays":
            in_days = workday
        elif s.days == "weekends":
            in_days = d.weekday() in cal.weekend and not workday
        else:
            in_days = DAY_NAMES[d.weekday()] in s.days
        runs = {
            "follow": in_days,
            "stay_armed": in_days or not workday,
            "disarmed": in_days and workday,
        }[s.holidays]
        if runs:
            out.append((S.local_to_utc(d, s.arm, tz), d, 0, "arm"))
            end = d if s.disarm > s.arm else d + timedelta(days=1)
            if not (s.holidays == "stay_armed" and not cal.is_workday(end)):
                out.append((S.local_to_utc(end, s.disarm, tz), d, 1, "disarm"))
        d += timedelta(days=1)
    return sorted(out)


def oracle_state(
    schedules: Sequence[Schedule], cal: OfficeCalendar, tz: ZoneInfo, now: datetime
) -> dict[str, str]:
    out: dict[str, str] = {}
    today = now.astimezone(tz).date()
    for s in schedules:
        for back in (8, S.SEARCH_DAYS):
            evs = [
                e
                for e in oracle_events(
                    s, cal, tz, today - timedelta(days=back), today + timedelta(1)
                )
                if e[0] <= now
            ]
            if evs:
                out.update(dict.fromkeys(s.zones, "armed" if evs[-1][3] == "arm" else "disarmed"))
                break
    return out


def catch_up(
    schedules: Sequence[Schedule], cal: OfficeCalendar, tz: ZoneInfo, now: datetime
) -> dict[str, str]:
    got = S.scheduled_state(schedules, cal, now, tz)
    return {z: "armed" if t.armed else "disarmed" for z, t in got.items()}


def apply(state: dict[str, str], actions: Sequence[S.RunnerAction]) -> None:
    for a in actions:
        if isinstance(a, S.AutoArm):
            state.update(dict.fromkeys(a.zones, "armed"))
        elif isinstance(a, S.AutoDisarm):
            state.update(dict.fromkeys(a.zones, "disarmed"))


# ----------------------------------------------------------------------------- properties


@PROPS
@given(
    schedules=schedule_lists(),
    cal=calendars(),
    tz_name=st.sampled_from(ZONES),
    start=STARTS,
    span_days=st.integers(1, 21),
    probes=st.lists(st.floats(0, 1, allow_nan=False), max_size=25),
)
def test_runner_driven_by_next_due_holds_the_catch_up_state_at_every_instant(
    schedules: list[Schedule],
    cal: OfficeCalendar,
    tz_name: str,
    start: datetime,
    span_days: int,
    probes: list[float],
) -> None:
    tz = ZoneInfo(tz_name)
    end = start + timedelta(days=span_days)
    checks = sorted(start + (end - start) * p for p in probes)
    runner = S.ScheduleRunner(schedules, cal, tz)
    state: dict[str, str] = {}
    apply(state, runner.start(start, {}))
    assert state == catch_up(schedules, cal, tz, start) == oracle_state(schedules, cal, tz, start)
    last = start
    ticks = 0
    while True:
        due = runner.next_due()
        # between wake-ups nothing changes: the state must already be right at every instant
        while checks and (due is None or checks[0] < due):
            c = checks.pop(0)
            assert state == catch_up(schedules, cal, tz, c) == oracle_state(schedules, cal, tz, c)
        if due is None or due > end:
            break
        assert due >= last
        acts = runner.tick(due)
        for a in acts:
            if isinstance(a, S.PreArmWarning):
                assert due < a.arm_at
        apply(state, acts)
        assert state == catch_up(schedules, cal, tz, due), due
        last = due
        ticks += 1
        assert ticks < 400 * span_days  # no busy loop on one instant


@PROPS
@given(
    schedules=schedule_lists(),
    cal=calendars(),
    tz_name=st.sampled_from(ZONES),
    start=STARTS,
    steps=st.lists(st.integers(1, 36 * 3600), min_size=1, max_size=30),
)
def test_runner_ticked_at_arbitrary_instants_matches_the_catch_up_rule(
    schedules: list[Schedule],
    cal: OfficeCalendar,
    tz_name: str,
    start: datetime,
    steps: list[int],
) -> None:
    tz = ZoneInfo(tz_name)
    runner = S.ScheduleRunner(schedules, cal, tz)
    state: dict[str, str] = {}
    apply(state, runner.start(start, {}))
    now = start
    for step in steps:
        now += timedelta(seconds=step)
        apply(state, runner.tick(now))
        assert state == oracle_state(schedules, cal, tz, now), now


@PROPS
@given(
    schedule=schedule_lists().map(lambda ss: ss[0]),
    cal=calendars(),
    tz_name=st.sampled_from(ZONES),
    start=STARTS,
    span=st.integers(1, 30 * 24 * 60),
    cut=st.floats(0, 1, allow_nan=False),
)
def test_transitions_are_ordered_and_agree_with_next_and_last(
    schedule: Schedule,
    cal: OfficeCalendar,
    tz_name: str,
    start: datetime,
    span: int,
    cut: float,
) -> None:
    tz = ZoneInfo(tz_name)
    end = start + timedelta(minutes=span)
    got = S.transitions(schedule, cal, start, end, tz)
    keys = [S.order_key(t) for t in got]
    assert keys == sorted(keys) and len(set(keys)) == len(keys)
    assert all(start <= t.at < end for t in got)
    assert all(t.local == t.at.astimezone(tz) for t in got)
    # cutting the period anywhere gives the same transitions
    mid = start + (end - start) * cut
    assert (
        S.transitions(schedule, cal, start, mid, tz) + S.transitions(schedule, cal, mid, end, tz)
        == got
    )
    # and the same as the oracle's
    first = start.astimezone(tz).date() - timedelta(days=2)
    want = [
        (e[0], e[3])
        for e in oracle_events(schedule, cal, tz, first, end.astimezone(tz).date())
        if start <= e[0] < end
    ]
    assert [(t.at, t.action) for t in got] == want
    nxt = S.next_transition(schedule, cal, start, tz)
    after = [t for t in got if t.at > start]
    if after:
        assert nxt == after[0]
    prev = S.last_transition(schedule, cal, end, tz)
    if got:
        assert prev is not None and S.order_key(prev) >= S.order_key(got[-1])


@settings(max_examples=300 if SLOW else 100, deadline=None)
@given(
    tz_name=st.sampled_from(ZONES),
    day=_dates(),
    a=TIMES,
    b=TIMES,
)
def test_wall_clock_to_instant_is_monotonic_and_exact(
    tz_name: str, day: date, a: time, b: time
) -> None:
    tz = ZoneInfo(tz_name)
    ua, ub = S.local_to_utc(day, a, tz), S.local_to_utc(day, b, tz)
    if a <= b:
        assert ua <= ub
    naive = datetime.combine(day, a)
    shown = ua.astimezone(tz).replace(tzinfo=None)
    before = (ua - timedelta(seconds=1)).astimezone(tz).replace(tzinfo=None)
    if shown == naive:
        # an existing time, and its first occurrence: no earlier instant showed it
        assert not any(
            (ua - timedelta(hours=h)).astimezone(tz).replace(tzinfo=None) == naive
            for h in (0.5, 1, 2)
        )
    else:
        # a skipped time: the instant of the jump, the clock passing over it
        assert shown > naive and before < naive
