"""Arming schedules: the reference config through Tết, midnight windows, catch-up, the runner,
pre-arm warnings and postponement, holiday policies, daylight-saving edges and the preview."""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import pytest

from controller.clock import VirtualClock
from controller.config import Holidays, Schedule, SiteConfig, load_config
from controller.schedule import transitions as S
from controller.schedule.calendar import OfficeCalendar
from tests.conftest import REFERENCE

SITE = REFERENCE
HCM = ZoneInfo("Asia/Ho_Chi_Minh")
BERLIN = ZoneInfo("Europe/Berlin")
LEAD = ("leadership", "finance")


@pytest.fixture(scope="module")
def cfg() -> SiteConfig:
    return load_config(SITE).config


@pytest.fixture(scope="module")
def cal(cfg: SiteConfig) -> OfficeCalendar:
    return OfficeCalendar(cfg.holidays, cfg.site.language)


def hcm(y: int, mo: int, d: int, h: int = 0, mi: int = 0, sec: int = 0) -> datetime:
    return datetime(y, mo, d, h, mi, sec, tzinfo=HCM)


def sched(**kw: object) -> Schedule:
    base: dict[str, object] = {"zones": ["z"], "arm": "22:00", "disarm": "06:00"}
    base.update(kw)
    return Schedule.model_validate(base)


def vn_cal(**kw: object) -> OfficeCalendar:
    return OfficeCalendar(Holidays.model_validate({"country": "VN", **kw}), "vi")


def apply(state: dict[str, str], actions: Sequence[S.RunnerAction]) -> None:
    for a in actions:
        if isinstance(a, S.AutoArm):
            state.update(dict.fromkeys(a.zones, "armed"))
        elif isinstance(a, S.AutoDisarm):
            state.update(dict.fromkeys(a.zones, "disarmed"))


def states_at(cfg: SiteConfig, cal: OfficeCalendar, when: datetime) -> dict[str, str]:
    got = S.scheduled_state(cfg.schedules, cal, when, cfg.tz)
    return {z: ("armed" if t.armed else "disarmed") for z, t in got.items()}


# ----------------------------------------------------------------------------- acceptance


def test_preview_through_tet_has_no_workday_disarm_and_names_the_holidays(
    cfg: SiteConfig, cal: OfficeCalendar
) -> None:
    rows = S.preview(cfg.schedules, cal, cfg.tz, date(2026, 2, 13), 10, "vi")
    lead = [r for r in rows if r.transition.zones == LEAD]
    tet = {date(2026, 2, d) for d in range(16, 21)}
    on_tet = [r for r in lead if r.local.date() in tet]
    # no disarm of the offices takes effect during Tết ...
    assert not [r for r in on_tet if r.transition.action == "disarm" and r.status == "scheduled"]
    # ... each Tết morning shows the 07:30 disarm skipped, naming the holiday
    skipped = [r for r in on_tet if r.status == "skipped"]
    assert [(r.local.date(), r.local.time()) for r in skipped] == [
        (d, time(7, 30)) for d in sorted(tet)
    ]
    assert [r.transition.reason for r in skipped] == [
        "Giao thừa Tết Nguyên Đán",
        "Tết Nguyên Đán",
        "Mùng hai Tết Nguyên Đán",
        "Mùng ba Tết Nguyên Đán",
        "Mùng bốn Tết Nguyên Đán",
    ]
    # the weekends around it are skipped too; the last effective disarm is Friday 13 07:30
    disarms = [r for r in lead if r.transition.action == "disarm" and r.status == "scheduled"]
    assert [r.local for r in disarms] == [hcm(2026, 2, 13, 7, 30)]
    # and the first one after the block is Monday 23 Feb 07:30
    nxt = S.next_transition(cfg.schedules[0], cal, hcm(2026, 2, 22, 23, 0), cfg.tz)
    assert nxt is not None and nxt.action == "disarm" and nxt.local == hcm(2026, 2, 23, 7, 30)

    text = S.format_preview(rows, "vi")
    assert "2026-02-17  T3  07:30  tắt báo động: bỏ qua" in text
    assert "leadership, finance  — Tết Nguyên Đán" in text
    for name in ("Giao thừa Tết Nguyên Đán", "Mùng bốn Tết Nguyên Đán"):
        assert name in text

    cal_en = OfficeCalendar(cfg.holidays, "en")
    rows_en = S.preview(cfg.schedules, cal_en, cfg.tz, date(2026, 2, 13), 10, "en")
    en = S.format_preview(rows_en, "en")
    assert "2026-02-17  Tue  07:30  disarm: skipped" in en
    assert "— Lunar New Year" in en
    assert "2026-02-13  Fri  17:30  arm (away)" in en


