"""Open Drone ID: the Remote ID broadcast every drone must send, decoded into plain values.

Drones flying in most countries broadcast who they are and where they are (ASTM F3411-22a,
ASD-STAN EN 4709-002, the "Open Drone ID" format) over Bluetooth or Wi-Fi. Each broadcast is a
25-byte message, or a "message pack" of several of them:

| type | message      | what it tells                                                     |
|------|--------------|-------------------------------------------------------------------|
| 0x0  | Basic ID     | serial number / registration of the drone, and what kind it is    |
| 0x1  | Location     | position, altitude, height, speed, heading, and their accuracy    |
| 0x2  | Authentication | a page of a signature over the other messages                   |
| 0x3  | Self-ID      | free text from the pilot ("Survey", "Recreational")              |
| 0x4  | System       | where the pilot stands, the operating area, the EU class          |
| 0x5  | Operator ID  | the pilot's registration number                                   |
| 0xF  | Message Pack | up to 9 of the above in one broadcast                             |

Byte 0 of every message holds the type (high nibble) and the protocol version (low nibble:
0 = F3411-19, 1 = F3411-20, 2 = F3411-22a; higher versions are decoded with the newest layout).
Fields are little-endian. Values the drone does not know are sent as "invalid" sentinels, which
become None here: direction 361, horizontal speed 255 m/s, vertical speed 63 m/s, altitude or
height -1000 m, latitude and longitude 0/0, location timestamp 0xFFFF.

`decode(data)` returns one message object (a `MessagePack` holds its messages) or raises
`OdidError`. The `encode_*` functions build messages the same way opendroneid-core-c does, for
tests and the simulator (a drone 200 m from the office, for instance).
"""

from __future__ import annotations

import math
import struct
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, ClassVar

from controller.errors import OfficeGuardError

MESSAGE_SIZE = 25
MAX_PACK_MESSAGES = 9
NEWEST_VERSION = 2

TYPE_BASIC_ID = 0x0
TYPE_LOCATION = 0x1
TYPE_AUTH = 0x2
TYPE_SELF_ID = 0x3
TYPE_SYSTEM = 0x4
TYPE_OPERATOR_ID = 0x5
TYPE_PACK = 0xF

ID_TYPES = (
    "none",
    "serial_number",  # ANSI/CTA-2063-A physical serial number
    "caa_registration",  # registration id issued by a civil aviation authority
    "utm_assigned_uuid",
    "specific_session_id",
)
UA_TYPES = (
    "none",
    "aeroplane",
    "helicopter_or_multirotor",
    "gyroplane",
    "hybrid_lift",
    "ornithopter",
    "glider",
    "kite",
    "free_balloon",
    "captive_balloon",
    "airship",
    "free_fall_parachute",
    "rocket",
    "tethered_powered_aircraft",
    "ground_obstacle",
    "other",
)
STATUSES = ("undeclared", "ground", "airborne", "emergency", "remote_id_system_failure")
HEIGHT_TYPES = ("above_takeoff", "above_ground")
OPERATOR_LOCATION_TYPES = ("takeoff", "live_gnss", "fixed")
CLASSIFICATIONS = ("undeclared", "eu")
EU_CATEGORIES = ("undeclared", "open", "specific", "certified")
EU_CLASSES = (
    "undeclared",
    "class_0",
    "class_1",
    "class_2",
    "class_3",
    "class_4",
    "class_5",
    "class_6",
)
AUTH_TYPES = (
    "none",
    "uas_id_signature",
    "operator_id_signature",
    "message_set_signature",
    "network_remote_id",
    "specific_method",
)
DESCRIPTION_TYPES = ("text", "emergency", "extended_status")

# accuracy codes -> metres (or m/s); None = unknown or reserved
H_ACC_M: tuple[float | None, ...] = (
    None, 18520.0, 7408.0, 3704.0, 1852.0, 926.0, 555.6, 185.2, 92.6, 30.0, 10.0, 3.0, 1.0,
)  # fmt: skip
V_ACC_M: tuple[float | None, ...] = (None, 150.0, 45.0, 25.0, 10.0, 3.0, 1.0)
SPEED_ACC_MS: tuple[float | None, ...] = (None, 10.0, 3.0, 1.0, 0.3)

SYSTEM_EPOCH = datetime(2019, 1, 1, tzinfo=UTC)  # System/Auth timestamps count from here

INV_DIRECTION = 361
INV_SPEED_H = 255.0
INV_SPEED_V = 63.0
INV_ALT = -1000.0
INV_TIMESTAMP = 0xFFFF

