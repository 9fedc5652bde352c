"""The patrols component against a fake site: badges become visits of their users, unknown
and disabled badges are refused events, garbled reads are only counted, the supervisor's
outcomes are `patrol` events with their Contact ID codes, the buzzer warns a silent guard, and
the route's sensors are exempt during a round (issue 18)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from controller.config import parse_config
from controller.engine import Arm
from controller.patrol.component import Patrols
from tests.fake_site import FakeSite

CONFIG = """
site: {id: t, language: en}
zones: [{id: hall, exit_delay: 0s}]
sensors:
  - {id: door.hall, type: door, zone: hall, pin: 4}
keypads:
  - {id: kp, zones: [hall], rows: [20, 21, 22, 23], cols: [24, 25, 26], buzzer: 12}
users:
  - {name: an, code: "1234", badge: "188,12345"}
  - {name: binh, code: "5678", badge: "777", disabled: true}
checkpoints:
  - {id: cp.gate, kind: badge, d0: 5, d1: 6, zone: hall, exempt: [door.hall]}
  - {id: cp.safe, kind: button, pin: 13}
patrols:
  - id: night
    checkpoints: [cp.gate, cp.safe]
    max_gap: 10m
    alert_grace: 2m
    buzzer: kp
    exempt: true
    runs:
      - {days: daily, start: "22:00", end: "06:00", every: 2h}