def test_preview_json_form(cfg: SiteConfig, cal: OfficeCalendar) -> None:
    rows = S.preview(cfg.schedules, cal, cfg.tz, date(2026, 2, 16), 1, "vi")
    data = json.loads(json.dumps(S.preview_json(rows)))
    assert {"date", "weekday", "time", "zones", "action", "status", "reason", "holiday"} <= set(
        data[0]
    )
    skipped = [d for d in data if d["status"] == "skipped"]
    assert skipped == [
        {
            "date": "2026-02-16",
            "weekday": "mon",
            "time": "07:30",
            "at": "2026-02-16T00:30:00+00:00",
            "local": "2026-02-16T07:30:00+07:00",
            "zones": ["leadership", "finance"],
            "action": "disarm",
            "mode": "away",
            "status": "skipped",
            "rule": "days",
            "reason": "Giao thừa Tết Nguyên Đán",
            "holiday": "Giao thừa Tết Nguyên Đán",
            "schedule": 0,
        }
    ]
    assert [d["time"] for d in data] == ["06:00", "07:30", "17:30", "22:00"]


def test_state_at_0120_on_tet_is_armed_and_stays_armed_past_0730(
    cfg: SiteConfig, cal: OfficeCalendar
) -> None:
    start = hcm(2026, 2, 17, 1, 20)
    assert states_at(cfg, cal, start) == {
        "leadership": "armed",
        "finance": "armed",
        "perimeter": "armed",
    }
    day = S.transitions(cfg.schedules[0], cal, start, hcm(2026, 2, 18), cfg.tz)
    assert [(t.local.time(), t.action) for t in day] == [(time(17, 30), "arm")]

    runner = S.ScheduleRunner(cfg.schedules, cal, cfg.tz)
    state: dict[str, str] = {}
    apply(state, runner.start(start, {}))
    assert state == {"leadership": "armed", "finance": "armed", "perimeter": "armed"}
    seen: list[S.RunnerAction] = []
    while (due := runner.next_due()) is not None and due <= hcm(2026, 2, 17, 12, 0):
        acts = runner.tick(due)
        seen += acts
        apply(state, acts)
    assert state["leadership"] == state["finance"] == "armed"
    assert state["perimeter"] == "disarmed"  # 06:00 daily
    assert not [a for a in seen if isinstance(a, S.AutoDisarm) and "leadership" in a.zones]