_LATLON = 1e-7
_SPEED_DIV = (0.25, 0.75)
_VSPEED_DIV = 0.5
_ALT_DIV = 0.5
_ALT_ADD = 1000.0


class OdidError(OfficeGuardError, ValueError):
    """Bytes that are not a decodable Open Drone ID message."""


def _name(table: tuple[str, ...], code: int) -> str:
    return table[code] if 0 <= code < len(table) else f"reserved_{code}"


def _lookup(table: tuple[str, ...], name: str | int) -> int:
    if isinstance(name, int):
        return name
    try:
        return table.index(name)
    except ValueError:
        raise ValueError(f"unknown value {name!r}, expected one of {', '.join(table)}") from None


def _text(raw: bytes) -> str:
    """A fixed-width ASCII field: cut at the first NUL; non-printable bytes become '?'."""
    raw = raw.split(b"\0", 1)[0]
    return "".join(chr(b) if 0x20 <= b < 0x7F else "?" for b in raw)


def _acc(table: tuple[float | None, ...], code: int) -> float | None:
    return table[code] if 0 <= code < len(table) else None


def _alt(raw: int) -> float | None:
    value = raw * _ALT_DIV - _ALT_ADD
    return None if value == INV_ALT else value


def _latlon(lat_raw: int, lon_raw: int) -> tuple[float | None, float | None]:
    if lat_raw == 0 and lon_raw == 0:
        return None, None
    lat, lon = lat_raw * _LATLON, lon_raw * _LATLON
    if not (-90.0 <= lat <= 90.0 and -180.0 <= lon <= 180.0):
        return None, None
    return round(lat, 7), round(lon, 7)


# ----------------------------------------------------------------------------- messages


@dataclass(frozen=True)
class BasicId:
    TYPE: ClassVar[str] = "basic_id"
    version: int
    id_type: str
    ua_type: str
    uas_id: str
    id_type_code: int = 0
    ua_type_code: int = 0

    def to_dict(self) -> dict[str, Any]:
        return {
            "type": self.TYPE,
            "version": self.version,
            "id_type": self.id_type,
            "ua_type": self.ua_type,
            "uas_id": self.uas_id,
        }


@dataclass(frozen=True)
class Location:
    """Position and movement. Altitudes in metres (WGS-84 `alt_geo`, barometric `alt_baro`),
    `height` above take-off or ground (`height_type`), speeds in m/s, `direction` in degrees
    from true north (track over ground), `timestamp` in seconds after the full hour."""

    TYPE: ClassVar[str] = "location"
    version: int
    status: str
    height_type: str
    direction: float | None
    speed_h: float | None
    speed_v: float | None
    lat: float | None
    lon: float | None
    alt_baro: float | None
    alt_geo: float | None
    height: float | None
    h_acc: int
    v_acc: int
    baro_acc: int
    speed_acc: int
    timestamp: float | None
    ts_acc: int

    @property
    def h_acc_m(self) -> float | None:
        return _acc(H_ACC_M, self.h_acc)

    @property
    def v_acc_m(self) -> float | None:
        return _acc(V_ACC_M, self.v_acc)

    @property
    def has_position(self) -> bool:
        return self.lat is not None and self.lon is not None

    def to_dict(self) -> dict[str, Any]:
        return {
            "type": self.TYPE,
            "version": self.version,
            "status": self.status,
            "height_type": self.height_type,
            "direction": self.direction,
            "speed_h": self.speed_h,
            "speed_v": self.speed_v,
            "lat": self.lat,
            "lon": self.lon,
            "alt_baro": self.alt_baro,
            "alt_geo": self.alt_geo,
            "height": self.height,
            "h_acc": self.h_acc,
            "v_acc": self.v_acc,
            "baro_acc": self.baro_acc,
            "speed_acc": self.speed_acc,
            "timestamp": self.timestamp,
            "ts_acc": self.ts_acc,
        }


@dataclass(frozen=True)
class Auth:
    """One page of an authentication signature. Page 0 carries the header (last page index,
    total length, time); pages 1-15 carry 23 more bytes each."""

    TYPE: ClassVar[str] = "auth"
    version: int
    auth_type: str
    page: int
    last_page: int | None  # page 0 only
    length: int | None  # page 0 only: bytes of signature data in all pages together
    timestamp: int | None  # page 0 only: seconds since 2019-01-01 00:00 UTC
    data: bytes = field(repr=False)

    def to_dict(self) -> dict[str, Any]:
        return {
            "type": self.TYPE,
            "version": self.version,
            "auth_type": self.auth_type,
            "page": self.page,
            "last_page": self.last_page,
            "length": self.length,
            "timestamp": self.timestamp,
            "data": self.data.hex(),
        }


