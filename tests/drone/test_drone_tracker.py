"""Drone detector monitor: lines in, events out, on a virtual clock.

The `Rig` below drives a DetectorMonitor the way the daemon should: every line and port change
goes in with the clock's time, and a timer is kept at `next_due()` to call `tick`.
"""

from __future__ import annotations

import functools
import json
from datetime import UTC, datetime, timedelta

import jsonschema
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from controller.clock import VirtualClock
from controller.config import DroneDetector, SiteInfo, load_config
from controller.drone import geo, odid
from controller.drone import protocol as p
from controller.drone.detector import DetectorMonitor, format_distance
from controller.events import Event, EventDraft, event_schema
from tests.conftest import REFERENCE

T0 = datetime(2026, 3, 4, 18, 0, tzinfo=UTC)  # 01:00 in Hanoi
SITE_LAT, SITE_LON = 22.4856, 103.9707
MAC = "60:60:1f:aa:bb:01"
VALIDATOR = jsonschema.Draft202012Validator(event_schema())


@functools.cache
def reference():
    cfg = load_config(REFERENCE).config
    return cfg.drone_detectors[0], cfg.site


class Rig:
    def __init__(self, det: DroneDetector | None = None, site: SiteInfo | None = None, **kw):
        ref_det, ref_site = reference()
        self.det = det or ref_det
        self.site = site or ref_site
        self.clock = VirtualClock(T0)
        self.mon = DetectorMonitor(self.det, self.site, **kw)
        self.events: list[EventDraft] = []
        self.seq = 0
        self._timer = None
        self._take(self.mon.port_state(True, self.clock.now()))

    def _take(self, evs: list[EventDraft]) -> list[EventDraft]:
        for e in evs:
            assert e.zone == self.det.zone and e.sensor == self.det.id
            ev = Event.from_draft(e, site=self.site.id, seq=len(self.events) + 1, tz=self.site.tz)
            VALIDATOR.validate(json.loads(ev.to_json()))
        if self.events and evs:
            assert evs[0].ts >= self.events[-1].ts, "events out of order"
        self.events.extend(evs)
        if self._timer is not None:
            self._timer.cancel()
        due = self.mon.next_due()
        if due is not None:
            assert due > self.clock.now(), "next_due must not stay in the past"
            self._timer = self.clock.call_at(due, self._fire)
        return evs

    def _fire(self) -> None:
        self._timer = None
        self._take(self.mon.tick(self.clock.now()))

    def raw(self, line: bytes) -> list[EventDraft]:
        return self._take(self.mon.feed_line(line, self.clock.now()))

    def send(self, msg: p.Message) -> list[EventDraft]:
        return self.raw(p.encode_line(msg))

    def next_seq(self) -> int:
        s = self.seq
        self.seq = (self.seq + 1) % p.SEQ_MOD
        return s

    def hb(self) -> list[EventDraft]:
        return self.send(p.Heartbeat(self.next_seq(), 10, 0, 0))

    def rid(self, payload: bytes, mac: str = MAC, rssi: int = -70, tr: str = "ble4"):
        return self.send(p.Rid(self.next_seq(), tr, mac, rssi, payload))

    def rf(self, ev: str, rid: int = 1, band: str = "5g8", peak: float = -45.0, dur: int = 0):
        return self.send(p.Rf(self.next_seq(), band, ev, rid, peak, -80.0, dur))

    def port(self, is_open: bool, error: str | None = None) -> list[EventDraft]:
        return self._take(self.mon.port_state(is_open, self.clock.now(), error))

    def advance(self, seconds: float) -> None:
        self.clock.advance(timedelta(seconds=seconds))

    def talk(self, seconds: int, every: int = 5) -> None:
        """Heartbeats every `every` seconds for `seconds`."""
        for _ in range(seconds // every):
            self.advance(every)
            self.hb()

    def kinds(self, since: int = 0) -> list[str]:
        return [e.kind for e in self.events[since:]]


def drone_pack(distance_m=200.0, bearing=45.0, serial="1581F5FKD229400H", operator="VNM-OP-0042"):
    lat, lon = geo.destination(SITE_LAT, SITE_LON, bearing, distance_m)
    pack = odid.encode_message_pack(
        [
            odid.encode_basic_id(serial, "serial_number", "helicopter_or_multirotor"),
            odid.encode_location(
                lat,
                lon,
                alt_geo=180.0,
                height=120.0,
                height_type="above_takeoff",
                direction=270,
                speed_h=6.5,
                speed_v=0.0,
                timestamp=1200.0,
            ),
            odid.encode_operator_id(operator),
        ]
    )
    return pack, (lat, lon)


# ---------------------------------------------------------------- acceptance


def test_pack_200_m_away_gives_exactly_one_drone_event_with_id_operator_and_distance():
    rig = Rig()
    pack, (lat, lon) = drone_pack()
    evs = rig.rid(pack)
    assert [e.kind for e in evs] == ["drone"]
    ev = evs[0]
    d = ev.detail
    true_distance = geo.haversine_m(SITE_LAT, SITE_LON, lat, lon)
    assert abs(true_distance - 200.0) < 0.01
    assert abs(d["distance_m"] - true_distance) < 3.0
    assert abs(d["bearing_deg"] - 45.0) < 0.5
    assert d["uas_id"] == "1581F5FKD229400H" and d["id_type"] == "serial_number"
    assert d["ua_type"] == "helicopter_or_multirotor"
    assert d["operator_id"] == "VNM-OP-0042"
    assert d["height"] == 120.0 and d["alt_geo"] == 180.0
    assert d["speed_h"] == 6.5 and d["direction"] == 270
    assert d["rssi"] == -70 and d["transport"] == "ble4" and d["detector"] == "rf.roof"
    assert d["update"] is False and d["unidentified"] is False
    assert ev.cid == "E150" and ev.zone == "perimeter" and ev.sensor == "rf.roof"
    assert "cách 200 m, hướng Đông Bắc" in ev.text
    assert "1581F5FKD229400H" in ev.text and "VNM-OP-0042" in ev.text
    for key in [
        "uas_id",
        "id_type",
        "ua_type",
        "lat",
        "lon",
        "alt_geo",
        "height",
        "speed_h",
        "direction",
        "operator_id",
        "operator_lat",
        "operator_lon",
        "rssi",
        "distance_m",
        "bearing_deg",
        "track",
        "transport",
        "detector",
    ]:
        assert key in d, key


def test_silence_after_the_last_message_gives_drone_lost_at_the_timeout():
    rig = Rig()
    rig.rid(drone_pack()[0])
    seen = rig.clock.now()
    rig.talk(55)
    assert "drone_lost" not in rig.kinds()
    rig.talk(10)
    lost = [e for e in rig.events if e.kind == "drone_lost"]
    assert len(lost) == 1
    assert lost[0].ts == seen + timedelta(seconds=60)
    assert lost[0].cid == "R150"
    assert lost[0].detail["reason"] == "timeout"
    assert lost[0].detail["uas_id"] == "1581F5FKD229400H"
    assert "Mất dấu flycam 1581F5FKD229400H" in lost[0].text
    assert rig.mon.retained_tracks() == {}


def test_detector_silence_is_one_trouble_and_a_line_restores_it():
    rig = Rig()
    rig.talk(30)
    last = rig.clock.now()
    rig.advance(100)
    troubles = [e for e in rig.events if e.kind == "trouble"]
    assert len(troubles) == 1
    assert troubles[0].ts == last + timedelta(seconds=15)
    assert troubles[0].cid == "E333" and troubles[0].detail["reason"] == "silent"
    assert "không phản hồi quá 15s" in troubles[0].text
    assert rig.mon.status()["link"] == "silent"
    assert rig.mon.troubles()[0]["cid"] == "E333"
    evs = rig.hb()
    assert [e.kind for e in evs] == ["trouble_restore"]
    assert evs[0].cid == "R333" and evs[0].ts == rig.clock.now()
    assert rig.mon.troubles() == []
    rig.talk(60)
    assert rig.kinds().count("trouble") == 1


def test_wrong_crc_is_ignored_and_counted():
    rig = Rig()
    pack, _ = drone_pack()
    good = p.encode_line(p.Rid(0, "ble4", MAC, -70, pack))
    digit = b"0" if good[-2:-1] != b"0" else b"1"
    bad = good[:-2] + digit + b"\n"  # the last CRC digit changed
    assert rig.raw(bad) == []
    assert rig.raw(b"garbage\n") == []
    st = rig.mon.status()
    assert st["bad"] == {"bad_crc": 1, "bad_frame": 1} and st["lines_bad"] == 2
    assert st["lines_ok"] == 0 and st["active_tracks"] == 0
    # bad lines do not count as the detector being heard
    rig.advance(15)
    assert rig.kinds() == ["trouble"]


# ---------------------------------------------------------------- tracks


def test_updates_are_rate_limited_to_the_update_interval():
    rig = Rig()
    for i in range(31):
        pack, _ = drone_pack(distance_m=200 + i * 5)
        rig.rid(pack)
        rig.advance(1)
    drones = [e for e in rig.events if e.kind == "drone"]
    assert [e.detail["update"] for e in drones] == [False, True, True, True]
    assert [(e.ts - T0).total_seconds() for e in drones] == [0, 10, 20, 30]
    assert drones[-1].detail["distance_m"] == pytest.approx(350.0, abs=3)
    assert "Flycam 1581F5FKD229400H cách 350 m" in drones[-1].text


def test_single_ble4_messages_report_on_the_id_then_at_once_on_the_position():
    rig = Rig()
    lat, lon = geo.destination(SITE_LAT, SITE_LON, 180.0, 1500.0)
    first = rig.rid(odid.encode_basic_id("SN-XYZ-1"))
    assert [e.detail["update"] for e in first] == [False]
    assert "chưa rõ vị trí" in first[0].text and first[0].detail["distance_m"] is None
    rig.advance(0.3)
    second = rig.rid(odid.encode_location(lat, lon, height=50.0))
    assert len(second) == 1 and second[0].detail["update"] is True
    assert "cách 1,5 km, hướng Nam" in second[0].text
    rig.advance(0.3)
    assert rig.rid(odid.encode_operator_id("OP-1")) == []  # rate-limited
    rig.advance(0.3)
    assert rig.rid(odid.encode_self_id("Survey")) == []
    state = rig.mon.retained_tracks()
    (track,) = state.values()
    assert track["operator_id"] == "OP-1" and track["self_id"] == "Survey"
    assert track["active"] is True and track["messages"] == 4


def test_a_position_alone_is_enough_for_a_report():
    rig = Rig()
    lat, lon = geo.destination(SITE_LAT, SITE_LON, 270.0, 80.0)
    evs = rig.rid(odid.encode_location(lat, lon))
    assert len(evs) == 1 and evs[0].detail["uas_id"] is None
    assert "chưa rõ số hiệu cách 80 m, hướng Tây" in evs[0].text


def test_messages_without_id_or_position_are_not_reported():
    rig = Rig()
    assert rig.rid(odid.encode_operator_id("OP-1")) == []
    assert rig.rid(odid.encode_location(None, None)) == []
    assert rig.mon.status()["active_tracks"] == 1
    rig.advance(60)
    assert "drone_lost" not in rig.kinds()  # never reported, never lost
    assert rig.mon.status()["active_tracks"] == 0


def test_a_new_mac_with_a_known_serial_joins_the_track():
    rig = Rig()
    rig.rid(drone_pack()[0], mac=MAC)
    rig.advance(1)
    evs = rig.rid(drone_pack()[0], mac="7a:00:00:00:00:02")
    assert evs == []
    assert rig.mon.status()["active_tracks"] == 1
    (track,) = rig.mon.tracks.tracks.values()
    assert track.macs == [MAC, "7a:00:00:00:00:02"]


def test_a_position_only_track_that_turns_out_known_is_merged():
    rig = Rig()
    rig.rid(drone_pack()[0], mac=MAC)
    lat, lon = geo.destination(SITE_LAT, SITE_LON, 10.0, 300.0)
    rig.advance(1)
    new = rig.rid(odid.encode_location(lat, lon), mac="7a:00:00:00:00:02")
    assert [e.kind for e in new] == ["drone"]
    rig.advance(1)
    merged = rig.rid(odid.encode_basic_id("1581F5FKD229400H"), mac="7a:00:00:00:00:02")
    assert [e.kind for e in merged] == ["drone_lost"]
    assert merged[0].detail["reason"] == "merged"
    assert merged[0].detail["merged_into"] == "rf.roof.60601faabb01"
    assert list(rig.mon.retained_tracks()) == ["rf.roof.60601faabb01"]
    state = rig.mon.retained_tracks()["rf.roof.60601faabb01"]
    assert state["lat"] == pytest.approx(lat, abs=1e-6)


def test_two_drones_are_two_tracks():
    rig = Rig()
    rig.rid(drone_pack(serial="A1")[0], mac=MAC)
    rig.rid(drone_pack(serial="B2", bearing=200)[0], mac="60:60:1f:aa:bb:02")
    assert rig.kinds() == ["drone", "drone"]
    assert {e.detail["uas_id"] for e in rig.events} == {"A1", "B2"}
    assert set(rig.mon.retained_tracks()) == {"rf.roof.60601faabb01", "rf.roof.60601faabb02"}


def test_undecodable_rid_payload_is_counted_not_raised():
    rig = Rig()
    assert rig.rid(bytes([0x62]) + bytes(24)) == []
    assert rig.rid(bytes(10)) == []
    assert rig.mon.status()["odid_errors"] == 2
    assert rig.mon.status()["internal_errors"] == 0


def test_system_message_gives_the_pilot_position():
    rig = Rig()
    pack = odid.encode_message_pack(
        [
            odid.encode_basic_id("SN1"),
            odid.encode_system(22.49, 103.97, operator_location_type="live_gnss"),
        ]
    )
    (ev,) = rig.rid(pack)
    assert ev.detail["operator_lat"] == 22.49 and ev.detail["operator_lon"] == 103.97


# ---------------------------------------------------------------- RF only


def test_rf_detection_start_update_end():
    rig = Rig()
    start = rig.rf("start", peak=-52.0)
    assert [e.kind for e in start] == ["drone"]
    d = start[0].detail
    assert d["unidentified"] is True and d["band"] == "5g8" and d["peak_dbm"] == -52.0
    assert d["floor_dbm"] == -80.0 and d["update"] is False
    assert "không nhận dạng, băng 5,8 GHz, -52 dBm" in start[0].text
    rig.advance(5)
    assert rig.rf("upd", peak=-50.0, dur=5000) == []
    rig.advance(5)
    upd = rig.rf("upd", peak=-48.0, dur=10000)
    assert [e.detail["update"] for e in upd] == [True]
    rig.advance(2)
    end = rig.rf("end", dur=12000)
    assert [e.kind for e in end] == ["drone_lost"]
    assert end[0].detail["reason"] == "ended" and end[0].cid == "R150"
    assert "sau 12s" in end[0].text
    assert rig.mon.retained_tracks() == {}


def test_rf_update_without_start_and_end_without_start():
    rig = Rig()
    assert rig.rf("end", rid=9) == []
    assert rig.mon.tracks.rf_end_unknown == 1
    evs = rig.rf("upd", rid=3, band="2g4")
    assert [e.kind for e in evs] == ["drone"] and evs[0].detail["band"] == "2g4"
    rig.talk(65)
    lost = [e for e in rig.events if e.kind == "drone_lost"]
    assert len(lost) == 1 and lost[0].detail["reason"] == "timeout"


# ---------------------------------------------------------------- port, faults, counters


def test_port_closed_is_a_trouble_at_once_and_restored_by_a_line_only():
    rig = Rig()
    rig.talk(10)
    evs = rig.port(False, "device disconnected")
    assert [e.kind for e in evs] == ["trouble"]
    assert evs[0].cid == "E333" and evs[0].detail["reason"] == "port_closed"
    assert "/dev/serial0" in evs[0].text
    rig.advance(60)
    assert rig.kinds().count("trouble") == 1  # no second trouble for the silence
    assert rig.port(True) == []
    rig.advance(30)
    assert rig.kinds().count("trouble") == 1
    assert [e.kind for e in rig.hb()] == ["trouble_restore"]
    assert rig.mon.status()["link"] == "ok" and rig.mon.status()["port_open"] is True


def test_port_lost_while_silent_is_not_reported_twice():
    rig = Rig()
    rig.advance(20)
    assert rig.kinds() == ["trouble"]
    rig.port(False, "gone")
    assert rig.kinds() == ["trouble"]
    assert rig.mon.troubles()[0]["what"].startswith("detector port closed")


def test_port_that_never_opens_is_a_trouble():
    det, site = reference()
    mon = DetectorMonitor(det, site)
    evs = mon.port_state(False, T0, "[Errno 2] could not open port /dev/serial0")
    assert [e.kind for e in evs] == ["trouble"]
    assert mon.status()["port_error"].startswith("[Errno 2]")
    assert mon.next_due() is None  # nothing to time while the trouble stands


def test_err_line_is_a_fault_trouble_until_the_detector_talks_without_one():
    rig = Rig()
    evs = rig.send(p.Err(rig.next_seq(), "ble scan stopped\x1b[31m"))
    assert [e.kind for e in evs] == ["trouble"] and evs[0].cid == "E144"
    assert "\x1b" not in evs[0].text and "ble scan stopped" in evs[0].text
    assert rig.mon.status()["fault"].startswith("ble scan stopped")
    for _ in range(3):  # the firmware repeats a standing fault with its heartbeats
        rig.advance(5)
        rig.hb()
        rig.send(p.Err(rig.next_seq(), "ble scan stopped"))
    assert rig.kinds() == ["trouble"]
    last_err = rig.clock.now()
    rig.talk(30)
    restores = [e for e in rig.events if e.kind == "trouble_restore"]
    assert len(restores) == 1 and restores[0].cid == "R144"
    assert restores[0].ts == last_err + timedelta(seconds=15)
    assert rig.mon.status()["fault"] is None


def test_fault_is_not_cleared_while_the_detector_is_silent():
    rig = Rig()
    rig.send(p.Err(rig.next_seq(), "adc"))
    rig.advance(300)
    assert rig.kinds() == ["trouble", "trouble"]  # the fault, then the silence
    assert {e.cid for e in rig.events} == {"E144", "E333"}
    evs = rig.hb()
    assert [e.cid for e in evs] == ["R333", "R144"]  # quiet long enough since the fault


def test_status_counts_types_gaps_and_detector_info():
    rig = Rig()
    rig.send(p.Hello(0, "og-rid 0.3.0", ("ble4", "rf58")))
    rig.send(p.Heartbeat(1, 5, 120, 2))
    rig.send(p.Heartbeat(5, 25, 600, 2))  # 2, 3, 4 lost
    rig.send(p.Hello(0, "og-rid 0.3.0", ("ble4", "rf58")))
    rig.mon.feed_line(b"x" * 1024, rig.clock.now(), too_long=True)
    st = rig.mon.status()
    assert st["by_type"]["hb"] == 2 and st["by_type"]["hello"] == 2
    assert (st["seq_gaps"], st["lines_lost"]) == (1, 3)
    assert st["restarts"] == 1 and st["firmware"] == "og-rid 0.3.0"
    assert st["caps"] == ["ble4", "rf58"] and st["adverts_seen"] == 600
    assert st["bad"] == {"too_long": 1}
    assert st["last_heartbeat"].endswith("+07:00")


def test_english_texts_and_km_formatting():
    det, site = reference()
    rig = Rig(det, site.model_copy(update={"language": "en"}))
    pack, _ = drone_pack(distance_m=2400, bearing=300)
    (ev,) = rig.rid(pack)
    assert "detected 2.4 km away to the north-west" in ev.text
    assert format_distance(999.4, "vi") == "999 m" and format_distance(1250, "vi") == "1,2 km"


def test_without_a_site_location_the_position_is_given_instead_of_a_distance():
    det, site = reference()
    rig = Rig(det, site.model_copy(update={"location": None}))
    (ev,) = rig.rid(drone_pack()[0])
    assert ev.detail["distance_m"] is None and ev.detail["bearing_deg"] is None
    assert "tại 22.48" in ev.text


def test_naive_time_is_refused():
    det, site = reference()
    mon = DetectorMonitor(det, site)
    with pytest.raises(ValueError):
        mon.tick(datetime(2026, 1, 1))


def test_a_late_tick_keeps_each_deadline_and_the_order():
    rig = Rig()
    rig.rid(drone_pack()[0])
    t_line = rig.clock.now()
    # no timer: call feed_line much later, as a daemon that was busy would
    evs = rig.mon.feed_line(p.encode_line(p.Heartbeat(99, 1, 1, 1)), t_line + timedelta(hours=1))
    assert [e.kind for e in evs] == ["trouble", "drone_lost", "trouble_restore"]
    assert evs[0].ts == t_line + timedelta(seconds=15)
    assert evs[1].ts == t_line + timedelta(seconds=60)
    assert evs[2].ts == t_line + timedelta(hours=1)


# ---------------------------------------------------------------- fuzzing feed_line

GOOD = [
    p.encode_line(p.Rid(1, "ble4", MAC, -60, drone_pack()[0])),
    p.encode_line(p.Rid(2, "ble5", "60:60:1f:aa:bb:02", -80, odid.encode_basic_id("Z9"))),
    p.encode_line(p.Rid(3, "wb", MAC, -60, odid.encode_location(22.48, 103.97))),
    p.encode_line(p.Rf(4, "2g4", "start", 1, -40.0, -85.0, 0)),
    p.encode_line(p.Rf(5, "2g4", "end", 1, -40.0, -85.0, 900)),
    p.encode_line(p.Err(6, "adc")),
    p.encode_line(p.Hello(0, "x", ("ble4",))),
    p.encode_line(p.Heartbeat(7, 1, 2, 3)),
]


def _mutate(data: st.DataObject) -> bytes:
    choice = data.draw(st.integers(0, 3))
    if choice == 0:
        return data.draw(st.binary(max_size=1100))
    if choice == 1:
        raw = bytearray(data.draw(st.sampled_from(GOOD)))
        for _ in range(data.draw(st.integers(1, 6))):
            raw[data.draw(st.integers(0, len(raw) - 1))] = data.draw(st.integers(0, 255))
        return bytes(raw)
    if choice == 2:  # a valid frame around random ODID bytes
        payload = data.draw(st.binary(min_size=1, max_size=255))
        tr = data.draw(st.sampled_from(p.TRANSPORTS))
        seq = data.draw(st.integers(0, 65535))
        return p.encode_line(p.Rid(seq, tr, MAC, -50, payload))
    return data.draw(st.sampled_from(GOOD))


@given(st.data())
@settings(max_examples=150)
def test_feed_line_never_raises_and_events_stay_valid(data):
    rig = Rig()
    for _ in range(data.draw(st.integers(1, 25))):
        rig.advance(data.draw(st.floats(0, 40)))
        if data.draw(st.integers(0, 9)) == 0:
            rig.port(data.draw(st.booleans()), "x")
        else:
            rig.raw(_mutate(data))  # Rig checks order, zone, sensor, schema, next_due
    rig.advance(600)
    st_ = rig.mon.status()
    assert st_["internal_errors"] == 0
    assert st_["active_tracks"] == 0
    for e in rig.events:
        assert e.kind in {"drone", "drone_lost", "trouble", "trouble_restore"}
        assert e.cid is not None and e.cid[1:] in {"150", "333", "144"}


def test_a_detector_restart_ends_its_rf_detections():
    rig = Rig()
    rig.rf("start", rid=0)
    rig.rid(drone_pack()[0])
    evs = rig.send(p.Hello(0, "og-rid 0.1.0", ("ble4", "rf58")))
    assert [e.kind for e in evs] == ["drone_lost"]
    assert evs[0].detail["reason"] == "detector_restart" and evs[0].detail["unidentified"]
    assert rig.mon.status()["active_tracks"] == 1  # the Remote ID track goes on
    assert [e.detail["update"] for e in rig.rf("start", rid=0)] == [False]  # a new detection
