"""MQTT 3.1.1 and 5 on the wire: packet types, reason codes, properties, the encoders, a reader
for packet bodies and topic-filter matching. Pure functions, no I/O: shared by the controller's
link to the office's broker (controller/mqtt.py) and the embedded broker (controller/mini_broker.py).
"""

from __future__ import annotations

import struct
from collections.abc import Iterable
from typing import Any

# packet types
CONNECT, CONNACK, PUBLISH, PUBACK, PUBREC, PUBREL, PUBCOMP = 1, 2, 3, 4, 5, 6, 7
SUBSCRIBE, SUBACK, UNSUBSCRIBE, UNSUBACK = 8, 9, 10, 11
PINGREQ, PINGRESP, DISCONNECT, AUTH = 12, 13, 14, 15

# MQTT 5 reason codes used here
RC_SUCCESS = 0x00
RC_NO_SUBSCRIPTION_EXISTED = 0x11
RC_DISCONNECT_WITH_WILL = 0x04
RC_UNSPECIFIED = 0x80
RC_MALFORMED = 0x81
RC_PROTOCOL_ERROR = 0x82
RC_CLIENT_ID_INVALID = 0x85
RC_UNSUPPORTED_VERSION = 0x84
RC_BAD_AUTH_METHOD = 0x8C
RC_KEEPALIVE_TIMEOUT = 0x8D
RC_SESSION_TAKEN_OVER = 0x8E
RC_TOPIC_FILTER_INVALID = 0x8F
RC_TOPIC_NAME_INVALID = 0x90
RC_PACKET_ID_IN_USE = 0x91
RC_TOPIC_ALIAS_INVALID = 0x94
RC_PACKET_TOO_LARGE = 0x95
RC_QOS_NOT_SUPPORTED = 0x9B
RC_SHARED_NOT_SUPPORTED = 0x9E

# MQTT 5 property identifiers and their value types
_BYTE, _U16, _U32, _VARINT, _STR, _BIN, _PAIR = range(7)
PROP_TYPES: dict[int, int] = {
    0x01: _BYTE,  # payload format indicator
    0x02: _U32,  # message expiry interval
    0x03: _STR,  # content type
    0x08: _STR,  # response topic
    0x09: _BIN,  # correlation data
    0x0B: _VARINT,  # subscription identifier
    0x11: _U32,  # session expiry interval
    0x12: _STR,  # assigned client identifier
    0x13: _U16,  # server keep alive
    0x15: _STR,  # authentication method
    0x16: _BIN,  # authentication data
    0x17: _BYTE,  # request problem information
    0x18: _U32,  # will delay interval
    0x19: _BYTE,  # request response information
    0x1A: _STR,  # response information
    0x1C: _STR,  # server reference
    0x1F: _STR,  # reason string
    0x21: _U16,  # receive maximum
    0x22: _U16,  # topic alias maximum
    0x23: _U16,  # topic alias
    0x24: _BYTE,  # maximum qos
    0x25: _BYTE,  # retain available
    0x26: _PAIR,  # user property
    0x27: _U32,  # maximum packet size
    0x28: _BYTE,  # wildcard subscription available
    0x29: _BYTE,  # subscription identifier available
    0x2A: _BYTE,  # shared subscription available
}
P_SESSION_EXPIRY = 0x11
P_ASSIGNED_ID = 0x12
P_AUTH_METHOD = 0x15
P_RECEIVE_MAX = 0x21
P_TOPIC_ALIAS = 0x23
P_MAX_PACKET = 0x27
P_REASON = 0x1F
# properties of a PUBLISH that are not forwarded to subscribers
_NOT_FORWARDED = {0x0B, 0x23}
NEVER_EXPIRES = 0xFFFFFFFF


class ProtocolError(Exception):
    """The client broke the protocol: its connection is closed with this MQTT 5 reason code."""

    def __init__(self, reason: int, text: str) -> None:
        super().__init__(text)
        self.reason = reason


# ---------------------------------------------------------------------------- wire format


def encode_varint(n: int) -> bytes:
    out = bytearray()
    while True:
        b = n % 128
        n //= 128
        if n:
            out.append(b | 0x80)
        else:
            out.append(b)
            return bytes(out)


def encode_str(s: str) -> bytes:
    b = s.encode("utf-8")
    return struct.pack("!H", len(b)) + b


def encode_bin(b: bytes) -> bytes:
    return struct.pack("!H", len(b)) + b


def packet(ptype: int, flags: int, body: bytes) -> bytes:
    return bytes([ptype << 4 | flags]) + encode_varint(len(body)) + body


def next_packet(
    buf: bytes | bytearray, pos: int, max_size: int
) -> tuple[int, int, bytes, int] | None:
    """The packet that starts at buf[pos], as (type, flags, body, where the next one starts),
    or None while it has not fully arrived. A remaining length of more than 4 bytes, or a
    packet over `max_size` bytes, is a ProtocolError."""
    n = len(buf)
    length, mult, i = 0, 1, pos + 1
    while True:
        if i >= n:
            return None  # the length itself has not fully arrived
        b = buf[i]
        i += 1
        length += (b & 0x7F) * mult
        if not b & 0x80:
            break
        if i - pos > 4:
            raise ProtocolError(RC_MALFORMED, "remaining length longer than 4 bytes")
        mult *= 128
    if length + (i - pos) > max_size:
        raise ProtocolError(RC_PACKET_TOO_LARGE, f"packet of {length} bytes refused")
    end = i + length
    if end > n:
        return None
    first = buf[pos]
    return first >> 4, first & 0x0F, bytes(buf[i:end]), end


