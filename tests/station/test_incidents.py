"""The alarm queue's pure model: priorities, states, audit trail, de-duplication, comm lost."""

from __future__ import annotations

import uuid

import pytest
from hypothesis import given
from hypothesis import strategies as st

from controller.station.incidents import (
    COMM_LOST_MAX_S,
    RESOLUTIONS,
    Incident,
    IncidentError,
    Liveness,
    Queue,
    priority_of,
)


def ev(
    kind: str = "alarm", cid: str | None = "E130", zone: str | None = "main", **kw: object
) -> dict[str, object]:
    e: dict[str, object] = {
        "id": uuid.uuid4().hex,
        "seq": 1,
        "kind": kind,
        "text": kind,
        "detail": {},
    }
    if cid:
        e["cid"] = cid
    if zone:
        e["zone"] = zone
    e.update(kw)
    return e


def test_fire_panic_and_duress_come_first_then_burglary_and_drones_then_troubles() -> None:
    assert priority_of(ev(cid="E110")) == 1
    assert priority_of(ev(cid="E120")) == 1
    assert priority_of(ev("duress", cid="E121")) == 1
    assert priority_of(ev(cid="E130")) == 2
    assert priority_of(ev("drone", cid="E150")) == 2
    assert priority_of(ev("tamper", cid="E137")) == 3
    assert priority_of(ev("trouble", cid="E380")) == 3


def test_restores_arming_and_later_drone_reports_open_nothing() -> None:
    for kind in ("alarm_restore", "trouble_restore", "arm", "disarm", "system", "drone_lost"):
        assert priority_of(ev(kind)) is None
    assert priority_of(ev("drone", detail={"update": True})) is None


def test_an_incident_is_acknowledged_noted_and_closed_and_every_step_says_who_and_when() -> None:
    inc = Incident.open(ev(), "office-a", 100.0)
    inc.acknowledge("lan", 110.0)
    inc.note("lan", "guard on the way", 120.0)
    inc.close("lan", "guard_sent", 130.0)
    assert inc.state == "closed" and inc.resolution == "guard_sent"
    assert [(s.action, s.who, s.at) for s in inc.steps] == [
        ("opened", "station", 100.0),
        ("acknowledged", "lan", 110.0),
        ("note", "lan", 120.0),
        ("closed", "lan", 130.0),
    ]


def test_steps_that_do_not_fit_the_state_are_refused() -> None:
    inc = Incident.open(ev(), "s", 0.0)
    with pytest.raises(IncidentError):
        inc.close("lan", "not-a-resolution", 1.0)
    inc.close("lan", "test", 1.0)
    for step in (
        lambda: inc.acknowledge("lan", 2.0),
        lambda: inc.note("lan", "late", 2.0),
        lambda: inc.close("lan", "test", 2.0),
    ):
        with pytest.raises(IncidentError):
            step()
    with pytest.raises(IncidentError):
        Incident.open(ev(), "s", 0.0).note("", "who?", 1.0)


def test_every_refusal_of_the_model_reads_in_vietnamese_and_in_english() -> None:
    from controller.station.web import catalogues

    vi = catalogues()["vi"]
    closed = Incident.open(ev(), "s", 0.0)
    closed.close("lan", "test", 1.0)
    refusals = [
        lambda: Incident.open(ev("arm"), "s", 0.0),
        lambda: Incident.open(ev(), "s", 0.0).note("", "who?", 1.0),
        lambda: Incident.open(ev(), "s", 0.0).note("lan", "  ", 1.0),
        lambda: Incident.open(ev(), "s", 0.0).close("lan", "nope", 1.0),
        lambda: closed.acknowledge("lan", 2.0),
        lambda: closed.note("lan", "late", 2.0),
        lambda: closed.close("lan", "test", 2.0),
    ]
    seen = set()
    for refuse in refusals:
        with pytest.raises(IncidentError) as caught:
            refuse()
        e = caught.value
        seen.add(e.msgid)
        assert e.msgid in vi, e.msgid
        assert e.translated(lambda s: s) == str(e)  # English: the message itself
        said = e.translated(lambda s: vi.get(s, s))
        assert "%(" not in said and said != str(e)
    assert len(seen) == len(refusals)
    with pytest.raises(IncidentError) as caught:
        closed.acknowledge("lan", 3.0)
    said = caught.value.translated(lambda s: vi.get(s, s))
    assert said == f"sự cố {closed.id} đã đóng, không còn mở"  # the state is translated too


