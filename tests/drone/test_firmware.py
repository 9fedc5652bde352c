"""The detector firmware (firmware_py/) under CPython with stub `machine`, `bluetooth` and
`micropython` modules: real advertisement bytes in, protocol lines out, and those lines read
back by the controller's own parser, decoder and monitor (one protocol, two ends, one test)."""

from __future__ import annotations

import functools
import importlib
import sys
import zlib
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from controller.config import load_config
from controller.drone import geo, odid
from controller.drone import protocol as p
from controller.drone.detector import DetectorMonitor
from tests.conftest import REFERENCE, ROOT

FW = ROOT / "firmware_py"
_saved_path = list(sys.path)
sys.path[:0] = [str(FW), str(FW / "stubs")]
try:
    bluetooth = importlib.import_module("bluetooth")
    machine = importlib.import_module("machine")
    ticks = importlib.import_module("ticks")
    lineproto = importlib.import_module("lineproto")
    ble_rid = importlib.import_module("ble_rid")
    rf_energy = importlib.import_module("rf_energy")
    fw_node = importlib.import_module("node")
    fw_settings = importlib.import_module("settings")
    fw_main = importlib.import_module("main")
finally:
    sys.path[:] = _saved_path

SITE_LAT, SITE_LON = 22.4856, 103.9707
T0 = datetime(2026, 3, 4, 18, 0, tzinfo=UTC)
ADDR = bytes.fromhex("60601faabb01")


def ble4_adv(msg: bytes, counter: int = 0) -> bytes:
    """A Bluetooth 4 legacy advertisement with ODID service data (31 bytes)."""
    payload = b"\xfa\xff\x0d" + bytes([counter]) + msg
    return bytes([len(payload) + 1, 0x16]) + payload


def ble5_adv(pack: bytes, counter: int = 0) -> bytes:
    """A Bluetooth 5 extended advertisement: flags, then ODID service data with a pack."""
    payload = b"\xfa\xff\x0d" + bytes([counter]) + pack
    return b"\x02\x01\x06" + bytes([len(payload) + 1, 0x16]) + payload


def drone_messages(distance_m: float = 200.0, bearing: float = 45.0):
    lat, lon = geo.destination(SITE_LAT, SITE_LON, bearing, distance_m)
    return [
        odid.encode_basic_id("1581F5FKD229400H"),
        odid.encode_location(lat, lon, alt_geo=150.0, height=90.0, timestamp=100.0),
        odid.encode_operator_id("VNM-OP-0042"),
    ]


@functools.cache
def reference():
    cfg = load_config(REFERENCE).config
    return cfg.drone_detectors[0], cfg.site


class Sink:
    def __init__(self):
        self.data = bytearray()

    def write(self, b: bytes) -> int:
        self.data += b
        return len(b)

    def lines(self) -> list[bytes]:
        return [line + b"\n" for line in bytes(self.data).split(b"\n")[:-1]]

    def messages(self) -> list[p.Message]:
        return [p.parse_line(line) for line in self.lines()]


def new_node(**kw):
    sink = Sink()
    n = fw_node.Node(sink.write, caps=("ble4", "rf24", "rf58"), **kw)
    return n, sink


def deliver(n, addr: bytes, rssi: int, data: bytes) -> None:
    """Play one advertisement into the node's IRQ handler as the radio does (the buffers are
    overwritten right after the call)."""
    ble = bluetooth.BLE()
    ble.irq(n.ble_irq)
    ble.deliver(addr, rssi, data)


# ---------------------------------------------------------------- the encoders agree

json_scalars = (
    st.none()
    | st.booleans()
    | st.integers(-(2**63), 2**63)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=30)
)
json_values = st.recursive(
    json_scalars,
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=6), inner, max_size=4)
    ),
    max_leaves=12,
)


@given(st.dictionaries(st.text(max_size=10), json_values, max_size=8))
def test_firmware_encoder_writes_the_same_bytes_as_the_controller(obj):
    try:
        expected = p.encode_line(obj)
    except ValueError:
        with pytest.raises(ValueError):
            lineproto.encode(obj)
        return
    assert lineproto.encode(obj) == expected
    assert lineproto.encode(list(obj.items())) == expected


def test_firmware_encoder_on_protocol_messages():
    msgs = [
        p.Hello(0, "og-rid 0.1.0", ("ble4", "rf24")),
        p.Heartbeat(65535, 12, 4000, 0),
        p.Rid(3, "ble4", "60:60:1f:aa:bb:01", -77, odid.encode_basic_id("X")),
        p.Err(9, 'ble init: [Errno 19] "ENODEV"\n\u00e9'),
    ]
    for m in msgs:
        assert lineproto.encode(p.to_dict(m)) == p.encode_line(m)
        assert p.parse_line(lineproto.encode(p.to_dict(m))) == m