@dataclass(frozen=True)
class SelfId:
    TYPE: ClassVar[str] = "self_id"
    version: int
    description_type: str
    description: str
    description_type_code: int = 0

    def to_dict(self) -> dict[str, Any]:
        return {
            "type": self.TYPE,
            "version": self.version,
            "description_type": self.description_type,
            "description": self.description,
        }


@dataclass(frozen=True)
class System:
    """Where the pilot is (`operator_*`), the operating area (a group of `area_count` drones
    within `area_radius` m, between `area_floor` and `area_ceiling`), EU category and class,
    and `timestamp` in seconds since 2019-01-01 00:00 UTC (0 = not given)."""

    TYPE: ClassVar[str] = "system"
    version: int
    operator_location_type: str
    classification: str
    operator_lat: float | None
    operator_lon: float | None
    area_count: int
    area_radius: int
    area_ceiling: float | None
    area_floor: float | None
    eu_category: str
    eu_class: str
    operator_alt_geo: float | None
    timestamp: int

    @property
    def time(self) -> datetime | None:
        return SYSTEM_EPOCH + timedelta(seconds=self.timestamp) if self.timestamp else None

    def to_dict(self) -> dict[str, Any]:
        return {
            "type": self.TYPE,
            "version": self.version,
            "operator_location_type": self.operator_location_type,
            "classification": self.classification,
            "operator_lat": self.operator_lat,
            "operator_lon": self.operator_lon,
            "area_count": self.area_count,
            "area_radius": self.area_radius,
            "area_ceiling": self.area_ceiling,
            "area_floor": self.area_floor,
            "eu_category": self.eu_category,
            "eu_class": self.eu_class,
            "operator_alt_geo": self.operator_alt_geo,
            "timestamp": self.timestamp,
        }


@dataclass(frozen=True)
class OperatorId:
    TYPE: ClassVar[str] = "operator_id"
    version: int
    operator_id_type: int
    operator_id: str

    def to_dict(self) -> dict[str, Any]:
        return {
            "type": self.TYPE,
            "version": self.version,
            "operator_id_type": self.operator_id_type,
            "operator_id": self.operator_id,
        }


Single = BasicId | Location | Auth | SelfId | System | OperatorId


@dataclass(frozen=True)
class MessagePack:
    """Several messages in one broadcast. `skipped` counts inner messages that could not be
    decoded (reserved types, a pack inside a pack); the others are still used."""

    TYPE: ClassVar[str] = "message_pack"
    version: int
    count: int
    messages: tuple[Single, ...]
    skipped: int = 0

    def to_dict(self) -> dict[str, Any]:
        return {
            "type": self.TYPE,
            "version": self.version,
            "count": self.count,
            "messages": [m.to_dict() for m in self.messages],
        }


OdidMessage = Single | MessagePack


# ----------------------------------------------------------------------------- decoding


def _decode_basic_id(m: bytes, version: int) -> BasicId:
    id_code, ua_code = m[1] >> 4, m[1] & 0x0F
    return BasicId(
        version=version,
        id_type=_name(ID_TYPES, id_code),
        ua_type=_name(UA_TYPES, ua_code),
        uas_id=_text(m[2:22]),
        id_type_code=id_code,
        ua_type_code=ua_code,
    )


