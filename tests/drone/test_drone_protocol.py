"""Detector serial line protocol: framing, CRC, field checks, seq gaps, fuzzing."""

from __future__ import annotations

import json
import zlib

import pytest
from hypothesis import given
from hypothesis import strategies as st

from controller.drone import protocol as p


def line(obj: dict, crc: int | None = None) -> bytes:
    body = json.dumps(obj, separators=(",", ":")).encode()
    c = zlib.crc32(body) if crc is None else crc
    return body + b"*" + f"{c:08x}".encode() + b"\n"


HB = {"v": 1, "t": "hb", "seq": 7, "up": 35, "adv": 1200, "drop": 3}
RID = {"v": 1, "t": "rid", "seq": 8, "tr": "ble4", "mac": "60:60:1F:AA:BB:CC", "rssi": -71,
       "hex": "02123135393646333530343537303030303030303031000000"}  # fmt: skip
RF = {"v": 1, "t": "rf", "seq": 9, "band": "5g8", "ev": "start", "id": 4, "peak_dbm": -48,
      "floor_dbm": -71.5, "dur_ms": 150}  # fmt: skip


def test_each_message_type_parses():
    hello = p.parse_line(line({"v": 1, "t": "hello", "seq": 0, "fw": "1.0", "caps": ["ble4"]}))
    assert hello == p.Hello(0, "1.0", ("ble4",))
    assert p.parse_line(line(HB)) == p.Heartbeat(7, 35, 1200, 3)
    rid = p.parse_line(line(RID))
    assert isinstance(rid, p.Rid)
    assert rid.mac == "60:60:1f:aa:bb:cc" and rid.rssi == -71 and len(rid.payload) == 25
    assert rid.hex == RID["hex"]
    rf = p.parse_line(line(RF))
    assert rf == p.Rf(9, "5g8", "start", 4, -48.0, -71.5, 150)
    assert p.parse_line(line({"v": 1, "t": "err", "seq": 1, "msg": "adc"})) == p.Err(1, "adc")


def test_line_ends_are_optional():
    body = line(HB)
    assert p.parse_line(body[:-1]) == p.parse_line(body)
    assert p.parse_line(body[:-1] + b"\r\n") == p.parse_line(body)


def test_unknown_extra_fields_are_ignored():
    assert p.parse_line(line({**HB, "temp": 41})) == p.Heartbeat(7, 35, 1200, 3)


def test_star_inside_json_string_uses_the_last_star():
    msg = p.parse_line(line({"v": 1, "t": "err", "seq": 2, "msg": "a*b*c"}))
    assert msg == p.Err(2, "a*b*c")


@pytest.mark.parametrize(
    ("raw", "reason"),
    [
        (b"", "empty"),
        (b"\n", "empty"),
        (b"\r\n", "empty"),
        (b"{}", "bad_frame"),
        (b'{"v":1}*1234567', "bad_frame"),
        (b'{"v":1}*123456789', "bad_frame"),
        (b'{"v":1}*ABCDEF01', "bad_frame"),  # upper case hex is not the protocol
        (line(HB, crc=0), "bad_crc"),
        (p.frame(b"{not json"), "bad_json"),
        (p.frame(b"[1,2]"), "bad_json"),
        (p.frame(b"\xff\xfe"), "bad_json"),
        (p.frame(b'{"v":1,"t":"hb","seq":1,"up":NaN,"adv":0,"drop":0}'), "bad_json"),
        (line({**HB, "v": 2}), "bad_version"),
        (line({**HB, "v": True}), "bad_version"),
        (line({**HB, "v": "1"}), "bad_version"),
        (line({"t": "hb", "seq": 1}), "bad_version"),
        (line({**HB, "t": "bye"}), "bad_type"),
        (line({**HB, "t": 5}), "bad_type"),
        (line({k: v for k, v in HB.items() if k != "seq"}), "bad_field"),
        (line({**HB, "seq": 65536}), "bad_field"),
        (line({**HB, "seq": -1}), "bad_field"),
        (line({**HB, "seq": 1.0}), "bad_field"),
        (line({**HB, "up": True}), "bad_field"),
        (line({**RID, "tr": "lora"}), "bad_field"),
        (line({**RID, "mac": "60601faabbcc"}), "bad_field"),
        (line({**RID, "hex": "abc"}), "bad_field"),
        (line({**RID, "hex": ""}), "bad_field"),
        (line({**RID, "hex": "zz"}), "bad_field"),
        (line({**RID, "rssi": -300}), "bad_field"),
        (line({**RF, "band": "900"}), "bad_field"),
        (line({**RF, "ev": "stop"}), "bad_field"),
        (line({**RF, "peak_dbm": "loud"}), "bad_field"),
        (line({k: v for k, v in RF.items() if k != "dur_ms"}), "bad_field"),
        (line({"v": 1, "t": "hello", "seq": 0, "fw": "1", "caps": "ble4"}), "bad_field"),
        (line({"v": 1, "t": "hello", "seq": 0, "fw": "1", "caps": [1]}), "bad_field"),
        (line({"v": 1, "t": "err", "seq": 0, "msg": "x" * 201}), "bad_field"),
        (line({"v": 1, "t": "err", "seq": 0}), "bad_field"),
    ],
)
def test_bad_lines_have_a_reason(raw, reason):
    with pytest.raises(p.ProtocolError) as info:
        p.parse_line(raw)
    assert info.value.reason == reason
    assert reason in p.REASONS


