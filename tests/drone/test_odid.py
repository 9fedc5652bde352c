"""Open Drone ID decoder: external vectors, encoder agreement, sentinels, robustness.

Where the vectors come from (column 2 of tests/data/odid.tsv, its header and tests/data/README.md):
- "core-c": bytes produced by the encode functions of opendroneid/opendroneid-core-c
  (Apache-2.0), the reference implementation of ASTM F3411 / ASD-STAN EN 4709-002;
  LOC_a, LOC_init, BASIC, SYSTEM, OPID and SELFID.
- "wireshark-bcn": the message pack in the Wi-Fi beacon vendor element (OUI FA:0B:BC,
  type 0x0D) of odid_wifi_bcn_sample.pcap in opendroneid/wireshark-dissector (Apache-2.0),
  protocol version 0; PACK_bcn.
The expected fields in the file are what the reference implementation decodes; they win over
anything this project believes.
"""

from __future__ import annotations

import math

import pytest
from hypothesis import given
from hypothesis import strategies as st

from controller.drone import odid
from tests.conftest import DATA

VECTORS = DATA / "odid.tsv"
KNOWN_SOURCES = {"core-c", "wireshark-bcn"}


def _load_vectors() -> list[tuple[str, str, bytes, str]]:
    rows = []
    for line in VECTORS.read_text(encoding="utf-8").splitlines():
        if not line.strip() or line.startswith("#"):
            continue
        name, source, hexdata, expected = line.split("\t")
        rows.append((name, source, bytes.fromhex(hexdata), expected))
    return rows


VECTOR_ROWS = _load_vectors()


def _fields(text: str) -> dict[str, str]:
    out = {}
    for item in text.split():
        key, _, value = item.partition("=")
        out[key] = value
    return out


def _expected(text: str) -> tuple[dict[str, str], list[tuple[str, dict[str, str]]]]:
    """Top-level fields, and for a pack one (type, fields) per `; type: k=v ...` part."""
    head, *parts = text.split("; ")
    inner = []
    for part in parts:
        kind, _, rest = part.partition(": ")
        inner.append((kind, _fields(rest)))
    return _fields(head), inner


def _check(actual: dict[str, object], expected: dict[str, str], where: str) -> None:
    for key, want in expected.items():
        assert key in actual, f"{where}: no field {key}"
        got = actual[key]
        if want == "null":
            assert got is None, f"{where}.{key}: {got!r}, expected null"
        elif isinstance(got, str):
            assert got == want, f"{where}.{key}: {got!r}, expected {want!r}"
        else:
            assert isinstance(got, int | float), f"{where}.{key}: {got!r}, expected {want}"
            decimals = len(want.split(".")[1]) if "." in want else 0
            tol = 0.5 * 10**-decimals + 1e-9
            assert math.isclose(got, float(want), abs_tol=tol), f"{where}.{key}: {got} != {want}"


def test_vector_file_is_there_and_sourced():
    assert len(VECTOR_ROWS) >= 7
    assert {source for _, source, _, _ in VECTOR_ROWS} <= KNOWN_SOURCES


@pytest.mark.parametrize(
    ("name", "source", "data", "expected"),
    VECTOR_ROWS,
    ids=[f"{r[0]}[{r[1]}]" for r in VECTOR_ROWS],
)
def test_external_vector(name, source, data, expected):
    msg = odid.decode(data)
    top, inner = _expected(expected)
    actual = msg.to_dict()
    if inner:
        assert isinstance(msg, odid.MessagePack)
        assert msg.skipped == 0
        _check({k: v for k, v in actual.items() if k != "messages"}, top, name)
        by_type = {m.TYPE: m.to_dict() for m in msg.messages}
        assert len(by_type) == len(msg.messages) == msg.count
        for kind, fields in inner:
            assert kind in by_type, f"{name}: no {kind} in the pack"
            _check(by_type[kind], fields, f"{name}.{kind}")
    else:
        _check(actual, top, name)