def test_wednesday_noon_is_disarmed_and_arms_at_1730_after_the_warning(
    cfg: SiteConfig, cal: OfficeCalendar
) -> None:
    noon = hcm(2026, 3, 4, 12, 0)
    assert states_at(cfg, cal, noon) == dict.fromkeys(
        ("leadership", "finance", "perimeter"), "disarmed"
    )
    nxt = S.next_transition(cfg.schedules, cal, noon, cfg.tz)
    assert nxt is not None
    assert (nxt.action, nxt.zones, nxt.local) == ("arm", LEAD, hcm(2026, 3, 4, 17, 30))

    # the daemon's way: a virtual clock wakes the runner at next_due, sim advance moves it
    clock = VirtualClock(noon)
    runner = S.ScheduleRunner(cfg.schedules, cal, cfg.tz)
    log: list[tuple[datetime, S.RunnerAction]] = []
    state: dict[str, str] = {}

    def wake() -> None:
        acts = runner.tick(clock.now())
        log.extend((clock.now(), a) for a in acts)
        apply(state, acts)
        arm_timer()

    def arm_timer() -> None:
        due = runner.next_due()
        if due is not None:
            clock.call_at(due, wake)

    apply(state, runner.start(clock.now(), {}))
    arm_timer()
    assert runner.next_due() == hcm(2026, 3, 4, 17, 29)
    clock.advance(timedelta(hours=5, minutes=29))
    assert [type(a) for _, a in log] == [S.PreArmWarning]
    when, warn = log[0]
    assert when == hcm(2026, 3, 4, 17, 29)
    assert isinstance(warn, S.PreArmWarning)
    assert warn.zones == LEAD and warn.arm_at == hcm(2026, 3, 4, 17, 30)
    assert state["leadership"] == "disarmed"
    clock.advance(timedelta(minutes=1))
    assert [type(a) for _, a in log] == [S.PreArmWarning, S.AutoArm]
    arm = log[1][1]
    assert isinstance(arm, S.AutoArm)
    assert (arm.zones, arm.mode, arm.open_sensors, arm.catch_up) == (LEAD, "away", "bypass", False)
    assert state == {"leadership": "armed", "finance": "armed", "perimeter": "disarmed"}


def test_perimeter_window_crosses_midnight(cfg: SiteConfig, cal: OfficeCalendar) -> None:
    perim = cfg.schedules[1]
    got = S.transitions(perim, cal, hcm(2026, 3, 4), hcm(2026, 3, 6), cfg.tz, index=1)
    assert [(t.local, t.action, t.day) for t in got] == [
        (hcm(2026, 3, 4, 6), "disarm", date(2026, 3, 3)),  # ends Tuesday night's window
        (hcm(2026, 3, 4, 22), "arm", date(2026, 3, 4)),
        (hcm(2026, 3, 5, 6), "disarm", date(2026, 3, 4)),
        (hcm(2026, 3, 5, 22), "arm", date(2026, 3, 5)),
    ]
    for when, want in [
        (hcm(2026, 3, 4, 21, 59), "disarmed"),
        (hcm(2026, 3, 4, 22, 0), "armed"),
        (hcm(2026, 3, 4, 23, 59), "armed"),
        (hcm(2026, 3, 5, 0, 0), "armed"),
        (hcm(2026, 3, 5, 5, 59), "armed"),
        (hcm(2026, 3, 5, 6, 0), "disarmed"),
    ]:
        assert states_at(cfg, cal, when)["perimeter"] == want, when


# ----------------------------------------------------------------------------- policies


def test_stay_armed_re_arms_in_the_evening_after_a_manual_disarm_on_a_holiday(
    cfg: SiteConfig, cal: OfficeCalendar
) -> None:
    runner = S.ScheduleRunner(cfg.schedules, cal, cfg.tz)
    # a guard disarmed the offices by hand at 10:00 on Tết; the daemon restarts at 11:00
    manual = {z: hcm(2026, 2, 17, 10, 0) for z in LEAD}
    acts = runner.start(hcm(2026, 2, 17, 11, 0), manual)
    assert [a for a in acts if set(a.zones) & set(LEAD)] == []  # the manual disarm wins
    assert runner.next_due() == hcm(2026, 2, 17, 17, 29)
    warn = runner.tick(hcm(2026, 2, 17, 17, 29))
    assert len(warn) == 1 and isinstance(warn[0], S.PreArmWarning)
    assert warn[0].transition.rule == "day_off"
    assert warn[0].transition.reason == "Tết Nguyên Đán"
    arm = runner.tick(hcm(2026, 2, 17, 17, 30))
    assert len(arm) == 1 and isinstance(arm[0], S.AutoArm) and arm[0].zones == LEAD