def test_a_restore_does_not_close_an_incident() -> None:
    q = Queue()
    q.offer(ev(), "s", 0.0)
    assert q.offer(ev("alarm_restore", cid="R130"), "s", 1.0) is None
    assert len(q.open_incidents()) == 1


def test_the_same_event_seen_twice_opens_one_incident() -> None:
    q = Queue()
    e = ev()
    assert q.offer(e, "s", 0.0) is not None
    assert q.offer(dict(e), "s", 1.0) is None
    assert len(q.incidents) == 1


def test_a_second_alarm_in_the_same_zone_joins_the_open_incident() -> None:
    q = Queue()
    first = q.offer(ev(), "s", 0.0)
    again = q.offer(ev(), "s", 5.0)
    assert first is not None and again is not None
    assert again[0] is first[0] and not again[1]
    assert len(first[0].events) == 2


def test_incidents_turn_amber_then_red_while_nobody_acknowledges_them() -> None:
    inc = Incident.open(ev(cid="E120"), "s", 0.0)
    assert inc.colour(10.0) == "green"
    assert inc.colour(60.0) == "amber"
    assert inc.colour(1000.0) == "red"
    inc.acknowledge("lan", 20.0)
    assert inc.colour(1000.0) == "green"  # acknowledged in time: its waiting stopped


def test_the_supervisor_sees_incidents_acknowledged_but_not_handled_past_the_limit() -> None:
    q = Queue()
    r = q.offer(ev(), "s", 0.0)
    assert r is not None
    r[0].acknowledge("lan", 10.0)
    assert q.overdue(100.0, 600.0) == []
    assert q.overdue(700.0, 600.0) == [r[0]]


events = st.builds(
    lambda kind, cid, zone, site: (
        ev(kind, cid=cid, zone=zone),
        site,
    ),
    st.sampled_from(["alarm", "duress", "tamper", "trouble", "drone", "arm", "alarm_restore"]),
    st.sampled_from(["E110", "E120", "E130", "E137", "E380", None]),
    st.sampled_from(["a", "b", None]),
    st.sampled_from(["s1", "s2", "s3"]),
)


@given(st.lists(st.tuples(events, st.floats(0, 1e6)), max_size=40))
def test_the_queue_is_ordered_by_priority_then_age_and_no_event_is_in_two_incidents(
    items: list[tuple[tuple[dict[str, object], str], float]],
) -> None:
    q = Queue()
    for (e, site), t in items:
        q.offer(e, site, t)
        q.offer(e, site, t + 1)  # a duplicate, always
    keys = [(i.priority, i.opened_at) for i in q.open_incidents()]
    assert keys == sorted(keys)
    seen: list[str] = [e for i in q.incidents.values() for e in i.events]
    assert len(seen) == len(set(seen))
    expected = {e["id"] for (e, _), _ in items if priority_of(e) is not None}
    assert set(seen) == expected


@given(
    st.lists(st.tuples(st.sampled_from(["ack", "note", "close"]), st.floats(0, 1e4)), max_size=20),
)
def test_the_audit_trail_only_grows_and_stays_in_time_order(ops: list[tuple[str, float]]) -> None:
    inc = Incident.open(ev(), "s", 0.0)
    before = list(inc.steps)
    for op, t in ops:
        try:
            if op == "ack":
                inc.acknowledge("x", t)
            elif op == "note":
                inc.note("x", "n", t)
            else:
                inc.close("x", RESOLUTIONS[0], t)
        except IncidentError:
            pass
        assert inc.steps[: len(before)] == before
        before = list(inc.steps)
    times = [s.at for s in inc.steps]
    assert times == sorted(times)


def test_a_site_silent_past_its_heartbeat_and_margin_is_communication_lost_once() -> None:
    lv = Liveness()
    lv.heartbeat("s", 0.0, interval_s=60.0)
    assert lv.check(60.0) == []
    assert lv.check(91.0) == [("s", True, "no heartbeat since 91 s")]
    assert lv.check(120.0) == []
    lv.heartbeat("s", 130.0)
    assert lv.check(131.0) == [("s", False, "communication restored")]


def test_a_last_will_is_communication_lost_at_once() -> None:
    lv = Liveness()
    lv.status("s", True, 0.0)
    lv.status("s", False, 5.0)
    assert lv.check(5.0) == [("s", True, "connection lost (last will)")]


@given(st.floats(1.0, 1e5), st.floats(0.0, 1e6))
def test_communication_loss_is_never_noticed_later_than_200_s(interval: float, t0: float) -> None:
    lv = Liveness()
    lv.heartbeat("s", t0, interval_s=interval)
    assert lv.check(t0 + COMM_LOST_MAX_S + 0.001) != []