def test_length_limit_is_1024_bytes_without_the_line_end():
    filler = "x" * 1000
    obj = {"v": 1, "t": "err", "seq": 0, "msg": ""}
    base = len(line(obj)) - 1
    obj_max = {**obj, "pad": filler[: 1024 - base - len(',"pad":""')]}
    exact = line(obj_max)
    assert len(exact) - 1 == 1024
    assert isinstance(p.parse_line(exact), p.Err)
    over = line({**obj_max, "pad": obj_max["pad"] + "x"})
    with pytest.raises(p.ProtocolError) as info:
        p.parse_line(over)
    assert info.value.reason == "too_long"


def test_encode_line_is_compact_ascii_and_parses_back():
    msg = p.Rf(65535, "2g4", "end", 12, -40.0, -80.0, 2500)
    raw = p.encode_line(msg)
    assert raw.endswith(b"\n") and raw.count(b"\n") == 1
    assert b" " not in raw
    assert p.parse_line(raw) == msg
    err = p.encode_line(p.Err(3, "lỗi ADC"))
    assert err.isascii() and p.parse_line(err) == p.Err(3, "lỗi ADC")
    assert p.encode_line(dict(HB)) == line(HB)


def test_encode_line_refuses_too_long_and_non_json():
    with pytest.raises(ValueError, match="limit"):
        p.encode_line({"v": 1, "t": "err", "seq": 0, "msg": "x" * 2000})
    with pytest.raises(ValueError):
        p.encode_line({"v": 1, "x": float("nan")})
    with pytest.raises(ValueError):
        p.encode_line({"v": 1, "x": object()})


def test_ensure_framed_adds_or_keeps_the_crc():
    bare = '{"v":1,"t":"hb","seq":1,"up":1,"adv":0,"drop":0}'
    framed = p.ensure_framed(bare)
    assert p.parse_line(framed) == p.Heartbeat(1, 1, 0, 0)
    wrong = bare + "*00000000"
    assert p.ensure_framed(wrong) == wrong.encode() + b"\n"
    with pytest.raises(p.ProtocolError):
        p.parse_line(p.ensure_framed(wrong))


def test_seq_counter_gaps_wrap_and_restart():
    c = p.SeqCounter()
    assert c.observe(p.Heartbeat(65534, 0, 0, 0)) == 0
    assert c.observe(p.Heartbeat(65535, 0, 0, 0)) == 0
    assert c.observe(p.Heartbeat(0, 0, 0, 0)) == 0  # wraps without a gap
    assert c.observe(p.Heartbeat(4, 0, 0, 0)) == 3  # 1, 2, 3 lost
    assert (c.gaps, c.lost) == (1, 3)
    assert c.observe(p.Hello(0, "1", ())) == 0  # a restart is no gap
    assert c.observe(p.Heartbeat(1, 0, 0, 0)) == 0
    assert c.observe(p.Heartbeat(1, 0, 0, 0)) == 0  # repeated line
    assert c.resets == 1 and c.gaps == 1
    assert c.observe(p.Heartbeat(65535, 0, 0, 0)) == 0  # far jump back counts as a reset
    assert c.resets == 2


# ---------------------------------------------------------------- fuzzing

GOOD_LINES = [
    line(HB),
    line(RID),
    line(RF),
    line({"v": 1, "t": "hello", "seq": 0, "fw": "0.3", "caps": ["ble4", "rf24"]}),
    line({"v": 1, "t": "err", "seq": 5, "msg": "ble scan stopped"}),
]


def _parse_or_reason(raw: bytes) -> str:
    try:
        p.parse_line(raw)
    except p.ProtocolError as e:
        assert e.reason in p.REASONS
        return e.reason
    return "ok"


@given(st.binary(max_size=1200))
def test_random_bytes_raise_only_protocol_errors(raw):
    _parse_or_reason(raw)


@given(
    st.sampled_from(GOOD_LINES),
    st.lists(st.tuples(st.integers(0, 2000), st.integers(0, 255)), min_size=1, max_size=8),
)
def test_mutated_lines_raise_only_protocol_errors(good, edits):
    raw = bytearray(good)
    for pos, value in edits:
        if raw:
            raw[pos % len(raw)] = value
    _parse_or_reason(bytes(raw))


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=20,
)


@given(st.dictionaries(st.sampled_from(["v", "t", "seq", "fw", "caps", "up", "adv", "drop", "tr",
                                        "mac", "rssi", "hex", "band", "ev", "id", "peak_dbm",
                                        "floor_dbm", "dur_ms", "msg"]),
                       json_values, max_size=10))  # fmt: skip
def test_random_objects_with_a_valid_crc_raise_only_protocol_errors(obj):
    try:
        raw = p.encode_line(obj)
    except ValueError:
        return
    _parse_or_reason(raw)


@given(st.sampled_from(GOOD_LINES), st.integers(0, 2**32 - 1))
def test_any_other_crc_is_refused(good, crc):
    body = good[: good.rindex(b"*")]
    if crc == zlib.crc32(body):
        return
    assert _parse_or_reason(body + b"*" + f"{crc:08x}".encode()) == "bad_crc"


def test_a_str_line_is_taken_as_utf8():
    assert p.parse_line(line(HB).decode()) == p.Heartbeat(7, 35, 1200, 3)
    with pytest.raises(p.ProtocolError):
        p.parse_line("\udcff not a line")
