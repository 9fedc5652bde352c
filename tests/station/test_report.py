"""The review's counting (drone tracks, patrol rounds missed) and its chart's geometry."""

from __future__ import annotations

from typing import Any

from controller.station.report import COLOURS, chart, review


def ev(kind: str, ts: str, **detail: Any) -> dict[str, Any]:
    return {"kind": kind, "ts": ts, "detail": detail}


def drone(ts: str, track: str, update: bool = False, detector: str = "rid1") -> dict[str, Any]:
    return ev("drone", ts, track=track, detector=detector, update=update)


def test_a_drone_track_is_counted_once_however_many_reports_it_sent() -> None:
    events = [
        drone("2026-01-05T22:00:00+07:00", "rid1.aa"),
        drone("2026-01-05T22:00:05+07:00", "rid1.aa", update=True),
        drone("2026-01-05T22:00:10+07:00", "rid1.aa", update=True),
        drone("2026-01-05T22:00:12+07:00", "rid1.bb"),  # a second drone at the same time
        ev("drone_lost", "2026-01-05T22:05:00+07:00", track="rid1.aa", detector="rid1"),
        drone("2026-03-01T21:00:00+07:00", "rid1.aa"),  # the same drone back: a new track
        drone("2026-03-01T21:00:00+07:00", "rid1.aa", detector="rid2"),  # another detector's
    ]
    r = review("s", 2026, None, events, [])
    assert r.drones == 4 and r.drone_reports == 6  # drone_lost is no report
    assert r.by_kind_month["drone"][0] == 2 and r.by_kind_month["drone"][2] == 2


def test_a_track_under_way_when_the_period_begins_counts_in_its_first_month() -> None:
    events = [
        drone("2026-03-01T00:00:05+07:00", "rid1.cc", update=True),
        drone("2026-03-01T00:00:10+07:00", "rid1.cc", update=True),
    ]
    r = review("s", 2026, 3, events, [])
    assert r.drones == 1 and r.by_kind_month["drone"][2] == 1


def test_patrol_rounds_missed_are_counted_by_month_and_listed_and_other_patrol_events_are_not() -> (
    None
):
    events = [
        ev(
            "patrol",
            "2026-02-17T02:30:00+07:00",
            patrol="missed",
            plan="night",
            night="2026-02-16",
            due="2026-02-17T02:00:00+07:00",
        ),
        ev("patrol", "2026-02-18T02:30:00+07:00", patrol="completed", plan="night"),
        ev("patrol", "2026-02-18T03:30:00+07:00", patrol="skipped", plan="night"),
        ev("patrol", "2026-05-02T04:30:00+07:00", patrol="missed", plan="dawn"),
    ]
    r = review("s", 2026, None, events, [])
    assert r.patrols_missed[1] == 1 and r.patrols_missed[4] == 1 and sum(r.patrols_missed) == 2
    assert r.missed_rounds[0] == {
        "night": "2026-02-16",
        "plan": "night",
        "due": "2026-02-17T02:00:00+07:00",
    }
    assert r.missed_rounds[1]["night"] == "2026-05-01"  # from its time when the event has none
    assert r.by_kind_month == {}  # patrols are not alarms: not in the chart


def test_the_chart_stacks_each_months_kinds_to_its_total_on_a_round_scale() -> None:
    events = [ev("alarm", "2026-02-01T22:00:00+07:00")] * 5 + [
        ev("tamper", "2026-02-02T22:00:00+07:00"),
        ev("alarm", "2026-07-01T22:00:00+07:00"),
    ]
    r = review("s", 2026, None, events, [])
    c = chart(r)
    assert [t["n"] for t in c.ticks] == [0, 2, 4, 6]  # a scale of round steps to the peak, 6
    feb = [b for b in c.bars if b["month"] == 2]
    assert [(b["kind"], b["n"]) for b in feb] == [("alarm", 5), ("tamper", 1)]
    alarm, tamper = feb
    assert alarm["y"] + alarm["h"] == c.base and abs(tamper["y"] + tamper["h"] - alarm["y"]) < 0.2
    full = c.base - c.ticks[-1]["y"]  # the height of 6
    assert abs(alarm["h"] + tamper["h"] - full) < 0.2  # the bar of 6 reaches the top line
    assert tamper["fill"] == "#8250b4" and COLOURS["tamper"] == (0x82, 0x50, 0xB4)
    assert [(t["n"]) for t in c.totals] == [6, 1]
    assert [m["label"] for m in c.months] == list(range(1, 13))
    assert [(b["month"], b["n"]) for b in c.bars if b["kind"] == "alarm"] == [(2, 5), (7, 1)]


def test_an_empty_period_draws_no_bars_on_a_scale_of_one() -> None:
    c = chart(review("s", 2026, None, [], []))
    assert c.bars == [] and c.totals == [] and [t["n"] for t in c.ticks] == [0, 1]
