"""Alarm engine rules, with plain calls on a virtual time line."""

from __future__ import annotations

from datetime import timedelta

import pytest

from controller.engine import Arm, Bypass, Disarm, ExternalAlarm, OutputFault, SensorChange, Silence
from tests.conftest import Harness, config_with

OPEN = True
CLOSED = False


@pytest.fixture
def h(ref_config):
    return Harness.boot(ref_config)


def arm(h: Harness, *zones: str, mode: str = "away", wait: bool = True, **kw) -> None:
    h.feed(Arm(tuple(zones) or ("leadership", "finance"), mode, user="bao-ve-1", **kw))
    if wait:
        h.wait(61)


# ---------------------------------------------------------------- the foundation's path


def test_entry_door_gives_pending_then_triggered_with_siren_and_e134(h):
    arm(h)
    assert h.state("leadership") == "armed_away"
    h.wait(600)
    n = len(h.events)
    h.feed(SensorChange("door.director", OPEN))
    assert h.state("leadership") == "pending"
    assert not h.siren()
    h.wait(29.9)
    assert h.state("leadership") == "pending"
    h.wait(0.1)
    assert h.state("leadership") == "triggered"
    assert h.siren()
    alarm = [e for e in h.events[n:] if e.kind == "alarm"]
    assert [e.cid for e in alarm] == ["E134"]
    assert alarm[0].sensor == "door.director" and alarm[0].zone == "leadership"
    assert "Cửa phòng Giám đốc" in alarm[0].text and "Phòng lãnh đạo" in alarm[0].text


def test_three_knocks_on_the_safe_alarm_while_disarmed_two_do_not(h):
    assert h.state("finance") == "disarmed"
    for _ in range(2):
        h.feed(SensorChange("vib.safe1", OPEN))
        h.wait(0.1)
        h.feed(SensorChange("vib.safe1", CLOSED))
        h.wait(0.4)
    assert "alarm" not in h.kinds()
    h.wait(5)  # the window slides past the first knocks
    for _ in range(2):
        h.feed(SensorChange("vib.safe1", OPEN))
        h.wait(0.1)
        h.feed(SensorChange("vib.safe1", CLOSED))
        h.wait(0.4)
    assert "alarm" not in h.kinds()
    h.feed(SensorChange("vib.safe1", OPEN))
    alarms = [e for e in h.events if e.kind == "alarm"]
    assert [e.cid for e in alarms] == ["E133"]
    assert h.state("finance") == "triggered" and h.siren()


def test_sustained_vibration_longer_than_the_window_is_an_attack(h):
    h.feed(SensorChange("vib.safe1", OPEN))
    h.wait(1.9)
    assert "alarm" not in h.kinds()
    h.wait(0.1)
    assert [e.cid for e in h.events if e.kind == "alarm"] == ["E133"]


# ---------------------------------------------------------------- responses and modes


def test_instant_gate_alarms_at_once(h):
    arm(h, "perimeter")
    assert h.state("perimeter") == "armed_away"
    h.feed(SensorChange("gate.main", OPEN))
    assert h.state("perimeter") == "triggered"
    assert "E131" in h.cids()


def test_follower_follows_a_running_entry_delay_but_alarms_alone(h):
    arm(h)
    h.wait(300)
    h.feed(SensorChange("door.director", OPEN))
    h.feed(SensorChange("pir.director", OPEN))
    assert h.state("leadership") == "pending"
    h.feed(Disarm(("leadership",), user="giam-doc"))
    assert h.state("leadership") == "disarmed"
    h.feed(SensorChange("door.director", CLOSED))
    h.feed(SensorChange("pir.director", CLOSED))
    arm(h, "leadership")
    h.wait(300)
    h.feed(SensorChange("pir.director", OPEN))
    assert h.state("leadership") == "triggered"
    assert h.cids()[-1] == "E132" or "E132" in h.cids()


def test_home_mode_leaves_interior_out_and_reports_r441(h):
    arm(h, "leadership", mode="home")
    assert h.state("leadership") == "armed_home"
    assert [e.cid for e in h.events if e.kind == "arm" and e.cid] == ["R441"]
    h.feed(SensorChange("pir.director", OPEN))
    assert h.state("leadership") == "armed_home"
    h.feed(SensorChange("door.director", OPEN))
    assert h.state("leadership") == "pending"