def _decode_location(m: bytes, version: int) -> Location:
    flags = m[1]
    status = flags >> 4
    height_type = (flags >> 2) & 1
    ew = (flags >> 1) & 1
    mult = flags & 1
    direction_raw = m[2] + (180 if ew else 0)
    speed_raw = m[3]
    speed_v_raw = struct.unpack_from("<b", m, 4)[0]
    lat_raw, lon_raw = struct.unpack_from("<ii", m, 5)
    alt_baro_raw, alt_geo_raw, height_raw = struct.unpack_from("<HHH", m, 13)
    ts_raw = struct.unpack_from("<H", m, 21)[0]

    direction = float(direction_raw) if direction_raw <= 360 else None
    if mult:
        speed_h: float | None = speed_raw * _SPEED_DIV[1] + 255 * _SPEED_DIV[0]
    else:
        speed_h = speed_raw * _SPEED_DIV[0]
    if speed_h == INV_SPEED_H:
        speed_h = None
    speed_v: float | None = speed_v_raw * _VSPEED_DIV
    if speed_v == INV_SPEED_V:
        speed_v = None
    lat, lon = _latlon(lat_raw, lon_raw)
    timestamp = None if ts_raw == INV_TIMESTAMP or ts_raw > 36000 else ts_raw / 10.0
    return Location(
        version=version,
        status=_name(STATUSES, status),
        height_type=HEIGHT_TYPES[height_type],
        direction=direction,
        speed_h=speed_h,
        speed_v=speed_v,
        lat=lat,
        lon=lon,
        alt_baro=_alt(alt_baro_raw),
        alt_geo=_alt(alt_geo_raw),
        height=_alt(height_raw),
        h_acc=m[19] & 0x0F,
        v_acc=m[19] >> 4,
        baro_acc=m[20] >> 4,
        speed_acc=m[20] & 0x0F,
        timestamp=timestamp,
        ts_acc=m[23] & 0x0F,
    )


def _decode_auth(m: bytes, version: int) -> Auth:
    auth_code, page = m[1] >> 4, m[1] & 0x0F
    auth_type = "private_use" if auth_code >= 0xA else _name(AUTH_TYPES, auth_code)
    if page == 0:
        last_page, length = m[2], m[3]
        timestamp = struct.unpack_from("<I", m, 4)[0]
        return Auth(version, auth_type, 0, last_page, length, timestamp, m[8:25])
    return Auth(version, auth_type, page, None, None, None, m[2:25])


def _decode_self_id(m: bytes, version: int) -> SelfId:
    code = m[1]
    if code < len(DESCRIPTION_TYPES):
        kind = DESCRIPTION_TYPES[code]
    elif code >= 201:
        kind = "private_use"
    else:
        kind = f"reserved_{code}"
    return SelfId(version, kind, _text(m[2:25]), code)


def _decode_system(m: bytes, version: int) -> System:
    flags = m[1]
    lat_raw, lon_raw = struct.unpack_from("<ii", m, 2)
    area_count, area_radius = struct.unpack_from("<HB", m, 10)
    ceiling_raw, floor_raw = struct.unpack_from("<HH", m, 13)
    cat_class = m[17]
    alt_raw = struct.unpack_from("<H", m, 18)[0]
    timestamp = struct.unpack_from("<I", m, 20)[0]
    lat, lon = _latlon(lat_raw, lon_raw)
    classification = (flags >> 2) & 0x07
    eu = classification == 1
    return System(
        version=version,
        operator_location_type=_name(OPERATOR_LOCATION_TYPES, flags & 0x03),
        classification=_name(CLASSIFICATIONS, classification),
        operator_lat=lat,
        operator_lon=lon,
        area_count=area_count,
        area_radius=area_radius * 10,
        area_ceiling=_alt(ceiling_raw),
        area_floor=_alt(floor_raw),
        eu_category=_name(EU_CATEGORIES, cat_class >> 4) if eu else "undeclared",
        eu_class=_name(EU_CLASSES, cat_class & 0x0F) if eu else "undeclared",
        operator_alt_geo=_alt(alt_raw),
        timestamp=timestamp,
    )


def _decode_operator_id(m: bytes, version: int) -> OperatorId:
    return OperatorId(version, m[1], _text(m[2:22]))


_DECODERS: dict[int, Any] = {
    TYPE_BASIC_ID: _decode_basic_id,
    TYPE_LOCATION: _decode_location,
    TYPE_AUTH: _decode_auth,
    TYPE_SELF_ID: _decode_self_id,
    TYPE_SYSTEM: _decode_system,
    TYPE_OPERATOR_ID: _decode_operator_id,
}


def _decode_single(m: bytes) -> Single:
    kind, version = m[0] >> 4, m[0] & 0x0F
    decoder = _DECODERS.get(kind)
    if decoder is None:
        raise OdidError(f"message type 0x{kind:X} is reserved")
    result: Single = decoder(m, version)
    return result


