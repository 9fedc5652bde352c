"""The schedules component against a fake site: catch-up at start, the arming on the timer
driver, the pre-arm warning a keypad code postpones (claim_decision), and manual arming kept
in the logbook across a restart (input_submitted)."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from controller.access.gate import Decision
from controller.config import load_config
from controller.engine import Arm, Disarm
from controller.schedule.component import MANUAL_KEY, ScheduleService
from tests.conftest import REFERENCE
from tests.fake_site import FakeSite

OFFICE = ("leadership", "finance")


def hanoi(hour: int, minute: int, second: int = 0) -> datetime:
    """Wednesday 2026-03-04 at this time in Hanoi (UTC+7), a workday."""
    return datetime(2026, 3, 4, hour - 7, minute, second, tzinfo=UTC)


def make_site(tmp_path: Path, start: datetime) -> FakeSite:
    return FakeSite(load_config(REFERENCE).config, tmp_path, start)


@pytest.fixture
def late(tmp_path: Path) -> Iterator[FakeSite]:
    site = make_site(tmp_path, hanoi(18, 0))
    yield site
    site.close()


def automatic_arms(site: FakeSite) -> list[Arm]:
    return [i for i in site.submitted if isinstance(i, Arm) and i.automatic]


def test_a_start_after_the_arming_time_catches_up_and_arms_the_office(late: FakeSite) -> None:
    schedules = ScheduleService(late)
    schedules.start()
    [arm] = automatic_arms(late)
    assert set(arm.zones) == set(OFFICE) and arm.source == "schedule"
    assert late.engine.zone_state("finance").startswith("armed")
    schedules.close()
    assert late.timers.pending() == 0


def test_the_arming_comes_on_the_timer_driver_after_its_warning(tmp_path: Path) -> None:
    site = make_site(tmp_path, hanoi(17, 0))
    schedules = ScheduleService(site)
    schedules.start()
    before = len(automatic_arms(site))
    site.advance(timedelta(minutes=29, seconds=30))  # 17:29:30, inside the 60 s warning
    assert [e.detail.get("schedule") for e in site.recorded] == ["prearm_warning"]
    assert [c for c, _ in site.buzzers["keypad.hall"].calls] == ["prearm"]
    site.advance(timedelta(seconds=30))
    assert len(automatic_arms(site)) == before + 1
    schedules.close()
    site.close()


def test_a_code_during_the_warning_is_claimed_and_postpones_the_arming(tmp_path: Path) -> None:
    site = make_site(tmp_path, hanoi(17, 29, 30))
    schedules = ScheduleService(site)
    schedules.start()  # inside the warning period: the warning is given at once
    code = Decision("disarm", "keypad.hall", "keypad", zones=OFFICE, user="bao-ve-1")
    assert schedules.claim_decision(code) is True
    assert [e.detail.get("schedule") for e in site.recorded] == ["prearm_warning", "postponed"]
    site.advance(timedelta(seconds=30))  # 17:30: nothing arms
    assert automatic_arms(site) == []
    schedules.close()
    site.close()


def test_a_code_outside_any_warning_is_left_to_the_keypad(late: FakeSite) -> None:
    schedules = ScheduleService(late)
    schedules.start()
    code = Decision("disarm", "keypad.hall", "keypad", zones=OFFICE, user="bao-ve-1")
    assert schedules.claim_decision(code) is None
    schedules.close()


def test_a_manual_disarm_is_kept_in_the_logbook_and_wins_over_the_next_catch_up(
    tmp_path: Path,
) -> None:
    site = make_site(tmp_path, hanoi(17, 45))
    first = ScheduleService(site)
    first.start()  # catches up: the office arms (17:30)
    manual = Disarm(OFFICE, user="bao-ve-1")
    site.submit(manual)
    first.input_submitted(manual)
    first.input_submitted(Arm(("perimeter",), source="schedule", automatic=True))
    first.close()
    saved = site.logbook.load_state(MANUAL_KEY)
    assert set(saved) == set(OFFICE)  # the schedule's own arm is not a manual one
    site.advance(timedelta(minutes=15))
    arms = len(automatic_arms(site))
    again = ScheduleService(site)
    again.start()  # a restart at 18:00: the manual disarm at 17:45 is later than 17:30
    assert len(automatic_arms(site)) == arms
    assert site.engine.zone_state("finance") == "disarmed"
    again.close()
    site.close()


def test_a_clock_step_makes_the_schedules_catch_up_from_the_new_time(tmp_path: Path) -> None:
    site = make_site(tmp_path, hanoi(17, 0))
    schedules = ScheduleService(site)
    schedules.start()
    site.clock.jump(hanoi(19, 0))  # the daemon hears of the step and tells every component
    schedules.clock_stepped(timedelta(hours=2))
    [arm] = automatic_arms(site)
    assert set(arm.zones) == set(OFFICE)
    schedules.close()
    site.close()
