"""The yearly (or monthly) review of one site, from the station's database: alarms by kind and
month, nights with alarms, response times (alarm -> acknowledged -> closed), communication
losses and drone sightings. Pure over the rows the store gives it; `web.py` draws it.

A night is counted by the date of the evening it began: an event before noon belongs to the
night that began the day before (site local time, from the event's own `ts` offset).
"""

from __future__ import annotations

import statistics
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from controller.station.incidents import Incident

ALARM_KINDS = ("alarm", "duress", "tamper", "drone", "trouble")


@dataclass
class Review:
    site: str
    year: int
    month: int | None
    by_kind_month: dict[str, list[int]] = field(default_factory=dict)  # kind -> 12 counts
    nights_with_alarms: list[str] = field(default_factory=list)
    incidents: int = 0
    ack_s: dict[str, float | None] = field(default_factory=dict)  # median, p90, max
    close_s: dict[str, float | None] = field(default_factory=dict)
    resolutions: dict[str, int] = field(default_factory=dict)
    comm_losses: int = 0
    drones: int = 0

    @property
    def peak(self) -> int:
        return max((max(v) for v in self.by_kind_month.values()), default=0)


def _night(ts: str) -> str | None:
    try:
        t = datetime.fromisoformat(ts)
    except ValueError:
        return None
    return (t - timedelta(hours=12)).date().isoformat()


def _spread(values: list[float]) -> dict[str, float | None]:
    if not values:
        return {"median": None, "p90": None, "max": None}
    values = sorted(values)
    return {
        "median": statistics.median(values),
        "p90": values[min(len(values) - 1, int(0.9 * len(values)))],
        "max": values[-1],
    }


def review(
    site: str,
    year: int,
    month: int | None,
    events: list[dict[str, Any]],
    incidents: list[Incident],
) -> Review:
    """`events`: the site's events of the period (kind, ts, detail-less rows from the store);
    `incidents`: the site's incidents opened in the period."""
    r = Review(site, year, month)
    counts: dict[str, list[int]] = {k: [0] * 12 for k in ALARM_KINDS}
    nights: set[str] = set()
    for e in events:
        kind = str(e.get("kind"))
        ts = str(e.get("ts") or "")
        if kind not in counts or len(ts) < 7:
            continue
        if kind == "drone" and e.get("update"):
            continue
        try:
            m = int(ts[5:7])
        except ValueError:
            continue
        counts[kind][m - 1] += 1
        if kind in ("alarm", "duress"):
            n = _night(ts)
            if n:
                nights.add(n)
        if kind == "drone":
            r.drones += 1
    r.by_kind_month = {k: v for k, v in counts.items() if any(v)}
    r.nights_with_alarms = sorted(nights)
    r.incidents = len(incidents)
    r.ack_s = _spread(
        [i.acknowledged_at - i.opened_at for i in incidents if i.acknowledged_at is not None]
    )
    r.close_s = _spread([i.closed_at - i.opened_at for i in incidents if i.closed_at is not None])
    r.resolutions = dict(Counter(i.resolution for i in incidents if i.resolution))
    r.comm_losses = sum(1 for i in incidents if i.what == "comm_lost")
    return r