def _decode_pack(data: bytes) -> MessagePack:
    if len(data) < 3:
        raise OdidError("message pack shorter than its 3-byte header")
    version, size, count = data[0] & 0x0F, data[1], data[2]
    if size != MESSAGE_SIZE:
        raise OdidError(f"message pack with {size}-byte messages (must be {MESSAGE_SIZE})")
    if count > MAX_PACK_MESSAGES:
        raise OdidError(f"message pack of {count} messages (at most {MAX_PACK_MESSAGES})")
    if len(data) < 3 + count * MESSAGE_SIZE:
        raise OdidError(f"message pack of {count} messages cut short at {len(data)} bytes")
    messages: list[Single] = []
    skipped = 0
    for i in range(count):
        chunk = data[3 + i * MESSAGE_SIZE : 3 + (i + 1) * MESSAGE_SIZE]
        if chunk[0] >> 4 == TYPE_PACK:
            skipped += 1
            continue
        try:
            messages.append(_decode_single(chunk))
        except OdidError:
            skipped += 1
    return MessagePack(version, count, tuple(messages), skipped)


def decode(data: bytes | bytearray | memoryview) -> OdidMessage:
    """One Open Drone ID message (25 bytes; longer input is cut to 25) or a message pack.
    Raises OdidError for anything that cannot be decoded."""
    raw = bytes(data)
    if not raw:
        raise OdidError("no data")
    if raw[0] >> 4 == TYPE_PACK:
        return _decode_pack(raw)
    if len(raw) < MESSAGE_SIZE:
        raise OdidError(f"message of {len(raw)} bytes (must be {MESSAGE_SIZE})")
    return _decode_single(raw[:MESSAGE_SIZE])


def messages_of(msg: OdidMessage) -> tuple[Single, ...]:
    """The single messages in a decoded broadcast (the pack's contents, or the message)."""
    return msg.messages if isinstance(msg, MessagePack) else (msg,)


# ----------------------------------------------------------------------------- encoding
# The same scaling as opendroneid-core-c's encode functions, rounding to the nearest step
# (core-c truncates; the difference is below one step, i.e. 1 cm in latitude or 0.5 m in
# altitude). The reserved bytes are zero.


def _header(kind: int, version: int) -> int:
    if not 0 <= version <= 15:
        raise ValueError("protocol version 0-15")
    return (kind << 4) | version


def _ascii(text: str, width: int) -> bytes:
    raw = text.encode("ascii")
    if len(raw) > width:
        raise ValueError(f"{text!r} is longer than {width} characters")
    return raw.ljust(width, b"\0")


def _enc_alt(value: float | None) -> int:
    if value is None:
        return 0
    return max(0, min(0xFFFF, round((value + _ALT_ADD) / _ALT_DIV)))


def _enc_latlon(lat: float | None, lon: float | None) -> tuple[int, int]:
    if lat is None or lon is None:
        return 0, 0
    if not (-90.0 <= lat <= 90.0 and -180.0 <= lon <= 180.0):
        raise ValueError("latitude -90..90 and longitude -180..180")
    return round(lat / _LATLON), round(lon / _LATLON)


def encode_basic_id(
    uas_id: str,
    id_type: str | int = "serial_number",
    ua_type: str | int = "helicopter_or_multirotor",
    version: int = NEWEST_VERSION,
) -> bytes:
    body = bytes([_header(TYPE_BASIC_ID, version)])
    body += bytes([(_lookup(ID_TYPES, id_type) << 4) | _lookup(UA_TYPES, ua_type)])
    return body + _ascii(uas_id, 20) + b"\0\0\0"


def encode_location(
    lat: float | None,
    lon: float | None,
    *,
    alt_geo: float | None = None,
    alt_baro: float | None = None,
    height: float | None = None,
    height_type: str | int = "above_takeoff",
    status: str | int = "airborne",
    direction: float | None = None,
    speed_h: float | None = None,
    speed_v: float | None = None,
    h_acc: int = 0,
    v_acc: int = 0,
    baro_acc: int = 0,
    speed_acc: int = 0,
    timestamp: float | None = None,
    ts_acc: int = 0,
    version: int = NEWEST_VERSION,
) -> bytes:
    """A Location/Vector message; None writes the standard's "invalid" value."""
    dir_value = INV_DIRECTION if direction is None else int(round(direction)) % 360
    ew = 1 if dir_value >= 180 else 0
    dir_raw = dir_value - 180 * ew
    if speed_h is None or speed_h >= INV_SPEED_H:
        mult, speed_raw = 1, 255
    elif speed_h <= 255 * _SPEED_DIV[0]:
        mult, speed_raw = 0, round(max(0.0, speed_h) / _SPEED_DIV[0])
    else:
        mult = 1
        speed_raw = min(254, round((speed_h - 255 * _SPEED_DIV[0]) / _SPEED_DIV[1]))
    if speed_v is None:
        speed_v_raw = int(INV_SPEED_V / _VSPEED_DIV)
    else:
        speed_v_raw = max(-124, min(124, round(speed_v / _VSPEED_DIV)))
    ts_raw = INV_TIMESTAMP if timestamp is None else max(0, min(36000, round(timestamp * 10)))
    flags = (_lookup(STATUSES, status) << 4) | (_lookup(HEIGHT_TYPES, height_type) << 2)
    flags |= (ew << 1) | mult
    lat_raw, lon_raw = _enc_latlon(lat, lon)
    return struct.pack(
        "<BBBBbiiHHHBBHBB",
        _header(TYPE_LOCATION, version),
        flags,
        dir_raw,
        speed_raw,
        speed_v_raw,
        lat_raw,
        lon_raw,
        _enc_alt(alt_baro),
        _enc_alt(alt_geo),
        _enc_alt(height),
        ((v_acc & 0x0F) << 4) | (h_acc & 0x0F),
        ((baro_acc & 0x0F) << 4) | (speed_acc & 0x0F),
        ts_raw,
        ts_acc & 0x0F,
        0,
    )


