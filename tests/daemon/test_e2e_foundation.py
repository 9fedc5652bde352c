"""End to end: the real daemon process in simulation, driven only through the CLI."""

from __future__ import annotations

import pytest

from tests.e2e import Site, shows_code

pytestmark = pytest.mark.integration

WEDNESDAY_NOON = "2026-03-04T12:00:00+07:00"


@pytest.fixture
def site(tmp_path):
    s = Site(tmp_path / "state")
    s.start(WEDNESDAY_NOON)
    yield s
    s.stop()


def test_door_opened_in_an_armed_zone_then_safe_knocks_then_sigkill(site):
    assert site.zone("leadership") == "disarmed"
    r = site.og("arm", "leadership", input="2468\n")
    assert "leadership: arming" in r.stdout
    assert not shows_code("2468", r.stdout + r.stderr)
    site.advance("61s")
    assert site.zone("leadership") == "armed_away"

    site.og("sim", "set", "door.director", "active")
    assert site.zone("leadership") == "pending"
    site.advance("29s")
    assert site.zone("leadership") == "pending"
    assert site.outputs()["siren.hall"] is False
    site.advance("1s")
    assert site.zone("leadership") == "triggered"
    assert site.outputs()["siren.hall"] is True
    alarms = [e for e in site.events() if e["kind"] == "alarm" and e.get("cid") == "E134"]
    assert (
        len(alarms) == 1
        and alarms[0]["zone"] == "leadership"
        and alarms[0]["sensor"] == "door.director"
    )

    # the safe: two knocks are nothing, three within 2 s are an attack, finance disarmed
    assert site.zone("finance") == "disarmed"
    site.og("sim", "pulse", "vib.safe1", "--count", "2", "--interval", "0.5")
    assert not [e for e in site.events() if e.get("cid") == "E133"]
    site.advance("5s")
    site.og("sim", "pulse", "vib.safe1", "--count", "3", "--interval", "0.5")
    safe = [e for e in site.events() if e.get("cid") == "E133"]
    assert len(safe) == 1 and safe[0]["sensor"] == "vib.safe1"

    site.og("sim", "set", "door.director", "inactive")
    before = site.events()
    last_seq = before[-1]["seq"]
    site.kill()
    # back ten minutes later (virtual clock): still armed, nothing false raised
    site.start("2026-03-04T12:12:00+07:00")
    st = site.status()
    assert st["zones"]["leadership"]["state"] == "armed_away"
    assert st["zones"]["leadership"]["alarm"] is True  # the alarm stays in memory
    assert st["zones"]["finance"]["state"] == "disarmed"
    after = site.events()
    new = [e for e in after if e["seq"] > last_seq]
    assert new and all(e["kind"] not in ("alarm", "tamper", "trouble") for e in new)
    seqs = [e["seq"] for e in after]
    assert seqs == sorted(set(seqs))
    assert [e["id"] for e in after[: len(before)]] == [e["id"] for e in before]
    site.og("disarm", "leadership", input="2468\n")
    assert site.zone("leadership") == "disarmed"


def test_wrong_code_is_refused_logged_and_never_shown(site):
    r = site.og("arm", "leadership", input="9999\n", check=False)
    assert r.returncode == 1 and r.stderr.strip() == "Từ chối: sai mã"
    assert site.zone("leadership") == "disarmed"
    events = site.events()
    assert any(e.get("cid") == "E461" for e in events)
    assert "9999" not in site.og("log", "--json").stdout


def test_unknown_sensor_and_non_simulated_commands_are_clear_errors(site):
    r = site.og("sim", "set", "door.nowhere", "active", check=False)
    assert r.returncode != 0 and "không có cảm biến 'door.nowhere'" in r.stderr
    r = site.og("arm", "atlantis", input="2468\n", check=False)
    assert r.returncode != 0 and "không có vùng atlantis" in r.stderr
    r = site.og("sim", "keys", "keypad.hall", "24X8#", check=False)
    assert r.returncode != 0 and "không có phím 'X'" in r.stderr
    assert not [e for e in site.events() if e["kind"] != "system"]  # nothing was pressed
    r = site.og("sim", "advance", "soon", check=False)
    assert r.returncode != 0 and "thời lượng 'soon' không hợp lệ" in r.stderr