def test_night_mode_keeps_interior_sensors_marked_night():
    cfg = config_with()
    data = cfg.model_dump()
    data["sensors"][1]["night"] = True
    from controller.config import SiteConfig

    h = Harness.boot(SiteConfig.model_validate(data))
    arm(h, "leadership", mode="night")
    assert h.state("leadership") == "armed_night"
    h.feed(SensorChange("pir.director", OPEN))
    assert h.state("leadership") == "triggered"


def test_24h_fire_is_audible_e110_and_panic_is_silent_e120():
    from controller.config import SiteConfig

    data = config_with().model_dump()
    data["sensors"] += [
        {"id": "fire.hall", "name": "Báo khói sảnh", "type": "fire", "zone": "perimeter", "pin": 7},
        {"id": "panic.director", "name": "Nút khẩn", "type": "panic", "zone": "leadership", "pin": 8},
    ]
    h = Harness.boot(SiteConfig.model_validate(data))
    h.feed(SensorChange("panic.director", OPEN))
    assert "E120" in h.cids()
    assert not h.siren()
    h.feed(SensorChange("fire.hall", OPEN))
    assert "E110" in h.cids()
    assert h.siren()


# ---------------------------------------------------------------- exit delay


def test_exit_delay_restarts_once_when_the_door_is_reopened(h):
    h.feed(Arm(("leadership",), user="bao-ve-1"))
    h.wait(10)
    h.feed(SensorChange("door.director", OPEN))
    h.wait(2)
    h.feed(SensorChange("door.director", CLOSED))
    h.wait(40)  # 52 s into the 60 s exit delay
    h.feed(SensorChange("door.director", OPEN))  # came back for something: restart
    h.feed(SensorChange("door.director", CLOSED))
    h.wait(59)
    assert h.state("leadership") == "arming"
    h.wait(1)
    assert h.state("leadership") == "armed_away"
    restarts = [e for e in h.events if e.detail.get("phase") == "exit_restart"]
    assert len(restarts) == 1


def test_exit_delay_restart_happens_only_once(h):
    h.feed(Arm(("leadership",), user="bao-ve-1"))
    for _ in range(3):
        h.wait(5)
        h.feed(SensorChange("door.director", OPEN))
        h.feed(SensorChange("door.director", CLOSED))
    assert len([e for e in h.events if e.detail.get("phase") == "exit_restart"]) == 1


def test_exit_error_starts_entry_delay_and_reports_e374_with_the_alarm(h):
    h.feed(Arm(("leadership",), user="bao-ve-1"))
    h.wait(5)
    h.feed(SensorChange("door.director", OPEN))  # walks out, leaves the door open
    h.wait(55)
    assert h.state("leadership") == "pending"
    h.wait(30)
    assert h.state("leadership") == "triggered"
    cids = h.cids()
    assert "E134" in cids and "E374" in cids
    assert "E459" in cids  # alarm within 2 minutes of the closing


def test_exit_error_disarmed_in_time_sends_no_alarm(h):
    h.feed(Arm(("leadership",), user="bao-ve-1"))
    h.feed(SensorChange("door.director", OPEN))
    h.wait(61)
    assert h.state("leadership") == "pending"
    h.feed(Disarm(("leadership",), user="bao-ve-1"))
    assert "alarm" not in h.kinds()


def test_recent_closing_only_within_the_window(h):
    arm(h, "perimeter")
    h.wait(121)
    h.feed(SensorChange("gate.main", OPEN))
    assert "E459" not in h.cids()


# ---------------------------------------------------------------- arming with open sensors


def test_arming_with_an_open_sensor_is_refused_naming_it(h):
    h.feed(SensorChange("door.finance", OPEN))
    h.feed(Arm(("finance",), user="bao-ve-1"))
    assert h.state("finance") == "disarmed"
    failed = [e for e in h.events if e.kind == "arm_failed"]
    assert failed and failed[0].detail["open"] == ["door.finance"]
    assert "Cửa phòng tài vụ" in failed[0].text


def test_forced_arming_bypasses_for_this_period_only_with_e570_and_stuck_trouble(h):
    h.feed(SensorChange("door.finance", OPEN))
    h.feed(Arm(("finance",), user="bao-ve-1", force=True))
    assert "E570" in h.cids()
    h.wait(46)
    assert h.state("finance") == "armed_away"
    assert "E380" in h.cids()  # still active when armed: a stuck sensor trouble
    assert any(t["source"] == "door.finance" for t in h.engine.troubles())
    h.feed(SensorChange("door.finance", CLOSED))
    assert "R380" in h.cids()
    h.feed(SensorChange("door.finance", OPEN))
    assert h.state("finance") == "armed_away"  # bypassed until disarm
    h.feed(Disarm(("finance",), user="bao-ve-1"))
    assert not h.engine.sensors["door.finance"].force_bypassed


