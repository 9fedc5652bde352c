"""Power and siren-line conditions as pure state machines on the given times.

A `Condition` is raised once its fault has lasted `delay` (mains gone through a brownout or a
generator switchover does not count) and cleared as soon as the reading is good again. The
battery's low condition has a hysteresis: raised below `low`, cleared only at `restore`, so a
lead-acid battery that recovers a few tenths of a volt when the load drops does not flap.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Literal

Change = Literal["raise", "clear"]


@dataclass(slots=True)
class Condition:
    """A fault that counts once it has lasted `delay`, and ends when the reading is good."""

    delay: timedelta
    raised: bool = False
    bad_since: datetime | None = None

    def update(self, bad: bool, now: datetime) -> Change | None:
        if not bad:
            self.bad_since = None
            if self.raised:
                self.raised = False
                return "clear"
            return None
        if self.bad_since is None:
            self.bad_since = now
        if not self.raised and now - self.bad_since >= self.delay:
            self.raised = True
            return "raise"
        return None


def battery_faults(
    volts: float, low: float, restore: float, missing: float, low_raised: bool
) -> tuple[bool, bool]:
    """(low, missing) for a battery reading: missing below `missing`; low below `low`, or below
    `restore` while the low condition stands (a missing battery is not also a low one)."""
    if volts < missing:
        return False, True
    return volts < (restore if low_raised else low), False


def siren_line_fault(volts: float, short_below: float, open_above: float) -> str | None:
    """ "open", "short" or None (the standing current through the siren reads between)."""
    if volts > open_above:
        return "open"
    if volts < short_below:
        return "short"
    return None