def test_manual_action_before_the_last_transition_does_not_stop_catch_up(
    cfg: SiteConfig, cal: OfficeCalendar
) -> None:
    runner = S.ScheduleRunner(cfg.schedules, cal, cfg.tz)
    # disarmed by hand on Monday; the scheduled re-arm at 17:30 came after it
    acts = runner.start(hcm(2026, 2, 17, 1, 20), {"leadership": hcm(2026, 2, 16, 9, 0)})
    arms = [a for a in acts if isinstance(a, S.AutoArm) and a.zones == LEAD]
    assert len(arms) == 1 and arms[0].catch_up
    # only the zone with a later manual action is left alone
    runner = S.ScheduleRunner(cfg.schedules, cal, cfg.tz)
    acts = runner.start(hcm(2026, 2, 17, 1, 20), {"leadership": hcm(2026, 2, 17, 0, 10)})
    arms = [a for a in acts if isinstance(a, S.AutoArm) and "finance" in a.zones]
    assert arms[0].zones == ("finance",)


def test_follow_with_workdays_leaves_a_holiday_weekday_unarmed_and_shows_why() -> None:
    cal = vn_cal()
    s = sched(zones=["z"], arm="17:30", disarm="07:30", days="workdays", holidays="follow")
    got = S.transitions(s, cal, hcm(2026, 4, 30), hcm(2026, 5, 5), HCM)
    # Thu 30 Apr and Fri 1 May are holidays: Wednesday's window ends Thursday 07:30 and none
    # starts again before Monday evening (the trap the module docstring warns about)
    assert [(t.local, t.action) for t in got] == [
        (hcm(2026, 4, 30, 7, 30), "disarm"),
        (hcm(2026, 5, 4, 17, 30), "arm"),
    ]
    rows = S.preview([s], cal, HCM, date(2026, 4, 30), 2, "vi")
    skipped = [(r.local, r.transition.reason) for r in rows if r.status == "skipped"]
    assert skipped == [
        (hcm(2026, 4, 30, 17, 30), "Ngày Chiến thắng"),
        (hcm(2026, 5, 1, 17, 30), "Ngày Quốc tế Lao động"),
    ]


def test_disarmed_policy_never_arms_on_days_off() -> None:
    cal = vn_cal(extra=["2026-03-04"])
    s = sched(days="daily", holidays="disarmed")
    got = S.transitions(s, cal, hcm(2026, 3, 3), hcm(2026, 3, 10), HCM)
    arms = [t.local.date() for t in got if t.action == "arm"]
    # Wed 4 (extra day off), Sat 7 and Sun 8 have no arming
    assert arms == [date(2026, 3, d) for d in (3, 5, 6, 9)]
    # Thursday night's window still ends on Friday morning, Friday night's on Saturday
    disarms = [t.local for t in got if t.action == "disarm"]
    assert hcm(2026, 3, 7, 6) in disarms
    # at Saturday noon and through Sunday night it is disarmed
    assert S.scheduled_state([s], cal, hcm(2026, 3, 8, 23), HCM)["z"].action == "disarm"
    rows = S.preview([s], cal, HCM, date(2026, 3, 4), 1, "en")
    assert [(r.status, r.transition.action, r.transition.reason) for r in rows] == [
        ("scheduled", "disarm", None),
        ("skipped", "arm", "Ngày nghỉ bổ sung"),
    ]


def test_a_list_of_nights_disarms_on_the_next_morning() -> None:
    cal = vn_cal()
    s = sched(days=["sat", "sun"])
    got = S.transitions(s, cal, hcm(2026, 3, 6), hcm(2026, 3, 10), HCM)
    assert [(t.local, t.action) for t in got] == [
        (hcm(2026, 3, 7, 22), "arm"),
        (hcm(2026, 3, 8, 6), "disarm"),
        (hcm(2026, 3, 8, 22), "arm"),
        (hcm(2026, 3, 9, 6), "disarm"),  # Monday morning: ends Sunday night's window
    ]


