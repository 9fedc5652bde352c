"""The pure patrol supervisor and the rounds a plan expects (issue 18): plain calls, time
passed in."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

from hypothesis import given, settings
from hypothesis import strategies as st

from controller.config import SiteConfig, parse_config
from controller.patrol.plan import expected_rounds, preview, rounds_of_night
from controller.patrol.supervisor import Buzz, PatrolOut, PatrolSupervisor
from controller.schedule.calendar import OfficeCalendar

CONFIG = """
site: {id: t, language: en}
zones: [{id: hall}]
checkpoints:
  - {id: a, kind: button, pin: 5}
  - {id: b, kind: button, pin: 6}
  - {id: c, kind: button, pin: 13}
patrols:
  - id: night
    checkpoints: [a, b, c]
    max_gap: 10m
    alert_grace: 2m
    runs:
      - {days: workdays, start: "22:00", end: "06:00", every: 2h}
      - {days: holidays, start: "00:00", end: "00:00", every: 1h}
"""

H = timedelta(hours=1)
M = timedelta(minutes=1)


def config(text: str = CONFIG) -> SiteConfig:
    return parse_config(text).config


def local(y: int, mo: int, d: int, h: int, mi: int = 0) -> datetime:
    # Hanoi is UTC+7 all year
    return datetime(y, mo, d, h, mi, tzinfo=UTC) - timedelta(hours=7)


def supervisor(cfg: SiteConfig | None = None) -> PatrolSupervisor:
    cfg = cfg or config()
    return PatrolSupervisor(list(cfg.patrols), OfficeCalendar(cfg.holidays, "en"), cfg.tz)


def whats(outs: list[PatrolOut | Buzz]) -> list[str]:
    return [o.what if isinstance(o, PatrolOut) else f"buzz_{'on' if o.on else 'off'}" for o in outs]


def test_a_workday_night_expects_rounds_every_two_hours_from_22_to_04() -> None:
    cfg = config()
    cal = OfficeCalendar(cfg.holidays, "en")
    rounds = rounds_of_night(cfg.patrols[0], cal, cfg.tz, date(2026, 3, 4))
    assert [r.due.astimezone(cfg.tz).strftime("%d %H:%M") for r in rounds] == [
        "04 22:00",
        "05 00:00",
        "05 02:00",
        "05 04:00",
    ]
    assert all(r.reason is None for r in rounds)


def test_tet_expects_a_round_every_hour_named_after_the_holiday() -> None:
    cfg = config()
    cal = OfficeCalendar(cfg.holidays, "en")
    rounds = preview(list(cfg.patrols), cal, cfg.tz, date(2026, 2, 17), 1)
    assert len(rounds) == 24
    assert {r.reason for r in rounds} == {"Lunar New Year"}


def test_a_weekend_without_a_holiday_has_no_rounds_in_this_plan() -> None:
    cfg = config()
    cal = OfficeCalendar(cfg.holidays, "en")
    # Saturday 2026-03-07: neither a workday nor a holiday
    assert rounds_of_night(cfg.patrols[0], cal, cfg.tz, date(2026, 3, 7)) == []


def test_a_round_walked_in_order_starts_visits_and_completes() -> None:
    sup = supervisor()
    assert sup.start(local(2026, 3, 4, 18)) == []
    t = local(2026, 3, 4, 22, 1)
    out = (
        sup.visit("a", "an", t) + sup.visit("b", "an", t + 5 * M) + sup.visit("c", "an", t + 9 * M)
    )
    assert whats(out) == ["started", "visited", "visited", "visited", "completed"]
    done = out[-1]
    assert isinstance(done, PatrolOut) and done.detail["late"] is False
    assert sup.state("night", t + 10 * M)["last_round"]["outcome"] == "completed"
    assert sup.state("night", t + 10 * M)["next_due"].startswith("2026-03-05T00:00")


def test_a_round_not_started_within_its_tolerance_is_late_and_may_still_complete() -> None:
    sup = supervisor()
    sup.start(local(2026, 3, 4, 18))
    assert whats(sup.tick(local(2026, 3, 4, 22, 5))) == ["late"]
    t = local(2026, 3, 4, 22, 12)
    out = sup.visit("a", None, t) + sup.visit("b", None, t + M) + sup.visit("c", None, t + 2 * M)
    assert whats(out)[0] == "started" and whats(out)[-1] == "completed"
    assert out[-1].detail["late"] is True  # type: ignore[union-attr]
    assert sup.plans["night"].last == {
        "due": "2026-03-04T22:00:00+07:00",
        "outcome": "late",
        "at": "2026-03-04T22:14:00+07:00",
    }


def test_a_round_nobody_walks_is_late_then_missed_at_its_deadline() -> None:
    sup = supervisor()
    sup.start(local(2026, 3, 4, 18))
    out = sup.tick(local(2026, 3, 4, 22, 34))
    assert whats(out) == ["late"]
    assert whats(sup.tick(local(2026, 3, 4, 22, 35))) == ["missed"]
    assert sup.next_due() == local(2026, 3, 5, 0, 5)


def test_an_unfinished_round_reports_each_skipped_checkpoint() -> None:
    sup = supervisor()
    sup.start(local(2026, 3, 4, 18))
    sup.visit("a", None, local(2026, 3, 4, 22))
    sup.visit("b", None, local(2026, 3, 4, 22, 8))
    out = [o for o in sup.tick(local(2026, 3, 4, 22, 40)) if isinstance(o, PatrolOut)]
    assert [(o.what, o.checkpoint) for o in out] == [("silent", "b"), ("skipped", "c")]


def test_a_checkpoint_before_an_earlier_one_is_out_of_order() -> None:
    sup = supervisor()
    sup.start(local(2026, 3, 4, 18))
    t = local(2026, 3, 4, 22)
    out = sup.visit("b", None, t) + sup.visit("a", None, t + M) + sup.visit("c", None, t + 2 * M)
    assert whats(out) == ["started", "out_of_order", "visited", "visited", "completed"]


def test_a_free_route_takes_checkpoints_in_any_order() -> None:
    sup = supervisor(config(CONFIG.replace("max_gap: 10m", "max_gap: 10m\n    order: free")))
    sup.start(local(2026, 3, 4, 18))
    t = local(2026, 3, 4, 22)
    out = sup.visit("c", None, t) + sup.visit("a", None, t + M) + sup.visit("b", None, t + 2 * M)
    assert "out_of_order" not in whats(out)


def test_a_silent_guard_gets_the_buzzer_then_the_office_then_a_sign_of_life() -> None:
    sup = supervisor()
    sup.start(local(2026, 3, 4, 18))
    sup.visit("a", "an", local(2026, 3, 4, 22))
    assert whats(sup.tick(local(2026, 3, 4, 22, 10))) == ["buzz_on"]
    assert sup.state("night", local(2026, 3, 4, 22, 10))["state"] == "silent"
    out = sup.tick(local(2026, 3, 4, 22, 12))
    assert whats(out) == ["silent"] and out[0].user == "an"  # type: ignore[union-attr]
    assert sup.state("night", local(2026, 3, 4, 22, 12))["state"] == "no_sign_of_life"
    assert whats(sup.visit("b", "an", local(2026, 3, 4, 22, 13))) == [
        "buzz_off",
        "alive",
        "visited",
    ]


def test_a_visit_outside_any_round_is_reported_without_a_round() -> None:
    sup = supervisor()
    sup.start(local(2026, 3, 4, 18))
    out = sup.visit("a", "an", local(2026, 3, 4, 19))
    assert whats(out) == ["visited"] and out[0].plan is None  # type: ignore[union-attr]


def test_a_clock_step_over_a_round_retimes_the_plan_without_calling_it_missed() -> None:
    sup = supervisor()
    sup.start(local(2026, 3, 4, 18))
    out = sup.clock_stepped(5 * H, local(2026, 3, 4, 23))
    assert "missed" not in whats(out)
    assert sup.next_due() == local(2026, 3, 5, 0, 5)


@settings(max_examples=60, deadline=None)
@given(
    steps=st.lists(
        st.tuples(st.integers(min_value=0, max_value=40), st.sampled_from(["a", "b", "c", None])),
        max_size=60,
    )
)
def test_every_round_ends_exactly_once_and_the_buzzer_never_stays_on(
    steps: list[tuple[int, str | None]],
) -> None:
    cfg = config()
    sup = supervisor(cfg)
    now = local(2026, 3, 4, 21)
    outs = sup.start(now)
    for minutes, cp in steps:
        now += minutes * M
        outs += sup.visit(cp, "an", now) if cp else sup.tick(now)
    end = now + 12 * H
    outs += sup.tick(end)
    ended: dict[str, int] = {}
    for o in outs:
        if isinstance(o, PatrolOut) and o.what in ("completed", "missed", "skipped"):
            ended.setdefault(o.detail["due"], 0)
            ended[o.detail["due"]] += o.what != "skipped" or 0
    cal = OfficeCalendar(cfg.holidays, "en")
    plan = cfg.patrols[0]
    expected = {
        r.due.astimezone(cfg.tz).isoformat()
        for r in expected_rounds(plan, cal, cfg.tz, local(2026, 3, 4, 21), end)
        if r.deadline(plan) <= end
    }
    assert set(ended) == expected
    assert all(n <= 1 for n in ended.values())
    level = False
    for o in outs:
        if isinstance(o, Buzz):
            assert o.on != level  # on and off alternate
            level = o.on
    assert not level


@settings(max_examples=80, deadline=None)
@given(
    runs=st.lists(
        st.tuples(
            st.sampled_from(["daily", "workdays", "days_off", "holidays", "weekends"]),
            st.integers(0, 23),
            st.integers(0, 23),
            st.sampled_from([45, 60, 90, 120, 180]),
        ),
        min_size=1,
        max_size=3,
    ),
    start_day=st.dates(min_value=date(2026, 1, 1), max_value=date(2026, 12, 20)),
)
def test_expected_rounds_never_overlap_and_each_fits_a_window_of_its_run(
    runs: list[tuple[str, int, int, int]], start_day: date
) -> None:
    from controller.config import Patrol

    plan = Patrol.model_validate(
        {
            "id": "p",
            "checkpoints": ["a"],
            "round_time": "30m",
            "tolerance": "5m",
            "runs": [
                {"days": d, "start": f"{s:02d}:00", "end": f"{e:02d}:00", "every": f"{m}m"}
                for d, s, e, m in runs
            ],
        }
    )
    cfg = config()
    cal = OfficeCalendar(cfg.holidays, "en")
    start = local(start_day.year, start_day.month, start_day.day, 0)
    rounds = expected_rounds(plan, cal, cfg.tz, start, start + timedelta(days=4))
    need = plan.round_time + plan.tolerance
    for a, b in zip(rounds, rounds[1:], strict=False):
        assert b.due >= a.due + need  # the guard never has two rounds open at once
    for r in rounds:
        run = plan.runs[r.run]
        first = local(r.night.year, r.night.month, r.night.day, run.start.hour)
        assert first <= r.due and r.due + need <= first + run.window
