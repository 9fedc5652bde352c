"""The office calendar: public holidays (Tết included), local days off, make-up working days."""

from __future__ import annotations

from datetime import date

import holidays as hol
import pytest

from controller.config import Holidays
from controller.schedule.calendar import OfficeCalendar

TET_2026 = [date(2026, 2, d) for d in range(16, 21)]  # Mon 16 .. Fri 20 Feb 2026


def vn(lang: str = "vi", **kw: object) -> OfficeCalendar:
    return OfficeCalendar(Holidays.model_validate({"country": "VN", **kw}), lang)


def test_tet_2026_is_a_block_of_holidays_with_vietnamese_names() -> None:
    cal = vn()
    for d in TET_2026:
        assert cal.is_holiday(d)
        assert cal.is_day_off(d)
        assert not cal.is_workday(d)
        assert "Tết Nguyên Đán" in (cal.holiday_name(d) or "")
    assert cal.holiday_name(date(2026, 2, 17)) == "Tết Nguyên Đán"
    assert cal.is_workday(date(2026, 2, 13))  # Friday before
    assert cal.is_workday(date(2026, 2, 23))  # Monday after


def test_english_names() -> None:
    cal = vn("en")
    assert cal.holiday_name(date(2026, 2, 17)) == "Lunar New Year"
    assert cal.holiday_name(date(2026, 9, 2)) == "National Day"
    assert cal.day_off_name(date(2026, 2, 14)) == "Weekend"


def test_weekend_is_a_day_off_but_not_a_holiday() -> None:
    cal = vn()
    sat = date(2026, 3, 7)
    assert cal.is_weekend(sat)
    assert cal.is_day_off(sat)
    assert not cal.is_holiday(sat)
    assert cal.holiday_name(sat) is None
    assert cal.day_off_name(sat) == "Cuối tuần"
    assert cal.day_off_name(date(2026, 3, 4)) is None  # a plain Wednesday


def test_extra_days_off_are_named() -> None:
    cal = vn(extra=[date(2026, 12, 31), date(2026, 9, 2)])
    assert cal.is_holiday(date(2026, 12, 31))
    assert not cal.is_workday(date(2026, 12, 31))
    assert cal.holiday_name(date(2026, 12, 31)) == "Ngày nghỉ bổ sung"
    assert vn("en", extra=[date(2026, 12, 31)]).holiday_name(date(2026, 12, 31)) == (
        "Extra day off"
    )
    # an extra day that is a public holiday anyway keeps the holiday's own name
    assert cal.holiday_name(date(2026, 9, 2)) == "Quốc khánh"


def test_make_up_working_days() -> None:
    sat = date(2026, 3, 14)
    cal = vn(working_days=[sat, date(2026, 2, 20)])
    assert cal.is_workday(sat)
    assert not cal.is_day_off(sat)
    assert cal.day_off_name(sat) is None
    # a working day listed on a public holiday wins: the office works
    assert cal.is_workday(date(2026, 2, 20))
    assert not cal.is_holiday(date(2026, 2, 20))
    assert cal.holiday_name(date(2026, 2, 20)) is None


def test_officially_decreed_make_up_saturday_counts_as_workday() -> None:
    # Vietnam 2026: Monday 31 Aug is a day off in exchange for Saturday 22 Aug worked
    cal = vn()
    assert cal.is_workday(date(2026, 8, 22))
    assert cal.is_holiday(date(2026, 8, 31))
    # unless the office declares that Saturday an extra day off after all
    assert not vn(extra=[date(2026, 8, 22)]).is_workday(date(2026, 8, 22))


def test_no_country_means_plain_weekdays() -> None:
    cal = OfficeCalendar(Holidays(country=None, extra=[date(2026, 1, 2)]), "en")
    assert cal.is_workday(date(2026, 1, 1))  # no public holidays at all
    assert not cal.is_workday(date(2026, 1, 2))
    assert cal.holiday_name(date(2026, 1, 2)) == "Extra day off"
    assert cal.is_day_off(date(2026, 1, 3))


def test_other_countries_subdivisions_and_weekends() -> None:
    by = OfficeCalendar(Holidays(country="DE", subdiv="BY"), "en")
    be = OfficeCalendar(Holidays(country="DE", subdiv="BE"), "en")
    epiphany = date(2026, 1, 6)
    assert by.is_holiday(epiphany) and by.holiday_name(epiphany) == "Epiphany"
    assert not be.is_holiday(epiphany)
    il = OfficeCalendar(Holidays(country="IL"), "en")
    assert il.is_weekend(date(2026, 3, 6))  # Friday
    assert not il.is_weekend(date(2026, 3, 8))  # Sunday is a working day there


def test_unknown_subdivision_is_a_clear_error() -> None:
    with pytest.raises(ValueError, match=r"subdivision 'XX' of DE \(known: .*BY"):
        OfficeCalendar(Holidays(country="DE", subdiv="XX"), "en")


def test_years_are_computed_once(monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[object] = []
    real = hol.country_holidays

    def counting(*a: object, **kw: object) -> object:
        calls.append(kw.get("years"))
        return real(*a, **kw)  # type: ignore[arg-type]

    monkeypatch.setattr(hol, "country_holidays", counting)
    cal = vn()
    before = len(calls)
    for day in range(1, 29):
        cal.is_workday(date(2026, 2, day))
        cal.holiday_name(date(2026, 2, day))
    assert len(calls) == before + 1
    cal.is_workday(date(2027, 2, 1))
    assert len(calls) == before + 2


def test_holidays_between() -> None:
    cal = vn("en", extra=[date(2026, 12, 31)])
    got = cal.holidays_between(date(2026, 2, 13), date(2026, 2, 24))
    assert [d for d, _ in got] == TET_2026
    assert got[1] == (date(2026, 2, 17), "Lunar New Year")
    assert cal.holidays_between(date(2026, 12, 30), date(2027, 1, 2)) == [
        (date(2026, 12, 31), "Extra day off"),
        (date(2027, 1, 1), "New Year's Day"),
    ]