def test_weekends_and_daytime_windows() -> None:
    cal = vn_cal(working_days=["2026-03-14"])
    s = sched(arm="08:00", disarm="18:00", days="weekends")
    got = S.transitions(s, cal, hcm(2026, 3, 9), hcm(2026, 3, 17), HCM)
    # Sat 14 is a make-up working day, so only Sunday 15 is a weekend day that week
    assert [(t.local, t.action) for t in got] == [
        (hcm(2026, 3, 15, 8), "arm"),
        (hcm(2026, 3, 15, 18), "disarm"),
    ]


def test_stay_armed_with_a_daytime_window_keeps_armed_over_days_off() -> None:
    cal = vn_cal()
    s = sched(arm="08:00", disarm="18:00", days="workdays", holidays="stay_armed")
    got = S.transitions(s, cal, hcm(2026, 3, 6), hcm(2026, 3, 10), HCM)
    assert [(t.local, t.action, t.rule) for t in got] == [
        (hcm(2026, 3, 6, 8), "arm", "days"),
        (hcm(2026, 3, 6, 18), "disarm", "days"),
        (hcm(2026, 3, 7, 8), "arm", "day_off"),  # Saturday: no disarm at 18:00
        (hcm(2026, 3, 8, 8), "arm", "day_off"),
        (hcm(2026, 3, 9, 8), "arm", "days"),
        (hcm(2026, 3, 9, 18), "disarm", "days"),
    ]


def test_auto_arm_carries_mode_and_open_sensor_policy() -> None:
    cal = vn_cal()
    s = sched(days="daily", mode="night", open_sensors="refuse", prearm_warning="2m")
    runner = S.ScheduleRunner([s], cal, HCM)
    runner.start(hcm(2026, 3, 4, 12), {})
    assert runner.next_due() == hcm(2026, 3, 4, 21, 58)
    acts = runner.tick(hcm(2026, 3, 4, 22))  # a late tick: the stale warning is dropped
    assert len(acts) == 1 and isinstance(acts[0], S.AutoArm)
    assert (acts[0].mode, acts[0].open_sensors) == ("night", "refuse")


# ----------------------------------------------------------------------------- runner


def test_catch_up_arm_is_immediate_and_without_warning(
    cfg: SiteConfig, cal: OfficeCalendar
) -> None:
    runner = S.ScheduleRunner(cfg.schedules, cal, cfg.tz)
    acts = runner.start(hcm(2026, 3, 4, 18, 0), {})
    assert not [a for a in acts if isinstance(a, S.PreArmWarning)]
    arm = [a for a in acts if isinstance(a, S.AutoArm)]
    assert len(arm) == 1 and arm[0].zones == LEAD and arm[0].catch_up
    assert arm[0].transition.local == hcm(2026, 3, 4, 17, 30)


def test_start_inside_the_warning_gives_the_warning_at_once(
    cfg: SiteConfig, cal: OfficeCalendar
) -> None:
    runner = S.ScheduleRunner(cfg.schedules, cal, cfg.tz)
    acts = runner.start(hcm(2026, 3, 4, 17, 29) + timedelta(seconds=30), {})
    warns = [a for a in acts if isinstance(a, S.PreArmWarning)]
    assert len(warns) == 1 and warns[0].arm_at == hcm(2026, 3, 4, 17, 30)
    assert runner.next_due() == hcm(2026, 3, 4, 17, 30)
    assert runner.pending_warnings(hcm(2026, 3, 4, 17, 29, 45)) == warns
    acts = runner.tick(hcm(2026, 3, 4, 17, 30))
    assert [type(a) for a in acts] == [S.AutoArm]