"""
AN = 188 * 65536 + 12345
# 2026-03-04 21:00 in Hanoi
START = datetime(2026, 3, 4, 14, 0, tzinfo=UTC)
M = timedelta(minutes=1)


@pytest.fixture
def site(tmp_path: Path):
    s = FakeSite(parse_config(CONFIG).config, tmp_path, start=START)
    yield s
    s.close()


@pytest.fixture
def p(site: FakeSite):
    """The component on the fake site, started at 21:00."""
    comp = Patrols(site)
    comp.start()
    yield comp
    comp.close()


def patrol_events(site: FakeSite) -> list[tuple[str, str | None, str | None, str | None]]:
    return [
        (e.detail["patrol"], e.cid, e.sensor, e.user) for e in site.recorded if e.kind == "patrol"
    ]


def test_a_badge_and_a_key_switch_walk_a_round_to_its_end(site: FakeSite, p: Patrols) -> None:
    site.advance(61 * M)  # 22:01
    p.on_read("cp.gate", AN, None)
    site.advance(4 * M)
    p.on_press("cp.safe", site.clock.now())
    assert patrol_events(site) == [
        ("started", "E458", "cp.gate", "an"),
        ("visited", "E422", "cp.gate", "an"),
        ("visited", "E422", "cp.safe", None),
        ("completed", "R458", "cp.safe", None),
    ]
    visit = site.recorded[1]
    assert visit.zone == "hall" and visit.text == "Patrol night: checkpoint cp.gate visited"
    assert p.status()["patrols"]["night"]["last_round"]["outcome"] == "completed"  # type: ignore[index]


def test_unknown_and_disabled_badges_are_refused_and_garbled_reads_only_counted(
    site: FakeSite, p: Patrols
) -> None:
    p.on_read("cp.gate", 4242, None)
    p.on_read("cp.gate", 777, None)
    p.on_read("cp.gate", None, "parity")
    assert patrol_events(site) == [
        ("unknown_badge", "E421", "cp.gate", None),
        ("refused_badge", "E421", "cp.gate", "binh"),
    ]
    assert p.counts["cp.gate"] == {
        "reads": 2,
        "garbled": 1,
        "unknown": 1,
        "refused": 1,
        "presses": 0,
    }
    for e in site.recorded:  # a badge number is never in an event
        assert "4242" not in str(e) and "777" not in e.text and "777" not in str(e.detail)


def test_a_round_nobody_walks_is_late_then_missed_on_the_timer(site: FakeSite, p: Patrols) -> None:
    site.advance(95 * M)  # 22:35
    assert [e[:2] for e in patrol_events(site)] == [("late", "E452"), ("missed", "E102")]


def test_a_silent_guard_hears_the_buzzer_before_the_office_is_alarmed(
    site: FakeSite, p: Patrols
) -> None:
    site.advance(60 * M)
    p.on_read("cp.gate", AN, None)
    site.advance(10 * M)
    assert site.buzzers["kp"].calls[-1][0] == "delay"
    assert "silent" not in [e[0] for e in patrol_events(site)]
    site.advance(2 * M)
    assert patrol_events(site)[-1] == ("silent", "E101", "cp.gate", "an")
    p.on_press("cp.safe", site.clock.now())
    assert ("alive", "R101", "cp.safe", None) in patrol_events(site)
    assert site.buzzers["kp"].calls[-1] == ("stop", None)


def test_the_guards_route_is_exempt_in_an_armed_zone_until_the_round_ends(
    site: FakeSite, p: Patrols
) -> None:
    site.submit(Arm(("hall",), "away", user="an"))
    site.advance(60 * M)
    p.on_read("cp.gate", AN, None)
    assert site.engine.sensors["door.hall"].bypassed
    p.on_press("cp.safe", site.clock.now())
    assert not site.engine.sensors["door.hall"].bypassed  # the round ended with its last visit
    bypasses = [(e.cid, e.user) for e in site.recorded if e.kind == "bypass"]
    assert bypasses == [("E570", "an"), ("R570", "an")]


def test_a_round_in_progress_survives_a_restart_of_the_component(
    site: FakeSite, p: Patrols
) -> None:
    site.advance(61 * M)
    p.on_read("cp.gate", AN, None)
    p.close()  # a reload or a restart
    again = Patrols(site)
    again.start()
    site.advance(2 * M)
    again.on_press("cp.safe", site.clock.now())
    whats = [e[0] for e in patrol_events(site)]
    assert whats == ["started", "visited", "visited", "completed"]  # not started twice
    # the route stayed open across the restart, and closed with the round
    bypasses = [e.cid for e in site.recorded if e.kind == "bypass"]
    assert bypasses == ["E570", "R570", "E570", "R570"]
    again.close()


def test_the_patrol_sensor_of_home_assistant_follows_the_plans_retained_state() -> None:
    import json

    import jsonschema

    from controller.reporting.discovery import discovery_configs
    from tests.ha_discovery_schema import SCHEMAS, render

    cfg = parse_config(CONFIG).config
    confs = {c["unique_id"]: (comp, c) for comp, c in discovery_configs(cfg)}
    comp, conf = confs["officeguard:t:patrol:night"]
    assert comp == "homeassistant/sensor/officeguard_t/patrol_night/config"
    assert conf["state_topic"] == "officeguard/t/patrol/night"
    jsonschema.Draft202012Validator(SCHEMAS["sensor"]).validate(conf)
    state = {
        "state": "late",
        "next_due": "2026-03-05T00:00:00+07:00",
        "round": None,
        "last_round": {"due": "2026-03-04T22:00:00+07:00", "outcome": "missed", "at": "x"},
        "ts": "2026-03-04T22:35:00+07:00",
    }
    assert render(conf["value_template"], value_json=state) == "late"
    attrs = json.loads(render(conf["json_attributes_template"], value_json=state))
    assert attrs["last_round"]["outcome"] == "missed" and attrs["next_due"] == state["next_due"]


def test_the_console_keeps_each_plans_state_and_flags_a_missed_round() -> None:
    import json

    from controller.console.model import Console
    from controller.console.view import _attention

    c = Console("officeguard")
    body = {"state": "waiting", "next_due": None, "round": None,
            "last_round": {"due": "d", "outcome": "missed", "at": "a"}}  # fmt: skip
    c.ingest("officeguard/a/patrol/night", json.dumps(body).encode(), 0)
    assert c.sites["a"].patrols["night"]["last_round"]["outcome"] == "missed"
    assert "patrol night: last round missed" in _attention(c.sites["a"]).plain
    c.ingest("officeguard/a/patrol/night", b"", 1)
    assert c.sites["a"].patrols == {}


def test_a_checkpoint_whose_pins_cannot_be_opened_is_a_trouble_not_a_dead_daemon(
    tmp_path: Path,
) -> None:
    import asyncio

    from gpiozero import DigitalInputDevice

    from hardware.backend import pin_factory_for

    async def body() -> None:
        site = FakeSite(parse_config(CONFIG).config, tmp_path, start=START)
        site.pin_factory = pin_factory_for("simulated")
        squatter = DigitalInputDevice(5, pin_factory=site.pin_factory)  # cp.gate's d0
        p = Patrols(site)
        p.start()
        assert [t["source"] for t in p.troubles()] == ["cp.gate"]
        assert p.troubles()[0]["cid"] == "E333"
        assert "cp.safe" in p.twins  # the other checkpoint works
        p.close()
        squatter.close()
        site.pin_factory.close()
        site.close()

    asyncio.run(body())


def test_a_clock_step_retimes_the_plan_and_a_round_jumped_over_is_not_missed(
    site: FakeSite, p: Patrols
) -> None:
    site.clock.jump(site.clock.now() + 120 * M)  # 21:00 -> 23:00: NTP corrects a wrong clock
    p.clock_stepped(120 * M)
    site.timers.reschedule_all()  # as the daemon does once every component moved its times
    assert patrol_events(site) == []  # the 22:00 round was never really due
    site.advance(95 * M)  # 00:35
    assert [e[0] for e in patrol_events(site)] == ["late", "missed"]
    assert site.recorded[-1].detail["due"] == "2026-03-05T00:00:00+07:00"


def test_a_hashed_badge_is_checked_off_the_loop_then_visits(tmp_path: Path) -> None:
    import asyncio

    from controller.access.codes import ScryptParams
    from controller.patrol.badges import hash_badge

    cheap = ScryptParams(n=2**4, r=1, p=1)
    text = CONFIG.replace('badge: "188,12345"', f'badge_hash: "{hash_badge("188,12345", cheap)}"')

    async def body() -> None:
        site = FakeSite(parse_config(text).config, tmp_path, start=START)
        p = Patrols(site)
        p.start()
        p.on_read("cp.gate", AN, None)
        assert p.checking and patrol_events(site) == []  # scrypt runs in a worker thread
        await asyncio.wait(list(p.checking))
        await asyncio.sleep(0)
        p.on_read("cp.gate", AN, None)  # known now: at once
        assert [e[0] for e in patrol_events(site)] == ["visited", "visited"]
        assert patrol_events(site)[0][3] == "an"
        p.close()
        site.close()

    asyncio.run(body())