@given(st.binary(max_size=300))
def test_firmware_soft_crc_matches_zlib(data):
    assert lineproto._crc32_soft(data) == zlib.crc32(data)


def test_firmware_encoder_refuses_what_json_cannot_hold():
    with pytest.raises(ValueError):
        lineproto.encode({"x": float("nan")})
    with pytest.raises(ValueError):
        lineproto.encode({"x": b"bytes"})
    with pytest.raises(ValueError):
        lineproto.encode({"msg": "x" * 1100})


# ---------------------------------------------------------------- BLE Remote ID


def test_ble4_adverts_become_rid_lines_the_controller_turns_into_one_drone():
    n, sink = new_node()
    n.start(1000)
    for i, msg in enumerate(drone_messages()):
        deliver(n, ADDR, -68, ble4_adv(msg, counter=i))
    n.poll(1010)
    msgs = sink.messages()
    assert isinstance(msgs[0], p.Hello) and msgs[0].caps == ("ble4", "rf24", "rf58")
    rids = [m for m in msgs if isinstance(m, p.Rid)]
    assert len(rids) == 3
    assert all(r.tr == "ble4" and r.mac == "60:60:1f:aa:bb:01" and r.rssi == -68 for r in rids)
    assert [odid.decode(r.payload).TYPE for r in rids] == ["basic_id", "location", "operator_id"]
    assert [m.seq for m in msgs] == list(range(len(msgs)))

    det, site = reference()
    mon = DetectorMonitor(det, site)
    events = []
    for k, line in enumerate(sink.lines()):
        events += mon.feed_line(line, T0 + timedelta(milliseconds=100 * k))
    assert mon.status()["lines_bad"] == 0 and mon.status()["lines_ok"] == 4
    drones = [e for e in events if e.kind == "drone"]
    assert drones[0].detail["uas_id"] == "1581F5FKD229400H"
    last = drones[-1].detail
    assert last["operator_id"] == "VNM-OP-0042" or mon.retained_tracks()
    state = next(iter(mon.retained_tracks().values()))
    assert state["operator_id"] == "VNM-OP-0042"
    assert abs(state["distance_m"] - 200.0) < 3.0


def test_ble5_pack_is_forwarded_whole_and_marked_ble5():
    n, sink = new_node()
    n.start(0)
    pack = odid.encode_message_pack(drone_messages())
    deliver(n, ADDR, -80, ble5_adv(pack))
    n.poll(5)
    (rid,) = [m for m in sink.messages() if isinstance(m, p.Rid)]
    assert rid.tr == "ble5" and rid.payload == pack
    det, site = reference()
    mon = DetectorMonitor(det, site)
    (ev,) = mon.feed_line(sink.lines()[-1], T0)
    assert ev.kind == "drone" and ev.detail["operator_id"] == "VNM-OP-0042"
    assert abs(ev.detail["distance_m"] - 200.0) < 3.0