def test_postpone_during_the_warning(cfg: SiteConfig, cal: OfficeCalendar) -> None:
    runner = S.ScheduleRunner(cfg.schedules, cal, cfg.tz)
    runner.start(hcm(2026, 3, 4, 12), {})
    assert runner.postpone(LEAD, hcm(2026, 3, 4, 17, 0)) == []  # no warning running yet
    runner.tick(hcm(2026, 3, 4, 17, 29))
    got = runner.postpone(["leadership", "finance"], hcm(2026, 3, 4, 17, 29, 20))
    assert len(got) == 1 and isinstance(got[0], S.Postponed)
    assert got[0].zones == LEAD and got[0].until == hcm(2026, 3, 4, 18, 0)
    assert runner.tick(hcm(2026, 3, 4, 17, 30)) == []  # nothing arms at 17:30
    assert runner.next_due() == hcm(2026, 3, 4, 17, 59)
    warn = runner.tick(hcm(2026, 3, 4, 17, 59))
    assert len(warn) == 1 and isinstance(warn[0], S.PreArmWarning)
    assert warn[0].arm_at == hcm(2026, 3, 4, 18, 0)
    # postponing again during the repeated warning puts it off once more
    again = runner.postpone(LEAD, hcm(2026, 3, 4, 17, 59, 30))
    assert len(again) == 1 and again[0].until == hcm(2026, 3, 4, 18, 30)  # type: ignore[union-attr]
    runner.tick(hcm(2026, 3, 4, 18, 29))
    arm = runner.tick(hcm(2026, 3, 4, 18, 30))
    assert len(arm) == 1 and isinstance(arm[0], S.AutoArm)
    assert arm[0].postponed and arm[0].zones == LEAD


def test_postpone_for_part_of_the_zones(cfg: SiteConfig, cal: OfficeCalendar) -> None:
    runner = S.ScheduleRunner(cfg.schedules, cal, cfg.tz)
    runner.start(hcm(2026, 3, 4, 12), {})
    runner.tick(hcm(2026, 3, 4, 17, 29))
    got = runner.postpone(["leadership", "perimeter"], hcm(2026, 3, 4, 17, 29, 10))
    assert [(p.zones, p.until) for p in got] == [  # type: ignore[union-attr]
        (("leadership",), hcm(2026, 3, 4, 18, 0))
    ]
    arm = runner.tick(hcm(2026, 3, 4, 17, 30))
    assert len(arm) == 1 and isinstance(arm[0], S.AutoArm) and arm[0].zones == ("finance",)
    acts = runner.tick(hcm(2026, 3, 4, 18, 0))
    assert [(type(a), a.zones) for a in acts] == [(S.AutoArm, ("leadership",))]


def test_next_transition_supersedes_a_postponed_arm() -> None:
    cal = vn_cal()
    s = sched(arm="17:30", disarm="17:45", postpone="30m")
    runner = S.ScheduleRunner([s], cal, HCM)
    runner.start(hcm(2026, 3, 4, 12), {})
    runner.tick(hcm(2026, 3, 4, 17, 29))
    runner.postpone(["z"], hcm(2026, 3, 4, 17, 29, 30))
    assert runner.tick(hcm(2026, 3, 4, 17, 30)) == []
    acts = runner.tick(hcm(2026, 3, 4, 17, 45))
    assert [type(a) for a in acts] == [S.AutoDisarm]
    assert runner.tick(hcm(2026, 3, 4, 18, 0)) == []  # the postponed arm is gone
    assert runner.next_due() == hcm(2026, 3, 5, 17, 29)


