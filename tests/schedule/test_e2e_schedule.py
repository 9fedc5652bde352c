"""End to end: arming by schedule and holiday calendar on the daemon's virtual clock."""

from __future__ import annotations

import json

import pytest

from tests.conftest import REFERENCE
from tests.e2e import Site

pytestmark = pytest.mark.integration


def test_tet_night_is_armed_and_stays_armed_past_the_workday_disarm(tmp_path):
    site = Site(tmp_path / "state")
    site.start("2026-02-17T01:20:00+07:00")
    try:
        st = site.status()["zones"]
        assert st["leadership"]["state"] == "armed_away" and st["finance"]["state"] == "armed_away"
        assert st["perimeter"]["state"] == "armed_away"  # 22:00-06:00 spans midnight
        site.advance("6h30m")  # 07:50
        st = site.status()["zones"]
        assert st["leadership"]["state"] == "armed_away" and st["finance"]["state"] == "armed_away"
        assert st["perimeter"]["state"] == "disarmed"
        assert all(e.get("cid") != "E403" or e["zone"] == "perimeter" for e in site.events())
    finally:
        site.stop()


def test_wednesday_noon_is_disarmed_and_arms_at_1730_after_the_warning(tmp_path):
    site = Site(tmp_path / "state")
    site.start("2026-03-04T12:00:00+07:00")
    try:
        assert site.zone("leadership") == "disarmed"
        site.advance("5h29m")
        warn = [e for e in site.events() if e["detail"].get("schedule") == "prearm_warning"]
        assert len(warn) == 1 and warn[0]["ts"].startswith("2026-03-04T17:29:00")
        assert site.zone("leadership") == "disarmed"
        site.advance("1m")
        assert site.zone("leadership") == "armed_away" and site.zone("finance") == "armed_away"
        auto = [e for e in site.events() if e.get("cid") == "R403"]
        assert {e["zone"] for e in auto} == {"leadership", "finance"}
    finally:
        site.stop()


def test_schedule_preview_names_tet_and_has_no_workday_disarm_during_it(tmp_path):
    site = Site(tmp_path / "state")
    r = site.og("schedule", "-c", str(REFERENCE), "--from", "2026-02-13", "--days", "10", "--json")
    data = json.loads(r.stdout)
    rows = data["transitions"]
    during_tet = [
        t
        for t in rows
        if "2026-02-16" <= t["local"][:10] <= "2026-02-20"
        and "leadership" in t["zones"]
        and t["action"] == "disarm"
        and t["status"] != "skipped"
    ]
    assert during_tet == []
    skipped = [
        t
        for t in rows
        if t["status"] == "skipped"
        and "leadership" in t["zones"]
        and "2026-02-16" <= t["local"][:10] <= "2026-02-20"
    ]
    assert len(skipped) == 5 and all("Tết" in t["reason"] for t in skipped)
    text = site.og("schedule", "-c", str(REFERENCE), "--from", "2026-02-13", "--days", "10").stdout
    assert "Tết Nguyên Đán" in text


def test_a_code_during_the_prearm_warning_postpones_the_auto_arm(tmp_path):
    site = Site(tmp_path / "state")
    site.start("2026-03-04T17:29:10+07:00")
    try:
        site.og("sim", "keys", "keypad.hall", "2468#")
        site.advance("2m")
        assert site.zone("leadership") == "disarmed"
        postponed = [e for e in site.events() if e["detail"].get("schedule") == "postponed"]
        assert len(postponed) == 1
        site.advance("30m")
        assert site.zone("leadership") == "armed_away"
    finally:
        site.stop()
