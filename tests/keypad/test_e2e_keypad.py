"""End to end at the hall keypad: arming, disarming, lockout and duress through `sim keys`."""

from __future__ import annotations

import re

import pytest

from tests.e2e import Site

pytestmark = pytest.mark.integration

CODES = ("2468", "1357", "1358", "0000")


@pytest.fixture
def site(tmp_path):
    s = Site(tmp_path / "state")
    s.start("2026-03-04T12:00:00+07:00")
    yield s
    s.stop()


def test_keypad_arm_away_disarm_lockout_and_duress(site):
    site.og("sim", "keys", "keypad.hall", "2468*1")
    assert site.zone("leadership") == "arming" and site.zone("finance") == "arming"
    site.advance("61s")
    assert site.zone("leadership") == "armed_away" and site.zone("finance") == "armed_away"
    arms = [e for e in site.events() if e["kind"] == "arm" and e.get("cid") == "R401"]
    assert {e["zone"] for e in arms} == {"leadership", "finance"}
    assert all(e["user"] == "bao-ve-1" for e in arms)

    site.og("sim", "keys", "keypad.hall", "2468#")
    assert site.zone("leadership") == "disarmed" and site.zone("finance") == "disarmed"

    for _ in range(5):
        site.og("sim", "keys", "keypad.hall", "0000#")
    events = site.events()
    assert sum(1 for e in events if e.get("cid") == "E461") == 5
    assert any(e["kind"] == "keypad_lockout" for e in events)
    site.og("sim", "keys", "keypad.hall", "2468*1")  # the right code, refused while locked
    assert site.zone("leadership") == "disarmed"
    site.advance("5m")
    site.og("sim", "keys", "keypad.hall", "2468*1")
    assert site.zone("leadership") == "arming"
    site.advance("61s")

    site.og("sim", "keys", "keypad.hall", "1358#")  # the director's duress code
    assert site.zone("leadership") == "disarmed"
    assert site.zone("finance") == "armed_away"  # the director operates leadership only
    assert site.outputs()["siren.hall"] is False
    duress = [e for e in site.events() if e["kind"] == "duress"]
    assert len(duress) == 1 and duress[0]["cid"] == "E121" and duress[0]["user"] == "giam-doc"

    logbook = site.og("log", "--json").stdout + site.og("status", "--json").stdout
    for code in CODES:  # a code standing alone, not digits inside a timestamp or an event id
        assert not re.search(rf"(?<![0-9A-Za-z.:+-]){code}(?![0-9A-Za-z])", logbook), code
