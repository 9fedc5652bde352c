"""The office calendar: which days are working days and which are days off, and why.

The building follows its country's public holidays (from the `holidays` package: for Vietnam
that includes Tết and the other lunar-calendar holidays, and the official substituted days), plus
the days off the office decides locally (`holidays.extra` in the config) and the make-up working
days (`holidays.working_days`, e.g. a Saturday worked to bridge a holiday).

Definitions used by the arming schedules (controller/schedule/transitions.py):

- a **holiday** is a public holiday of the country (and subdivision, if set) or an `extra` day
  off, unless the same date is listed in `working_days` (an explicit working day wins);
- a **workday** is a weekday that is not a weekend day and not a holiday, or a make-up working
  day: one listed in `working_days`, or one the country officially decrees (for Vietnam the
  `holidays` package knows, e.g., Saturday 22 Aug 2026 worked in exchange for Monday 31 Aug);
- a **day off** is any day that is not a workday: a weekend day or a holiday.

The weekend is the country's (Saturday and Sunday for Vietnam; Friday and Saturday where that is
the rule). Holiday names come in the site's language (vi or en) where the package has them.
Years are computed once and cached.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import date, timedelta

import holidays as hol

from controller import texts
from controller.config import Holidays

texts.register(
    {
        "calendar.extra_day_off": {"vi": "Ngày nghỉ bổ sung", "en": "Extra day off"},
        "calendar.weekend": {"vi": "Cuối tuần", "en": "Weekend"},
    }
)

_SAT_SUN = frozenset({5, 6})


def _pick_language(supported: Iterable[str], language: str) -> str | None:
    """The holidays-package language code closest to the site language, or None (its default)."""
    langs = list(supported)
    if language in langs:
        return language
    if language == "en":
        for pref in ("en_US", "en_GB"):
            if pref in langs:
                return pref
    for code in langs:
        if code.split("_")[0] == language:
            return code
    return None


class OfficeCalendar:
    """Workdays, weekends and days off of one site, holiday names in the site language.

    `OfficeCalendar(cfg.holidays, cfg.site.language)`. Raises ValueError for a country or
    subdivision the holidays package does not know (the message lists what it does know).
    """

    def __init__(self, holidays_cfg: Holidays, language: str = "vi") -> None:
        self.language = language
        self.country = holidays_cfg.country
        self.subdiv = holidays_cfg.subdiv
        self._extra = frozenset(holidays_cfg.extra)
        self._working = frozenset(holidays_cfg.working_days)
        self._years: dict[int, tuple[dict[date, str], frozenset[date]]] = {}
        self._hol_language: str | None = None
        self.weekend: frozenset[int] = _SAT_SUN
        if self.country is not None:
            probe = self._make(2024)  # validates country and subdivision once, up front
            self._hol_language = _pick_language(probe.supported_languages, language)
            self.weekend = frozenset(probe.weekend)

    # ------------------------------------------------------------------ package access
    def _make(self, year: int) -> hol.HolidayBase:
        assert self.country is not None
        try:
            return hol.country_holidays(
                self.country, subdiv=self.subdiv, years=year, language=self._hol_language
            )
        except (NotImplementedError, ValueError, KeyError) as e:
            supported = hol.list_supported_countries()
            if self.country not in supported:
                raise ValueError(
                    f"the holidays package does not know country {self.country!r}"
                ) from None
            if self.subdiv is not None and self.subdiv not in supported[self.country]:
                known = ", ".join(supported[self.country]) or "none"
                raise ValueError(
                    f"the holidays package does not know subdivision {self.subdiv!r} of "
                    f"{self.country} (known: {known})"
                ) from None
            raise ValueError(f"holidays for {self.country}: {e}") from None

    def _year(self, year: int) -> tuple[dict[date, str], frozenset[date]]:
        """(public holidays with names, officially decreed make-up working days) of one year."""
        cached = self._years.get(year)
        if cached is not None:
            return cached
        if self.country is None:
            entry: tuple[dict[date, str], frozenset[date]] = ({}, frozenset())
        else:
            h = self._make(year)
            names = {d: str(n) for d, n in h.items() if d.year == year}
            decreed = frozenset(
                d for d in getattr(h, "weekend_workdays", frozenset()) if d.year == year
            )
            entry = (names, decreed)
        self._years[year] = entry
        return entry

    # ------------------------------------------------------------------ queries
    def public_holiday_name(self, d: date) -> str | None:
        """Name of the country's public holiday on `d` (ignoring local extra/working days)."""
        return self._year(d.year)[0].get(d)

    def is_weekend(self, d: date) -> bool:
        """`d` falls on the country's weekend (whatever else it is)."""
        return d.weekday() in self.weekend

    def is_working_day_override(self, d: date) -> bool:
        """`d` is a make-up working day (config `working_days`, or decreed by the country)."""
        if d in self._working:
            return True
        return d not in self._extra and d in self._year(d.year)[1]

    def is_holiday(self, d: date) -> bool:
        """A public holiday or a local extra day off, unless `d` is listed as a working day."""
        if d in self._working:
            return False
        return d in self._extra or d in self._year(d.year)[0]

    def is_workday(self, d: date) -> bool:
        """Offices work: a make-up working day, or a non-weekend day that is not a holiday."""
        if self.is_working_day_override(d):
            return True
        return not self.is_weekend(d) and not self.is_holiday(d)

    def is_day_off(self, d: date) -> bool:
        """Offices are closed: a weekend day (not a make-up working day) or a holiday."""
        return not self.is_workday(d)

    def holiday_name(self, d: date) -> str | None:
        """The holiday's name in the site language; None if `d` is not a holiday."""
        if not self.is_holiday(d):
            return None
        name = self.public_holiday_name(d)
        if name is not None:
            return name
        return texts.render(self.language, "calendar.extra_day_off")

    def day_off_name(self, d: date) -> str | None:
        """Why `d` is a day off: the holiday's name, or "Cuối tuần"/"Weekend"; None on workdays."""
        if self.is_workday(d):
            return None
        return self.holiday_name(d) or texts.render(self.language, "calendar.weekend")

    def holidays_between(self, start: date, end: date) -> list[tuple[date, str]]:
        """Holidays with their names for start <= d < end, in date order."""
        out: list[tuple[date, str]] = []
        d = start
        while d < end:
            name = self.holiday_name(d)
            if name is not None:
                out.append((d, name))
            d += timedelta(days=1)
        return out