def with_len(props: bytes) -> bytes:
    """Encoded MQTT 5 properties behind their length."""
    return encode_varint(len(props)) + props


def encode_props(props: Iterable[tuple[int, Any]]) -> bytes:
    out = bytearray()
    for pid, value in props:
        out += encode_varint(pid)
        kind = PROP_TYPES[pid]
        if kind == _BYTE:
            out.append(value)
        elif kind == _U16:
            out += struct.pack("!H", value)
        elif kind == _U32:
            out += struct.pack("!I", value)
        elif kind == _VARINT:
            out += encode_varint(value)
        elif kind == _STR:
            out += encode_str(value)
        elif kind == _BIN:
            out += encode_bin(value)
        else:
            out += encode_str(value[0]) + encode_str(value[1])
    return bytes(out)


class Reader:
    """Reads the fields of one packet body; every shortfall is a malformed packet."""

    __slots__ = ("data", "pos", "end")

    def __init__(self, data: bytes, pos: int = 0, end: int | None = None) -> None:
        self.data = data
        self.pos = pos
        self.end = len(data) if end is None else end

    def left(self) -> int:
        return self.end - self.pos

    def take(self, n: int) -> bytes:
        if n < 0 or self.pos + n > self.end:
            raise ProtocolError(RC_MALFORMED, "packet shorter than its fields")
        b = self.data[self.pos : self.pos + n]
        self.pos += n
        return b

    def byte(self) -> int:
        if self.pos >= self.end:
            raise ProtocolError(RC_MALFORMED, "packet shorter than its fields")
        b = self.data[self.pos]
        self.pos += 1
        return b

    def u16(self) -> int:
        return int(struct.unpack("!H", self.take(2))[0])

    def u32(self) -> int:
        return int(struct.unpack("!I", self.take(4))[0])

    def varint(self) -> int:
        n, mult = 0, 1
        for _ in range(4):
            b = self.byte()
            n += (b & 0x7F) * mult
            if not b & 0x80:
                return n
            mult *= 128
        raise ProtocolError(RC_MALFORMED, "variable byte integer longer than 4 bytes")

    def binary(self) -> bytes:
        return self.take(self.u16())

    def string(self) -> str:
        raw = self.binary()
        try:
            s = raw.decode("utf-8")
        except UnicodeDecodeError:
            raise ProtocolError(RC_MALFORMED, "string is not valid UTF-8") from None
        if "\x00" in s:
            raise ProtocolError(RC_MALFORMED, "string contains U+0000")
        return s

    def properties(self) -> list[tuple[int, Any]]:
        length = self.varint()
        end = self.pos + length
        if end > self.end:
            raise ProtocolError(RC_MALFORMED, "properties longer than the packet")
        sub = Reader(self.data, self.pos, end)
        props: list[tuple[int, Any]] = []
        while sub.left():
            pid = sub.varint()
            kind = PROP_TYPES.get(pid)
            if kind is None:
                raise ProtocolError(RC_MALFORMED, f"unknown property 0x{pid:02x}")
            value: Any
            if kind == _BYTE:
                value = sub.byte()
            elif kind == _U16:
                value = sub.u16()
            elif kind == _U32:
                value = sub.u32()
            elif kind == _VARINT:
                value = sub.varint()
            elif kind == _STR:
                value = sub.string()
            elif kind == _BIN:
                value = sub.binary()
            else:
                value = (sub.string(), sub.string())
            props.append((pid, value))
        self.pos = end
        return props


def prop(props: list[tuple[int, Any]], pid: int, default: Any = None) -> Any:
    for p, v in props:
        if p == pid:
            return v
    return default


# ---------------------------------------------------------------------------- topics


def valid_topic_name(topic: str) -> bool:
    return bool(topic) and "+" not in topic and "#" not in topic


def valid_filter(flt: str) -> bool:
    if not flt:
        return False
    levels = flt.split("/")
    for i, level in enumerate(levels):
        if "#" in level and (level != "#" or i != len(levels) - 1):
            return False
        if "+" in level and level != "+":
            return False
    return True


def split_shared(flt: str) -> tuple[str | None, str]:
    """`$share/<group>/<filter>` → (group, filter); anything else → (None, filter)."""
    if not flt.startswith("$share/"):
        return None, flt
    parts = flt.split("/", 2)
    if len(parts) < 3 or not parts[1] or "+" in parts[1] or "#" in parts[1] or not parts[2]:
        raise ValueError("bad shared subscription")
    return parts[1], parts[2]


def topic_matches(flt: str, topic: str) -> bool:
    """MQTT topic filter matching; `$`-topics are not matched by a wildcard in level 1."""
    if topic.startswith("$") and flt[:1] in ("+", "#"):
        return False
    f = flt.split("/")
    t = topic.split("/")
    for i, level in enumerate(f):
        if level == "#":
            return True
        if i >= len(t):
            return False
        if level != "+" and level != t[i]:
            return False
    return len(f) == len(t)