def test_manual_bypass_and_unbypass(h):
    h.feed(Bypass("gate.main", True, user="bao-ve-1"))
    arm(h, "perimeter")
    h.feed(SensorChange("gate.main", OPEN))
    assert h.state("perimeter") == "armed_away"
    h.feed(SensorChange("gate.main", CLOSED))
    h.feed(Bypass("gate.main", False, user="bao-ve-1"))
    h.feed(SensorChange("gate.main", OPEN))
    assert h.state("perimeter") == "triggered"
    assert [c for c in h.cids() if c.endswith("570")] == ["E570", "R570"]


# ---------------------------------------------------------------- alarms


def test_siren_cuts_off_after_siren_time_zone_stays_armed_with_alarm_memory(h):
    arm(h, "perimeter")
    h.wait(300)
    h.feed(SensorChange("gate.main", OPEN))
    assert h.siren()
    h.wait(239)
    assert h.siren()
    h.wait(1)
    assert not h.siren()
    assert h.state("perimeter") == "armed_away"
    assert h.engine.status()["zones"]["perimeter"]["alarm"] is True
    h.feed(Disarm(("perimeter",), user="bao-ve-1"))
    assert h.engine.status()["zones"]["perimeter"]["alarm"] is False


def test_disarm_within_abort_window_sends_cancel(h):
    arm(h, "perimeter")
    h.wait(300)
    h.feed(SensorChange("gate.main", OPEN))
    h.wait(10)
    h.feed(Disarm(("perimeter",), user="bao-ve-1"))
    assert "E406" in h.cids()
    assert not h.siren()


def test_disarm_after_abort_window_sends_no_cancel(h):
    arm(h, "perimeter")
    h.wait(300)
    h.feed(SensorChange("gate.main", OPEN))
    h.wait(31)
    h.feed(Disarm(("perimeter",), user="bao-ve-1"))
    assert "E406" not in h.cids()


def test_swinger_shutdown_after_two_trips_reports_e377_once(h):
    arm(h, "perimeter")
    h.wait(300)
    for _ in range(5):
        h.feed(SensorChange("gate.main", OPEN))
        h.feed(SensorChange("gate.main", CLOSED))
        h.wait(300)
    alarms = [e for e in h.events if e.kind == "alarm" and e.sensor == "gate.main"]
    assert len(alarms) == 2
    assert h.cids().count("E377") == 1
    # a new armed period gives the sensor back
    h.feed(Disarm(("perimeter",), user="bao-ve-1"))
    arm(h, "perimeter")
    h.feed(SensorChange("gate.main", OPEN))
    assert h.state("perimeter") == "triggered"


def test_silence_stops_the_siren_but_keeps_the_alarm(h):
    arm(h, "perimeter")
    h.feed(SensorChange("gate.main", OPEN))
    h.feed(Silence(("perimeter",), user="bao-ve-1"))
    assert not h.siren()
    assert h.state("perimeter") == "triggered"
    assert h.engine.status()["zones"]["perimeter"]["alarm"]


def test_external_alarm_sounds_the_zone(h):
    h.feed(ExternalAlarm("perimeter", "rf.roof", 150, "flycam"))
    assert h.siren()
    assert "E150" in h.cids()


# ---------------------------------------------------------------- tamper and troubles


def test_tamper_is_reported_at_all_times_and_alarms_when_armed(h):
    h.feed(SensorChange("tamper.cabinet", OPEN))
    assert [e.cid for e in h.events if e.kind == "tamper"] == ["E137"]
    assert not h.siren()
    assert any(t["cid"] == "E137" for t in h.engine.troubles())
    h.feed(SensorChange("tamper.cabinet", CLOSED))
    assert [e.cid for e in h.events if e.kind == "tamper"] == ["E137", "R137"]
    arm(h, "perimeter")
    h.feed(SensorChange("tamper.cabinet", OPEN))
    assert h.siren() and h.state("perimeter") == "triggered"


def test_output_fault_is_a_trouble_and_restores(h):
    h.feed(OutputFault("siren.hall", True, "relay does not switch"))
    assert "E321" in h.cids()
    h.feed(OutputFault("siren.hall", True, "again"))
    assert h.cids().count("E321") == 1
    h.feed(OutputFault("siren.hall", False))
    assert "R321" in h.cids()


# ---------------------------------------------------------------- events


