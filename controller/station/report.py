"""The yearly (or monthly) review of one site, from the station's database: alarms by kind and
month, nights with alarms, response times (alarm -> acknowledged -> closed), communication
losses, drone tracks and patrol rounds missed. `review` is pure over the rows
`period_events` reads; `chart` lays the alarms by month out as a stacked bar chart that
`templates/report.html` draws as inline SVG (report_pdf.py draws the same bars).

A night is counted by the date of the evening it began: an event before noon belongs to the
night that began the day before (site local time, from the event's own `ts` offset).

Drones are counted by track, not by report: a detector sends a `drone` event when a track
begins and `drone` events with `detail.update` while it lasts (docs/events.md), all naming
`detail.track`; a track is counted in the month it began, and a track already under way when
the period starts (only its updates fall in it) in the month of its first report there.
"""

from __future__ import annotations

import json
import statistics
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from sqlalchemy import select

from controller.station import schema as t
from controller.station.incidents import Incident

if TYPE_CHECKING:
    from controller.station.store import Store

ALARM_KINDS = ("alarm", "duress", "tamper", "drone", "trouble")
# what the review reads: the kinds it counts, the end of a drone track, the patrol events
READ_KINDS = (*ALARM_KINDS, "drone_lost", "patrol")
# one colour for each kind of the chart, the same on the page and in the PDF; apart in
# lightness too, so that the kinds stay apart in grey print
COLOURS = {
    "alarm": (230, 140, 0),
    "duress": (200, 30, 30),
    "tamper": (130, 80, 180),
    "drone": (40, 120, 200),
    "trouble": (150, 150, 150),
}


def hex_colour(kind: str) -> str:
    """A kind's colour as CSS writes it (#rrggbb)."""
    r, g, b = COLOURS.get(kind, (80, 80, 80))
    return f"#{r:02x}{g:02x}{b:02x}"


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
    drones: int = 0  # drone tracks (not reports)
    drone_reports: int = 0
    patrols_missed: list[int] = field(default_factory=lambda: [0] * 12)  # by month
    missed_rounds: list[dict[str, str]] = field(default_factory=list)  # night, plan, due

    @property
    def peak(self) -> int:
        """The largest month's alarms of all kinds (the height of the chart)."""
        return max((sum(c[m] for c in self.by_kind_month.values()) for m in range(12)), default=0)


def period_events(store: Store, site: str, since: float, until: float) -> list[dict[str, Any]]:
    """The site's events the review reads, between two times, oldest first: kind, ts and the
    event's `detail` (only the columns and kinds it needs: a year of heartbeats and arming is
    left in the database)."""
    c = t.events.c
    q = (
        select(c.kind, c.ts, c.body)
        .where(c.site == site, c.at >= since, c.at < until, c.kind.in_(READ_KINDS))
        .order_by(c.at, c.seq)
    )
    out = []
    with store.tx() as conn:
        for kind, ts, body in conn.execute(q):
            try:
                detail = json.loads(body).get("detail")
            except (ValueError, AttributeError):
                detail = None
            out.append({"kind": kind, "ts": ts, "detail": detail if isinstance(detail, dict) else {}})
    return out


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
    """`events`: the site's events of the period, oldest first (kind, ts, detail: what
    `period_events` gives); `incidents`: the site's incidents opened in the period."""
    r = Review(site, year, month)
    counts: dict[str, list[int]] = {k: [0] * 12 for k in ALARM_KINDS}
    nights: set[str] = set()
    tracks: set[tuple[str, str]] = set()  # the drone tracks under way
    for e in events:
        kind = str(e.get("kind"))
        ts = str(e.get("ts") or "")
        d = e.get("detail")
        detail: dict[str, Any] = d if isinstance(d, dict) else {}
        try:
            m = int(ts[5:7])
        except ValueError:
            continue
        if not 1 <= m <= 12:
            continue
        if kind in ("drone", "drone_lost"):
            key = (str(detail.get("detector", "")), str(detail.get("track", "")))
            if kind == "drone_lost":
                tracks.discard(key)
                continue
            r.drone_reports += 1
            if not detail.get("track"):
                key = ("", f"#{r.drone_reports}")  # no track named: each report is one
            elif detail.get("update") and key in tracks:
                continue  # a later report of a track already counted
            tracks.add(key)
            r.drones += 1
        elif kind == "patrol":
            if detail.get("patrol") == "missed":
                r.patrols_missed[m - 1] += 1
                r.missed_rounds.append(
                    {
                        "night": str(detail.get("night") or _night(ts) or ""),
                        "plan": str(detail.get("plan") or ""),
                        "due": str(detail.get("due") or ts),
                    }
                )
            continue
        if kind not in counts:
            continue
        counts[kind][m - 1] += 1
        if kind in ("alarm", "duress"):
            n = _night(ts)
            if n:
                nights.add(n)
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


def _ticks(peak: int) -> list[int]:
    """Round values from 0 to at least `peak`, at most five steps (1, 2, 5, 10, 20, 50...)."""
    step = 1
    while -(-peak // step) > 5:
        step = step * 5 // 2 if str(step)[0] == "2" else step * 2
    top = max(1, -(-peak // step)) * step
    return list(range(0, top + 1, step))


@dataclass
class Chart:
    """The stacked bar chart's geometry in the SVG's own units (the viewBox)."""

    width: int
    height: int
    bars: list[dict[str, Any]]  # x, y, w, h, fill, kind, month, n: one block of one kind
    totals: list[dict[str, Any]]  # x, y, n: each month's total above its bar
    months: list[dict[str, Any]]  # x, label
    ticks: list[dict[str, Any]]  # y, n: the scale's lines
    legend: list[dict[str, str]]  # kind, fill: drawn in HTML under the chart (it wraps)
    left: int
    right: int
    base: int


def chart(r: Review) -> Chart:
    """The alarms of each month as a bar, stacked by kind, laid out in a 480 x 240 box (the
    SVG scales it to the screen: text 17 units high stays legible down to a phone's width)."""
    width, height, left, right, top, base = 480, 240, 40, 474, 24, 214
    slot = (right - left) / 12
    ticks = _ticks(r.peak)
    scale = (base - top) / ticks[-1]
    bars, totals, months = [], [], []
    for m in range(12):
        x = left + m * slot + slot * 0.15
        y = float(base)
        n_month = 0
        for kind, counts in r.by_kind_month.items():
            n = counts[m]
            if not n:
                continue
            h = n * scale
            y -= h
            n_month += n
            bars.append(
                {
                    "x": round(x, 1),
                    "y": round(y, 1),
                    "w": round(slot * 0.7, 1),
                    "h": round(h, 1),
                    "fill": hex_colour(kind),
                    "kind": kind,
                    "month": m + 1,
                    "n": n,
                }
            )
        if n_month:
            totals.append({"x": round(x + slot * 0.35, 1), "y": round(y - 4, 1), "n": n_month})
        months.append({"x": round(x + slot * 0.35, 1), "label": m + 1})
    tick_rows = [{"y": round(base - n * scale, 1), "n": n} for n in ticks]
    legend = [{"kind": k, "fill": hex_colour(k)} for k in r.by_kind_month]
    return Chart(width, height, bars, totals, months, tick_rows, legend, left, right, base)