def _vector(name: str) -> bytes:
    return next(data for n, _, data, _ in VECTOR_ROWS if n == name)


# ---------------------------------------------------------------- encoder agrees with core-c


def test_encoder_reproduces_core_c_location():
    data = odid.encode_location(
        45.539309,
        -122.966389,
        alt_baro=100.0,
        alt_geo=110.0,
        height=80.0,
        height_type="above_ground",
        status="airborne",
        direction=216,
        speed_h=5.5,
        speed_v=5.0,
        h_acc=11,
        v_acc=6,
        baro_acc=5,
        speed_acc=3,
        timestamp=360.5,
        ts_acc=2,
    )
    assert data == _vector("LOC_a")


def test_encoder_reproduces_core_c_invalid_location():
    data = odid.encode_location(None, None, status="undeclared", timestamp=0.0)
    assert data == _vector("LOC_init")


def test_encoder_reproduces_core_c_basic_system_operator_selfid():
    assert odid.encode_basic_id("1596F350457000000001") == _vector("BASIC")
    assert odid.encode_operator_id("FIN87astrdge12k8") == _vector("OPID")
    assert odid.encode_self_id("Survey") == _vector("SELFID")
    system = odid.encode_system(
        51.5,
        -0.12,
        operator_location_type="live_gnss",
        classification="eu",
        area_count=1,
        area_radius=0,
        eu_category="open",
        eu_class="class_1",
        operator_alt_geo=20.5,
        timestamp=28000000,
    )
    assert system == _vector("SYSTEM")


# ---------------------------------------------------------------- sentinels and scaling


def test_invalid_sentinels_become_none():
    loc = odid.decode(_vector("LOC_init"))
    assert isinstance(loc, odid.Location)
    assert loc.direction is None and loc.speed_h is None and loc.speed_v is None
    assert loc.lat is None and loc.lon is None and not loc.has_position
    assert loc.alt_baro is None and loc.alt_geo is None and loc.height is None


def test_timestamp_ffff_is_none_and_other_values_are_tenths():
    assert odid.decode(odid.encode_location(1.0, 2.0, timestamp=None)).timestamp is None
    raw = bytearray(odid.encode_location(1.0, 2.0))
    raw[21:23] = (0xFFFF).to_bytes(2, "little")
    assert odid.decode(bytes(raw)).timestamp is None
    raw[21:23] = (35999).to_bytes(2, "little")
    assert odid.decode(bytes(raw)).timestamp == 3599.9


def test_fast_speed_uses_the_multiplier():
    loc = odid.decode(odid.encode_location(1.0, 2.0, speed_h=100.0))
    assert loc.speed_h is not None and abs(loc.speed_h - 100.0) <= 0.375
    raw = odid.encode_location(1.0, 2.0, speed_h=100.0)
    assert raw[1] & 1 == 1  # speed multiplier flag set
    # the largest valid speed, just below the 255 m/s sentinel
    assert odid.decode(odid.encode_location(1.0, 2.0, speed_h=254.25)).speed_h == 254.25
    # 255 encoded with multiplier 0 is 63.75 m/s and valid
    raw2 = bytearray(odid.encode_location(1.0, 2.0, speed_h=63.75))
    assert raw2[3] == 255 and raw2[1] & 1 == 0
    assert odid.decode(bytes(raw2)).speed_h == 63.75


def test_direction_east_west_bit_and_361():
    assert odid.decode(odid.encode_location(1.0, 2.0, direction=179)).direction == 179
    assert odid.decode(odid.encode_location(1.0, 2.0, direction=180)).direction == 180
    assert odid.decode(odid.encode_location(1.0, 2.0, direction=359)).direction == 359
    assert odid.decode(odid.encode_location(1.0, 2.0, direction=None)).direction is None


def test_negative_vertical_speed_and_altitudes():
    loc = odid.decode(odid.encode_location(-33.0, 151.0, speed_v=-12.5, alt_geo=-50.0))
    assert loc.speed_v == -12.5
    assert loc.alt_geo == -50.0
    assert loc.lat == -33.0 and loc.lon == 151.0