def encode_auth_page(
    page: int,
    data: bytes,
    *,
    auth_type: str | int = "uas_id_signature",
    last_page: int = 0,
    length: int = 0,
    timestamp: int = 0,
    version: int = NEWEST_VERSION,
) -> bytes:
    if not 0 <= page <= 15:
        raise ValueError("auth page 0-15")
    head = bytes([_header(TYPE_AUTH, version), (_lookup(AUTH_TYPES, auth_type) << 4) | page])
    if page == 0:
        if len(data) > 17:
            raise ValueError("page 0 holds 17 bytes of signature")
        return head + struct.pack("<BBI", last_page, length, timestamp) + data.ljust(17, b"\0")
    if len(data) > 23:
        raise ValueError("pages 1-15 hold 23 bytes of signature")
    return head + data.ljust(23, b"\0")


def encode_self_id(description: str, description_type: int = 0, version: int = 2) -> bytes:
    return bytes([_header(TYPE_SELF_ID, version), description_type]) + _ascii(description, 23)


def encode_system(
    operator_lat: float | None,
    operator_lon: float | None,
    *,
    operator_location_type: str | int = "takeoff",
    classification: str | int = "undeclared",
    area_count: int = 1,
    area_radius: int = 0,
    area_ceiling: float | None = None,
    area_floor: float | None = None,
    eu_category: str | int = "undeclared",
    eu_class: str | int = "undeclared",
    operator_alt_geo: float | None = None,
    timestamp: int | datetime = 0,
    version: int = NEWEST_VERSION,
) -> bytes:
    if isinstance(timestamp, datetime):
        timestamp = int((timestamp - SYSTEM_EPOCH).total_seconds())
    flags = (_lookup(CLASSIFICATIONS, classification) << 2) | _lookup(
        OPERATOR_LOCATION_TYPES, operator_location_type
    )
    lat_raw, lon_raw = _enc_latlon(operator_lat, operator_lon)
    cat_class = (_lookup(EU_CATEGORIES, eu_category) << 4) | _lookup(EU_CLASSES, eu_class)
    return struct.pack(
        "<BBiiHBHHBHIB",
        _header(TYPE_SYSTEM, version),
        flags,
        lat_raw,
        lon_raw,
        area_count,
        min(255, math.ceil(area_radius / 10)),
        _enc_alt(area_ceiling),
        _enc_alt(area_floor),
        cat_class,
        _enc_alt(operator_alt_geo),
        timestamp,
        0,
    )


def encode_operator_id(
    operator_id: str, operator_id_type: int = 0, version: int = NEWEST_VERSION
) -> bytes:
    head = bytes([_header(TYPE_OPERATOR_ID, version), operator_id_type])
    return head + _ascii(operator_id, 20) + b"\0\0\0"


def encode_message_pack(messages: list[bytes], version: int = NEWEST_VERSION) -> bytes:
    if not 1 <= len(messages) <= MAX_PACK_MESSAGES:
        raise ValueError(f"a message pack holds 1 to {MAX_PACK_MESSAGES} messages")
    for m in messages:
        if len(m) != MESSAGE_SIZE or m[0] >> 4 == TYPE_PACK:
            raise ValueError("pack members are single 25-byte messages")
    return bytes([_header(TYPE_PACK, version), MESSAGE_SIZE, len(messages)]) + b"".join(messages)