def test_clock_jump_back_and_forward(cfg: SiteConfig, cal: OfficeCalendar) -> None:
    runner = S.ScheduleRunner(cfg.schedules, cal, cfg.tz)
    runner.start(hcm(2026, 3, 4, 12), {})
    runner.tick(hcm(2026, 3, 4, 17, 29))
    runner.tick(hcm(2026, 3, 4, 17, 30))
    # NTP steps the clock back to 17:00: a step back never disarms (fail secure), even though
    # 17:00 lies before today's arm time; the zones stay armed
    acts = runner.tick(hcm(2026, 3, 4, 17, 0))
    assert not [a for a in acts if isinstance(a, S.AutoDisarm)]
    # while a step forward catches up both ways, as at start
    acts = runner.clock_jumped(hcm(2026, 3, 5, 7, 45))
    assert [a.zones for a in acts if isinstance(a, S.AutoDisarm)] == [LEAD, ("perimeter",)]
    # a guard arms by hand at 17:05; a jump forward to 08:00 next day: the 07:30 disarm wins
    runner.note_manual(LEAD, hcm(2026, 3, 4, 17, 5))
    acts = runner.clock_jumped(hcm(2026, 3, 5, 8, 0))
    assert [a.zones for a in acts if isinstance(a, S.AutoDisarm)] == [LEAD, ("perimeter",)]
    # but a manual arm after 07:30 is respected by the next catch-up
    runner.note_manual(["finance"], hcm(2026, 3, 5, 8, 1))
    acts = runner.clock_jumped(hcm(2026, 3, 5, 9, 0))
    assert [a.zones for a in acts if isinstance(a, S.AutoDisarm)] == [
        ("leadership",),
        ("perimeter",),
    ]


def test_schedule_that_never_arms_has_a_recheck_not_a_crash() -> None:
    cal = vn_cal()
    s = sched(days="weekends", holidays="disarmed")
    runner = S.ScheduleRunner([s], cal, HCM)
    assert runner.start(hcm(2026, 3, 4, 12), {}) == []
    due = runner.next_due()
    assert due is not None and due > hcm(2026, 9, 1)
    assert runner.tick(due) == []
    assert S.next_transition(s, cal, hcm(2026, 3, 4), HCM) is None
    assert S.scheduled_state([s], cal, hcm(2026, 3, 4), HCM) == {}


# ----------------------------------------------------------------------------- bad input


def test_bad_input_is_refused_clearly() -> None:
    cal = vn_cal()
    s = sched()
    with pytest.raises(ValueError, match="aware"):
        S.next_transition(s, cal, datetime(2026, 3, 4, 12), HCM)
    with pytest.raises(ValueError, match="aware"):
        S.transitions(s, cal, datetime(2026, 3, 4), hcm(2026, 3, 5), HCM)
    with pytest.raises(ValueError, match="days"):
        S.preview([s], cal, HCM, date(2026, 3, 4), 0)
    with pytest.raises(ValueError, match=r"schedules\[0\] and schedules\[1\]"):
        S.ScheduleRunner([s, sched(arm="20:00")], cal, HCM)
    runner = S.ScheduleRunner([s], cal, HCM)
    with pytest.raises(RuntimeError, match="start"):
        runner.tick(hcm(2026, 3, 4))
    with pytest.raises(ValueError, match="aware"):
        runner.start(datetime(2026, 3, 4))
    with pytest.raises(ValueError, match=r"manual_overrides\['q'\]"):
        runner.start(hcm(2026, 3, 4, 23), {"z": hcm(2026, 3, 4, 22, 30), "q": datetime(2026, 3, 4)})
    assert not runner.started  # a refused call changes nothing: not even the valid override
    acts = runner.start(hcm(2026, 3, 4, 23), {})
    assert [(type(a), a.zones) for a in acts] == [(S.AutoArm, ("z",))]
    assert S.transitions(s, cal, hcm(2026, 3, 5), hcm(2026, 3, 4), HCM) == []


def test_empty_preview_says_so() -> None:
    assert S.format_preview([], "en") == "No scheduled arming or disarming in this period."
    head = S.format_header(date(2026, 2, 13), 10, "Asia/Ho_Chi_Minh", "vi")
    assert S.format_preview([], "vi", header=head).splitlines()[0] == (
        "Lịch bật/tắt báo động từ 2026-02-13 (10 ngày), múi giờ Asia/Ho_Chi_Minh"
    )