def test_only_both_zero_lat_lon_is_invalid():
    loc = odid.decode(odid.encode_location(0.0, 105.5))
    assert loc.lat == 0.0 and loc.lon == 105.5


def test_out_of_range_latitude_is_treated_as_invalid():
    raw = bytearray(odid.encode_location(1.0, 2.0))
    raw[5:9] = (950_000_000).to_bytes(4, "little", signed=True)  # 95 degrees
    loc = odid.decode(bytes(raw))
    assert loc.lat is None and loc.lon is None


def test_accuracy_codes_to_metres():
    loc = odid.decode(_vector("LOC_a"))
    assert loc.h_acc_m == 3.0  # code 11: < 3 m
    assert loc.v_acc_m == 1.0  # code 6: < 1 m


def test_system_timestamp_epoch_and_eu_fields_only_for_eu():
    sysm = odid.decode(_vector("SYSTEM"))
    assert isinstance(sysm, odid.System)
    assert sysm.time is not None and sysm.time.year == 2019 and sysm.time.month == 11
    plain = odid.decode(
        odid.encode_system(10.0, 20.0, classification="undeclared", eu_category="open")
    )
    assert plain.eu_category == "undeclared" and plain.eu_class == "undeclared"
    assert plain.time is None


def test_auth_pages():
    p0 = odid.decode(
        odid.encode_auth_page(
            0, b"\x01" * 17, auth_type="message_set_signature", last_page=2, length=63, timestamp=5
        )
    )
    assert isinstance(p0, odid.Auth)
    assert (p0.page, p0.last_page, p0.length, p0.timestamp) == (0, 2, 63, 5)
    assert p0.auth_type == "message_set_signature" and p0.data == b"\x01" * 17
    p2 = odid.decode(odid.encode_auth_page(2, b"\x02" * 23))
    assert (p2.page, p2.last_page, p2.data) == (2, None, b"\x02" * 23)
    private = bytearray(odid.encode_auth_page(1, b""))
    private[1] = 0xB1
    assert odid.decode(bytes(private)).auth_type == "private_use"


def test_self_id_types_and_unprintable_text():
    emergency = odid.decode(odid.encode_self_id("MAYDAY", description_type=1))
    assert emergency.description_type == "emergency"
    raw = bytearray(odid.encode_self_id("ab"))
    raw[4] = 0x07  # a bell character after "ab"
    raw[5] = 0x63
    assert odid.decode(bytes(raw)).description == "ab?c"
    priv = bytearray(odid.encode_self_id("x"))
    priv[1] = 205
    assert odid.decode(bytes(priv)).description_type == "private_use"


def test_reserved_enum_values_are_named_not_refused():
    raw = bytearray(odid.encode_basic_id("X"))
    raw[1] = 0x72  # id type 7 (reserved)
    msg = odid.decode(bytes(raw))
    assert msg.id_type == "reserved_7" and msg.id_type_code == 7
    loc = bytearray(odid.encode_location(1.0, 1.0))
    loc[1] = (loc[1] & 0x0F) | 0x90  # status 9
    assert odid.decode(bytes(loc)).status == "reserved_9"


@pytest.mark.parametrize("version", [0, 1, 2, 3, 15])
def test_protocol_versions_0_to_2_and_higher_decode(version):
    data = odid.encode_location(22.5, 104.0, alt_geo=120.0, version=version)
    loc = odid.decode(data)
    assert loc.version == version and loc.lat == 22.5 and loc.alt_geo == 120.0
    pack = odid.decode(odid.encode_message_pack([odid.encode_basic_id("ABC")], version=version))
    assert pack.version == version and pack.messages[0].uas_id == "ABC"


# ---------------------------------------------------------------- packs and bad input