def test_arm_event_by_user_r401_automatic_r403():
    h = Harness.boot(config_with())
    arm(h, "leadership")
    h.feed(Arm(("finance",), automatic=True, source="schedule"))
    h.wait(46)
    armed = {e.zone: e for e in h.events if e.kind == "arm" and e.cid}
    assert armed["leadership"].cid == "R401" and armed["leadership"].user == "bao-ve-1"
    assert armed["finance"].cid == "R403"
    h.feed(Disarm(("finance",), automatic=True, source="schedule"))
    assert h.events[-1].cid == "E403"


def test_english_text():
    h = Harness.boot(config_with(site={"language": "en"}))
    arm(h, "perimeter")
    h.feed(SensorChange("gate.main", OPEN))
    alarm = next(e for e in h.events if e.kind == "alarm")
    assert alarm.text == "Alarm: Cổng chính (Cổng và sân) opened while armed"


def test_every_zone_state_change_carries_state_and_previous(h):
    arm(h)
    h.feed(SensorChange("door.director", OPEN))
    h.wait(31)
    changes = [(e.zone, e.detail["previous"], e.detail["state"]) for e in h.events if "state" in e.detail]
    assert ("leadership", "disarmed", "arming") in changes
    assert ("leadership", "arming", "armed_away") in changes
    assert ("leadership", "armed_away", "pending") in changes
    assert ("leadership", "pending", "triggered") in changes


# ---------------------------------------------------------------- boot


def test_boot_restores_armed_state_and_active_sensor_is_a_trouble_not_an_alarm(h, ref_config):
    arm(h)
    saved = h.engine.snapshot()
    h2 = Harness.boot(ref_config, sensors={"door.director": True}, saved=saved, now=h.now + timedelta(minutes=3))
    assert h2.state("leadership") == "armed_away"
    assert "alarm" not in h2.kinds()
    assert "E380" in h2.cids()
    assert not h2.siren()
    h2.feed(SensorChange("door.director", CLOSED))
    assert "R380" in h2.cids()
    h2.feed(SensorChange("door.director", OPEN))
    assert h2.state("leadership") == "pending"


def test_boot_after_a_cut_during_the_entry_delay_raises_the_alarm(h, ref_config):
    arm(h)
    h.feed(SensorChange("door.director", OPEN))
    saved = h.engine.snapshot()
    h2 = Harness.boot(ref_config, sensors={"door.director": True}, saved=saved, now=h.now + timedelta(minutes=1))
    assert h2.state("leadership") == "triggered"
    assert "E134" in h2.cids()


def test_boot_restores_bypasses(h, ref_config):
    h.feed(Bypass("gate.main", True, user="bao-ve-1"))
    h2 = Harness.boot(ref_config, saved=h.engine.snapshot())
    assert h2.engine.sensors["gate.main"].bypassed


def test_boot_ignores_a_corrupt_saved_state(ref_config):
    saved = {"zones": {"leadership": {"phase": "bogus", "exit_due": 42}, "nowhere": {}}, "sensors": {"x": 1}}
    h = Harness.boot(ref_config, saved=saved)
    assert h.state("leadership") == "disarmed"


@pytest.mark.parametrize("step", [3600, -3600, 5, -20])
def test_a_clock_step_keeps_running_delays_and_knock_windows_their_length(h, step):
    arm(h, wait=False)
    h.wait(20)
    h.engine.clock_stepped(timedelta(seconds=step))
    h.now += timedelta(seconds=step)  # the wall clock jumped; no real time passed
    h.wait(39.9)
    assert h.state("leadership") == "arming"
    h.wait(0.2)
    assert h.state("leadership") == "armed_away"
    n = len(h.events)
    h.feed(SensorChange("door.director", OPEN))
    h.wait(10)
    h.engine.clock_stepped(timedelta(seconds=step))
    h.now += timedelta(seconds=step)
    assert h.engine.advance(h.now) == [] and h.state("leadership") == "pending"
    h.wait(19.9)
    assert "alarm" not in h.kinds(n)
    h.wait(0.2)
    assert h.state("leadership") == "triggered" and h.siren()
    # two knocks on the safe, a step, a third knock: still three knocks within the window
    h.feed(SensorChange("vib.safe1", True))
    h.feed(SensorChange("vib.safe1", False))
    h.wait(0.5)
    h.feed(SensorChange("vib.safe1", True))
    h.feed(SensorChange("vib.safe1", False))
    h.engine.clock_stepped(timedelta(seconds=step))
    h.now += timedelta(seconds=step)
    h.wait(0.5)
    h.feed(SensorChange("vib.safe1", True))
    assert "E133" in h.cids(n)