# ----------------------------------------------------------------------------- daylight saving


def test_local_times_across_daylight_saving_changes() -> None:
    # Berlin, 29 Mar 2026: 02:00 CET jumps to 03:00 CEST at 01:00 UTC
    jump = datetime(2026, 3, 29, 1, 0, tzinfo=UTC)
    assert S.local_to_utc(date(2026, 3, 29), time(2, 30), BERLIN) == jump
    assert S.local_to_utc(date(2026, 3, 29), time(2, 0), BERLIN) == jump
    assert S.local_to_utc(date(2026, 3, 29), time(3, 0), BERLIN) == jump
    assert S.local_to_utc(date(2026, 3, 29), time(1, 59), BERLIN) == jump - timedelta(minutes=1)
    # 25 Oct 2026: 02:30 happens twice; the first one (CEST) is meant
    assert S.local_to_utc(date(2026, 10, 25), time(2, 30), BERLIN) == datetime(
        2026, 10, 25, 0, 30, tzinfo=UTC
    )
    assert S.local_to_utc(date(2026, 3, 4), time(17, 30), HCM) == datetime(
        2026, 3, 4, 10, 30, tzinfo=UTC
    )


def test_arm_and_disarm_swallowed_by_the_same_jump_end_disarmed() -> None:
    cal = OfficeCalendar(Holidays(country=None), "en")
    s = sched(arm="02:15", disarm="02:45", days="daily")
    day = datetime(2026, 3, 29, tzinfo=UTC)
    got = S.transitions(s, cal, day, day + timedelta(days=1), BERLIN)
    jump = datetime(2026, 3, 29, 1, 0, tzinfo=UTC)
    assert [(t.at, t.action) for t in got] == [(jump, "arm"), (jump, "disarm")]
    assert S.scheduled_state([s], cal, jump, BERLIN)["z"].action == "disarm"
    runner = S.ScheduleRunner([s], cal, BERLIN)
    state: dict[str, str] = {}
    apply(state, runner.start(jump - timedelta(hours=1), {}))
    while (due := runner.next_due()) is not None and due <= jump:
        apply(state, runner.tick(due))
    assert state == {"z": "disarmed"}
    # a window across the jump night keeps its length in wall time, not in hours
    s2 = sched(arm="22:00", disarm="06:00", days="daily")
    noon = datetime(2026, 3, 28, 12, tzinfo=UTC)
    night = S.transitions(s2, cal, noon, noon + timedelta(days=1), BERLIN)
    assert night[1].at - night[0].at == timedelta(hours=7)


def test_schedule_report_for_the_cli(cfg: SiteConfig) -> None:
    text = S.schedule_report(cfg, date(2026, 12, 30), 3)
    lines = text.splitlines()
    assert lines[0] == "Lịch bật/tắt báo động từ 2026-12-30 (3 ngày), múi giờ Asia/Ho_Chi_Minh"
    assert len(lines) == 1 + 12
    assert "2026-12-31  T5  07:30  tắt báo động: bỏ qua" in text
    assert "— Ngày nghỉ bổ sung" in text  # the extra day off of the reference config
    assert "— Tết Dương lịch" in text
    data = json.loads(S.schedule_report(cfg, date(2026, 2, 13), 10, as_json=True))
    assert (data["site"], data["timezone"], data["from"], data["days"]) == (
        "office-a",
        "Asia/Ho_Chi_Minh",
        "2026-02-13",
        10,
    )
    assert [h["date"] for h in data["holidays"]] == [f"2026-02-{d}" for d in range(16, 21)]
    assert not [
        t
        for t in data["transitions"]
        if t["zones"] == list(LEAD)
        and t["action"] == "disarm"
        and t["status"] == "scheduled"
        and "2026-02-16" <= t["date"] <= "2026-02-20"
    ]
    with pytest.raises(ValueError, match="days"):
        S.schedule_report(cfg, date(2026, 2, 13), -1)