def test_repeats_are_held_back_for_a_second_unless_the_message_changes():
    n, sink = new_node()
    n.start(0)
    basic = drone_messages()[0]
    for t in range(0, 1000, 100):  # the same Basic ID ten times in a second, counter moving
        deliver(n, ADDR, -70, ble4_adv(basic, counter=t // 100))
        n.poll(t)
    assert sum(isinstance(m, p.Rid) for m in sink.messages()) == 1
    deliver(n, ADDR, -70, ble4_adv(basic))
    n.poll(1000)
    assert sum(isinstance(m, p.Rid) for m in sink.messages()) == 2
    # a new position is sent at once, and a second drone is not held back by the first
    deliver(n, ADDR, -70, ble4_adv(drone_messages(210)[1]))
    deliver(n, ADDR, -70, ble4_adv(drone_messages(220)[1]))
    deliver(n, bytes.fromhex("60601faabb02"), -70, ble4_adv(basic))
    n.poll(1100)
    assert sum(isinstance(m, p.Rid) for m in sink.messages()) == 5
    assert n.dedup.suppressed == 9


def test_other_adverts_are_counted_but_not_forwarded():
    n, sink = new_node()
    n.start(0)
    ibeacon = bytes.fromhex("0201061aff4c000215") + bytes(21)
    name = b"\x02\x01\x06\x08\x09Phone 1"
    wrong_app = bytes([30, 0x16, 0xFA, 0xFF, 0x0C, 0]) + drone_messages()[0]
    short = bytes([10, 0x16, 0xFA, 0xFF, 0x0D, 0]) + bytes(5)
    overrun = bytes([40, 0x16, 0xFA, 0xFF, 0x0D, 0]) + drone_messages()[0]
    for data in (ibeacon, name, wrong_app, short, overrun, b"", b"\x00\x00"):
        deliver(n, ADDR, -50, data)
    n.poll(10)
    assert not any(isinstance(m, p.Rid) for m in sink.messages())
    assert n.ring.seen == 7 and n.ring.head == n.ring.tail
    assert ble_rid.walk_ad(name) == [(0x01, 2, 3), (0x09, 5, 12)]


def test_a_full_ring_drops_and_the_heartbeat_says_so():
    n, sink = new_node(ring_slots=4)
    n.start(0)
    for i in range(6):
        deliver(n, ADDR, -50, ble4_adv(drone_messages(200 + 10 * i)[1]))
    n.poll(4999)
    assert sum(isinstance(m, p.Rid) for m in sink.messages()) == 3  # 4 slots hold 3
    n.poll(5000)
    hb = sink.messages()[-1]
    assert isinstance(hb, p.Heartbeat) and hb.adv == 6 and hb.drop == 3 and hb.up == 5


# ---------------------------------------------------------------- heartbeat, faults


def test_heartbeat_every_5_s_across_the_ticks_wrap():
    n, sink = new_node()
    start = ticks.PERIOD - 7000  # the millisecond counter wraps 7 s after boot
    n.start(start)
    for ms in range(0, 21001, 20):
        n.poll(ticks.ticks_add(start, ms))
    hbs = [m for m in sink.messages() if isinstance(m, p.Heartbeat)]
    assert [h.up for h in hbs] == [5, 10, 15, 20]


def test_a_late_loop_sends_one_heartbeat_not_a_burst():
    n, sink = new_node()
    n.start(0)
    n.poll(60_000)
    n.poll(60_100)
    assert sum(isinstance(m, p.Heartbeat) for m in sink.messages()) == 1


def test_faults_are_sent_once_then_with_every_heartbeat_until_cleared():
    n, sink = new_node()
    n.start(0)
    n.fault("adc 5g8")
    n.fault("adc 5g8")
    assert [m.msg for m in sink.messages() if isinstance(m, p.Err)] == ["adc 5g8"]
    n.poll(5000)
    n.clear_fault("adc 5g8")
    n.poll(10000)
    errs = [m for m in sink.messages() if isinstance(m, p.Err)]
    assert len(errs) == 2
    # and the controller makes one trouble and restores it when the repeats stop
    det, site = reference()
    mon = DetectorMonitor(det, site)
    events = []
    for k, line in enumerate(sink.lines()):
        events += mon.feed_line(line, T0 + timedelta(seconds=k * 5))
    assert mon.next_due() == T0 + timedelta(seconds=30)  # last err at 15 s, + 15 s
    events += mon.tick(mon.next_due())  # 15 s after the last repeat, before any silence
    assert [e.cid for e in events] == ["E144", "R144"]


def test_a_uart_error_does_not_stop_the_node():
    def broken(_b):
        raise OSError(5, "EIO")

    n = fw_node.Node(broken)
    n.start(0)
    n.poll(5000)
    assert n.write_errors == 2 and n.seq == 2


# ---------------------------------------------------------------- RF energy


def test_ad8318_model():
    assert rf_energy.ad8318_dbm(1960.0) == pytest.approx(-60.0)
    assert rf_energy.ad8318_dbm(490.0) == pytest.approx(0.0)


def run_band(det, samples, start=0, step=20):
    out = []
    for i, dbm in enumerate(samples):
        for fields in det.sample(dbm, ticks.ticks_add(start, i * step)):
            out.append(fields)
    return out


def test_rf_band_calibrates_then_start_upd_end():
    det = rf_energy.BandDetector("5g8", dwell=3, release=10, calib_samples=100, upd_ms=1000)
    quiet = [-80.0 + (i % 3) * 0.5 for i in range(100)]
    assert run_band(det, quiet) == [] and det.calibrated
    assert det.floor == pytest.approx(-79.5, abs=0.5)
    # a drone video link: 3 s over the threshold, then gone
    burst = [-52.0] * 150 + [-80.0] * 20
    events = run_band(det, burst, start=2000)
    kinds = [dict(f)["ev"] for f in events]
    assert kinds == ["start", "upd", "upd", "end"]
    start = dict(events[0])
    assert start["peak_dbm"] == -52 and start["floor_dbm"] == -80 and start["dur_ms"] == 40
    end = dict(events[-1])
    assert end["dur_ms"] == 149 * 20 and end["id"] == start["id"] == 0
    # every one of them is a valid protocol line
    n, sink = new_node()
    for f in events:
        n.send("rf", f)
    rfs = sink.messages()
    assert [m.ev for m in rfs] == kinds and all(m.band == "5g8" for m in rfs)


def test_rf_blips_shorter_than_the_dwell_are_ignored_and_the_floor_follows_drift():
    det = rf_energy.BandDetector("2g4", dwell=3, calib_samples=10, floor_weight=0.1)
    run_band(det, [-85.0] * 10)
    assert run_band(det, [-60.0, -60.0, -85.0] * 20) == []
    run_band(det, [-78.0] * 100)
    assert det.floor == pytest.approx(-78.0, abs=0.2)
    assert det.detections == 0


def test_rf_fixed_floor_needs_no_calibration():
    det = rf_energy.BandDetector("2g4", floor_dbm=-90.0, dwell=1)
    assert det.calibrated
    (ev,) = det.sample(-70.0, 0)
    assert dict(ev)["ev"] == "start" and dict(ev)["floor_dbm"] == -90


# ---------------------------------------------------------------- main.py on stub hardware


class FakeTime:
    def __init__(self, start=123_456):
        self.t = start
        self.hooks: dict[int, list] = {}

    def now(self) -> int:
        return self.t

    def sleep(self, ms: int) -> None:
        before = self.t
        self.t = ticks.ticks_add(self.t, ms)
        for at in sorted(self.hooks):
            if before < at <= self.t:
                for fn in self.hooks.pop(at):
                    fn()


@pytest.fixture
def stub_hw():
    machine.ADC.sources.clear()
    machine.Pin.levels.clear()
    machine.UART.instances.clear()
    machine.WDT.instances.clear()
    yield
    machine.ADC.sources.clear()
    machine.Pin.levels.clear()


def test_main_loop_on_stub_hardware(stub_hw):
    clock = FakeTime()
    level = {"uv": 2_450_000}  # about -80 dBm on both bands
    machine.ADC.sources[34] = lambda: level["uv"]
    machine.ADC.sources[35] = lambda: 2_450_000

    def drone_on():
        level["uv"] = 1_800_000  # -53.5 dBm on 2.4 GHz

    def adverts():
        for msg in drone_messages():
            det.ble.deliver(ADDR, -71, ble4_adv(msg))

    det = fw_main.Detector()
    clock.hooks[123_456 + 3000] = [adverts, drone_on]
    clock.hooks[123_456 + 4000] = [det.ble.scan_done]
    fw_main.run(det, loops=300, now_ms=clock.now, sleep=clock.sleep)

    uart = machine.UART.instances[-1]
    assert (uart.id, uart.baudrate, uart.tx) == (2, 115200, 17)
    assert machine.WDT.instances[-1].feeds == 300
    assert det.ble.scans == [(0, 30000, 30000, False)] * 2  # restarted after scan done
    msgs = [p.parse_line(line) for line in uart.lines()]
    assert isinstance(msgs[0], p.Hello) and msgs[0].caps == ("ble4", "rf24", "rf58")
    kinds = [m.T for m in msgs]
    assert kinds.count("hb") == 1 and kinds.count("rid") == 3
    rfs = [m for m in msgs if isinstance(m, p.Rf)]
    assert rfs[0].band == "2g4" and rfs[0].ev == "start"
    assert rfs[0].peak_dbm == pytest.approx(-53, abs=1) and rfs[0].floor_dbm == -80
    assert "err" not in kinds

    det_cfg, site = reference()
    mon = DetectorMonitor(det_cfg, site)
    events = []
    for k, line in enumerate(uart.lines()):
        events += mon.feed_line(line, T0 + timedelta(milliseconds=20 * k))
    assert mon.status()["lines_bad"] == 0 and mon.status()["seq_gaps"] == 0
    unidentified = [e for e in events if e.kind == "drone" and e.detail["unidentified"]]
    identified = [e for e in events if e.kind == "drone" and not e.detail["unidentified"]]
    assert len(unidentified) >= 1 and identified


def test_main_reports_a_missing_radio_and_a_failing_adc(stub_hw):
    clock = FakeTime(0)

    def broken():
        raise OSError(116, "ETIMEDOUT")

    machine.ADC.sources[35] = broken
    det = fw_main.Detector()
    det.ble.fail_active = True
    fw_main.run(det, loops=260, now_ms=clock.now, sleep=clock.sleep)
    msgs = [p.parse_line(line) for line in machine.UART.instances[-1].lines()]
    errs = [m.msg for m in msgs if isinstance(m, p.Err)]
    assert errs[0].startswith("ble init:") and "adc 5g8" in errs
    assert errs.count("adc 5g8") == 2  # once, then again with the heartbeat
    assert any(isinstance(m, p.Heartbeat) for m in msgs)


def test_safe_mode_does_not_start(stub_hw):
    machine.Pin.levels[fw_settings.SAFE_MODE_PIN] = 0
    assert fw_main.run(loops=1) is None
    assert machine.WDT.instances == []


def test_readme_example_lines_are_valid():
    import re

    text = (FW / "README.md").read_text(encoding="utf-8")
    lines = re.findall(r'^\{"v".*$', text, re.M)
    assert len(lines) == 4
    assert [p.parse_line(line.encode()).T for line in lines] == ["hello", "rid", "rf", "hb"]