def test_pack_round_trip_and_messages_of():
    members = [
        odid.encode_basic_id("SN1"),
        odid.encode_location(22.0, 104.0),
        odid.encode_operator_id("VNM-OP-1"),
    ]
    pack = odid.decode(odid.encode_message_pack(members))
    assert isinstance(pack, odid.MessagePack) and pack.count == 3
    assert [m.TYPE for m in odid.messages_of(pack)] == ["basic_id", "location", "operator_id"]
    single = odid.decode(members[0])
    assert odid.messages_of(single) == (single,)


def test_pack_skips_reserved_and_nested_members():
    good = odid.encode_basic_id("SN1")
    reserved = bytes([0x72]) + bytes(24)
    nested = bytes([0xF2, 25, 0]) + bytes(22)
    data = bytes([0xF2, 25, 3]) + good + reserved + nested
    pack = odid.decode(data)
    assert pack.count == 3 and pack.skipped == 2 and len(pack.messages) == 1


@pytest.mark.parametrize(
    ("data", "why"),
    [
        (b"", "no data"),
        (bytes(24), "24 bytes"),
        (bytes([0x62]) + bytes(24), "reserved"),
        (bytes([0xF2, 25]), "header"),
        (bytes([0xF2, 24, 1]) + bytes(25), "24-byte"),
        (bytes([0xF2, 25, 10]) + bytes(250), "10 messages"),
        (bytes([0xF2, 25, 2]) + bytes(30), "cut short"),
    ],
)
def test_undecodable_input_raises_odid_error(data, why):
    with pytest.raises(odid.OdidError, match=why):
        odid.decode(data)


def test_encoder_refuses_bad_values():
    with pytest.raises(ValueError):
        odid.encode_basic_id("X" * 21)
    with pytest.raises(ValueError):
        odid.encode_location(91.0, 0.0)
    with pytest.raises(ValueError):
        odid.encode_message_pack([])
    with pytest.raises(ValueError):
        odid.encode_basic_id("X", id_type="passport")


@given(st.binary(max_size=300))
def test_decode_random_bytes_raises_only_odid_error(data):
    try:
        msg = odid.decode(data)
    except odid.OdidError:
        return
    msg.to_dict()  # whatever decodes can be shown


@given(st.binary(min_size=3, max_size=228))
def test_decode_random_packs_raises_only_odid_error(body):
    data = bytes([0xF2]) + body
    try:
        pack = odid.decode(data)
    except odid.OdidError:
        return
    assert isinstance(pack, odid.MessagePack)
    assert len(pack.messages) + pack.skipped == pack.count <= odid.MAX_PACK_MESSAGES


@given(
    lat=st.floats(-89.9, 89.9),
    lon=st.floats(-179.9, 179.9),
    alt=st.floats(-999.0, 31000.0),
    speed=st.floats(0.0, 254.0),
    vspeed=st.floats(-62.0, 62.0),
    direction=st.integers(0, 359),
    ts=st.floats(0.0, 3600.0),
)
def test_location_round_trip_within_one_step(lat, lon, alt, speed, vspeed, direction, ts):
    loc = odid.decode(
        odid.encode_location(
            lat,
            lon,
            alt_geo=alt,
            height=alt,
            speed_h=speed,
            speed_v=vspeed,
            direction=direction,
            timestamp=ts,
        )
    )
    if round(lat * 1e7) == 0 and round(lon * 1e7) == 0:
        assert loc.lat is None  # 0/0 is the "no position" sentinel
    else:
        assert abs(loc.lat - lat) <= 1e-7 and abs(loc.lon - lon) <= 1e-7
    assert loc.alt_geo is None or abs(loc.alt_geo - alt) <= 0.25
    assert loc.speed_h is not None and abs(loc.speed_h - speed) <= 0.375
    assert loc.speed_v is not None and abs(loc.speed_v - vspeed) <= 0.25
    assert loc.direction == direction
    # one 0.1 s step rounds half a step at most (1e-9: 0.8 - 0.75 is 0.05000000000000004)
    assert loc.timestamp is not None and abs(loc.timestamp - ts) <= 0.05 + 1e-9
