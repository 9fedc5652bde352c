"""The serial line protocol between a drone detector node on the roof and the controller.

The detector (an ESP32, see firmware_py/) sends one line per message over its UART, 115200 8N1:

    <JSON object>*<crc>\\n

`crc` is the CRC-32 (zlib/binascii) of the JSON bytes as exactly 8 lowercase hex digits. A line
is at most 1024 bytes (not counting the "\\n" and an optional "\\r" before it). Every object has
`"v": 1`, `"t"` (the message type) and `"seq"` (0-65535, counting up by one per line and wrapping
to 0), so a jump in `seq` shows lines lost on the wire.

| t     | fields                                            | meaning                          |
|-------|---------------------------------------------------|----------------------------------|
| hello | fw (str), caps (list of str)                      | the detector (re)started         |
| hb    | up (s), adv (adverts seen), drop (adverts dropped)| heartbeat, every 5 s             |
| rid   | tr (ble4/ble5/wb/nan), mac, rssi (dBm), hex       | one Open Drone ID message or pack|
| rf    | band (2g4/5g8), ev (start/upd/end), id, peak_dbm, floor_dbm, dur_ms | RF energy, no RID |
| err   | msg (str)                                         | a fault inside the detector      |

Fields not listed are ignored (room to grow); a listed field with the wrong type or range makes
the line bad. `parse_line` raises `ProtocolError` with a short machine-readable `reason` (one of
`REASONS`) for every bad line, so the caller counts it and drops it; it never raises anything
else. `encode_line` builds a line; the firmware has its own small encoder that produces the
same bytes (tests/drone/test_firmware.py checks that both ends agree).
"""

from __future__ import annotations

import json
import math
import re
import zlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, ClassVar

from controller.errors import OfficeGuardError

VERSION = 1
MAX_LINE = 1024  # bytes, without the line end
SEQ_MOD = 65536
MAX_RID_BYTES = 255  # an extended (BLE 5) advert carries at most a 9-message pack (228 bytes)

TRANSPORTS = ("ble4", "ble5", "wb", "nan")
BANDS = ("2g4", "5g8")
RF_EVENTS = ("start", "upd", "end")

# why a line was refused; the monitor counts bad lines by these
REASONS = (
    "empty",  # nothing between two line ends
    "too_long",  # over MAX_LINE bytes
    "bad_frame",  # no "*" followed by exactly 8 lowercase hex digits at the end
    "bad_crc",  # the CRC does not match the JSON bytes
    "bad_json",  # not UTF-8 JSON, or not a JSON object
    "bad_version",  # "v" missing or not 1
    "bad_type",  # "t" missing or not a known message type
    "bad_field",  # "seq" or a field of the message missing, of the wrong type or out of range
)

_CRC_RE = re.compile(rb"[0-9a-f]{8}")
_MAC_RE = re.compile(r"[0-9A-Fa-f]{2}(?::[0-9A-Fa-f]{2}){5}")
_HEX_RE = re.compile(r"(?:[0-9A-Fa-f]{2})+")


class ProtocolError(OfficeGuardError, ValueError):
    """A line that breaks the protocol. `reason` is one of REASONS; the message says why."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(f"{reason}: {message}")
        self.reason = reason


# ----------------------------------------------------------------------------- messages


@dataclass(frozen=True)
class Hello:
    """The detector (re)started: firmware version and what it can hear."""

    T: ClassVar[str] = "hello"
    seq: int
    fw: str
    caps: tuple[str, ...]


@dataclass(frozen=True)
class Heartbeat:
    """Sent every 5 s: seconds since boot, adverts seen and adverts dropped since boot."""

    T: ClassVar[str] = "hb"
    seq: int
    up: int
    adv: int
    drop: int


@dataclass(frozen=True)
class Rid:
    """One received Remote ID message (25 bytes) or message pack, still undecoded."""

    T: ClassVar[str] = "rid"
    seq: int
    tr: str
    mac: str  # lower case, aa:bb:cc:dd:ee:ff
    rssi: int
    payload: bytes = field(repr=False)

    @property
    def hex(self) -> str:
        return self.payload.hex()


@dataclass(frozen=True)
class Rf:
    """RF energy above the noise floor in one band, without a Remote ID."""

    T: ClassVar[str] = "rf"
    seq: int
    band: str
    ev: str
    id: int
    peak_dbm: float
    floor_dbm: float
    dur_ms: int


@dataclass(frozen=True)
class Err:
    """A fault inside the detector (radio, ADC ...), in the detector's own words."""

    T: ClassVar[str] = "err"
    seq: int
    msg: str


Message = Hello | Heartbeat | Rid | Rf | Err


def to_dict(msg: Message) -> dict[str, Any]:
    """The JSON object of a message, keys in protocol order (v, t, seq, fields)."""
    out: dict[str, Any] = {"v": VERSION, "t": msg.T, "seq": msg.seq}
    if isinstance(msg, Hello):
        out.update(fw=msg.fw, caps=list(msg.caps))
    elif isinstance(msg, Heartbeat):
        out.update(up=msg.up, adv=msg.adv, drop=msg.drop)
    elif isinstance(msg, Rid):
        out.update(tr=msg.tr, mac=msg.mac, rssi=msg.rssi, hex=msg.hex)
    elif isinstance(msg, Rf):
        out.update(
            band=msg.band,
            ev=msg.ev,
            id=msg.id,
            peak_dbm=msg.peak_dbm,
            floor_dbm=msg.floor_dbm,
            dur_ms=msg.dur_ms,
        )
    else:
        out.update(msg=msg.msg)
    return out


# ----------------------------------------------------------------------------- encoding


def frame(json_bytes: bytes) -> bytes:
    """`<json_bytes>*<crc32>\\n`, with no check of the content (tests use it for bad lines)."""
    return json_bytes + b"*" + f"{zlib.crc32(json_bytes):08x}".encode("ascii") + b"\n"


def encode_line(obj: Message | Mapping[str, Any]) -> bytes:
    """One protocol line for a message or a JSON object: compact JSON (no spaces, ASCII only,
    keys in the given order), CRC, "\\n". Raises ValueError if the line would be over the
    length limit or the object is not JSON (NaN, infinity, other types)."""
    data = to_dict(obj) if isinstance(obj, Hello | Heartbeat | Rid | Rf | Err) else dict(obj)
    try:
        body = json.dumps(data, separators=(",", ":"), ensure_ascii=True, allow_nan=False)
    except (TypeError, ValueError) as e:
        raise ValueError(f"not a JSON object for a protocol line: {e}") from None
    line = frame(body.encode("ascii"))
    if len(line) - 1 > MAX_LINE:
        raise ValueError(f"line of {len(line) - 1} bytes is over the {MAX_LINE}-byte limit")
    return line


def ensure_framed(text: str) -> bytes:
    """For `officeguard sim serial`: a line typed by a person. `{...}*1a2b3c4d` is taken as it
    is (so a wrong CRC can be tried on purpose); a bare `{...}` gets its CRC added. Either way
    the result ends in "\\n" and is otherwise byte-for-byte what was typed."""
    raw = text.rstrip("\r\n").encode("utf-8")
    star = raw.rfind(b"*")
    if star >= 0 and _CRC_RE.fullmatch(raw[star + 1 :]):
        return raw + b"\n"
    return frame(raw)


# ----------------------------------------------------------------------------- parsing


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not allowed")


def _field(obj: Mapping[str, Any], name: str) -> Any:
    if name not in obj:
        raise ProtocolError("bad_field", f"{name!r} missing")
    return obj[name]


def _int(obj: Mapping[str, Any], name: str, lo: int, hi: int) -> int:
    value = _field(obj, name)
    if type(value) is not int:
        raise ProtocolError("bad_field", f"{name!r} must be an integer")
    if not lo <= value <= hi:
        raise ProtocolError("bad_field", f"{name!r} out of range {lo}..{hi}")
    return value


def _num(obj: Mapping[str, Any], name: str, lo: float, hi: float) -> float:
    value = _field(obj, name)
    if type(value) not in (int, float) or not math.isfinite(value):
        raise ProtocolError("bad_field", f"{name!r} must be a number")
    if not lo <= value <= hi:
        raise ProtocolError("bad_field", f"{name!r} out of range {lo:g}..{hi:g}")
    return float(value)


def _str(obj: Mapping[str, Any], name: str, max_len: int) -> str:
    value = _field(obj, name)
    if not isinstance(value, str):
        raise ProtocolError("bad_field", f"{name!r} must be a string")
    if len(value) > max_len:
        raise ProtocolError("bad_field", f"{name!r} longer than {max_len} characters")
    return value


def _choice(obj: Mapping[str, Any], name: str, choices: tuple[str, ...]) -> str:
    value = _field(obj, name)
    if not isinstance(value, str) or value not in choices:
        raise ProtocolError("bad_field", f"{name!r} must be one of {', '.join(choices)}")
    return value


def _hello(obj: Mapping[str, Any], seq: int) -> Hello:
    fw = _str(obj, "fw", 64)
    caps = _field(obj, "caps")
    if not isinstance(caps, list) or len(caps) > 16:
        raise ProtocolError("bad_field", "'caps' must be a list of at most 16 strings")
    if not all(isinstance(c, str) and 0 < len(c) <= 16 for c in caps):
        raise ProtocolError("bad_field", "'caps' must be a list of short strings")
    return Hello(seq, fw, tuple(caps))


def _hb(obj: Mapping[str, Any], seq: int) -> Heartbeat:
    big = 2**53
    return Heartbeat(
        seq, _int(obj, "up", 0, big), _int(obj, "adv", 0, big), _int(obj, "drop", 0, big)
    )


def _rid(obj: Mapping[str, Any], seq: int) -> Rid:
    tr = _choice(obj, "tr", TRANSPORTS)
    mac = _str(obj, "mac", 17)
    if not _MAC_RE.fullmatch(mac):
        raise ProtocolError("bad_field", "'mac' must look like aa:bb:cc:dd:ee:ff")
    rssi = _int(obj, "rssi", -128, 127)
    text = _str(obj, "hex", 2 * MAX_RID_BYTES)
    if not _HEX_RE.fullmatch(text):
        raise ProtocolError("bad_field", "'hex' must be a non-empty even-length hex string")
    return Rid(seq, tr, mac.lower(), rssi, bytes.fromhex(text))


def _rf(obj: Mapping[str, Any], seq: int) -> Rf:
    return Rf(
        seq,
        _choice(obj, "band", BANDS),
        _choice(obj, "ev", RF_EVENTS),
        _int(obj, "id", 0, SEQ_MOD - 1),
        _num(obj, "peak_dbm", -150.0, 50.0),
        _num(obj, "floor_dbm", -150.0, 50.0),
        _int(obj, "dur_ms", 0, 2**53),
    )


def _err(obj: Mapping[str, Any], seq: int) -> Err:
    return Err(seq, _str(obj, "msg", 200))


_PARSERS: dict[str, Callable[[Mapping[str, Any], int], Message]] = {
    "hello": _hello,
    "hb": _hb,
    "rid": _rid,
    "rf": _rf,
    "err": _err,
}


def parse_line(raw: bytes | bytearray | memoryview | str) -> Message:
    """Check one line exactly as the protocol says and return its message.

    The line may end in "\\n" or "\\r\\n" (or neither, as the serial reader hands it over).
    Raises ProtocolError (reason in REASONS) for anything else; never another exception."""
    data = raw.encode("utf-8", "replace") if isinstance(raw, str) else bytes(raw)
    if data.endswith(b"\n"):
        data = data[:-1]
    if data.endswith(b"\r"):
        data = data[:-1]
    if not data:
        raise ProtocolError("empty", "empty line")
    if len(data) > MAX_LINE:
        raise ProtocolError("too_long", f"line of {len(data)} bytes, limit {MAX_LINE}")
    star = data.rfind(b"*")
    if star < 0 or not _CRC_RE.fullmatch(data[star + 1 :]):
        raise ProtocolError("bad_frame", "the line does not end in *<8 lowercase hex digits>")
    body = data[:star]
    if zlib.crc32(body) != int(data[star + 1 :], 16):
        raise ProtocolError("bad_crc", "CRC-32 does not match")
    try:
        obj = json.loads(body.decode("utf-8"), parse_constant=_reject_constant)
    except (UnicodeDecodeError, ValueError, RecursionError) as e:
        raise ProtocolError("bad_json", f"not JSON: {type(e).__name__}") from None
    if not isinstance(obj, dict):
        raise ProtocolError("bad_json", "not a JSON object")
    v = obj.get("v")
    if type(v) is not int or v != VERSION:
        raise ProtocolError("bad_version", f"'v' must be {VERSION}")
    t = obj.get("t")
    parser = _PARSERS.get(t) if isinstance(t, str) else None
    if parser is None:
        raise ProtocolError("bad_type", "'t' must be one of " + ", ".join(_PARSERS))
    seq = _int(obj, "seq", 0, SEQ_MOD - 1)
    return parser(obj, seq)


# ----------------------------------------------------------------------------- sequence


@dataclass
class SeqCounter:
    """Follows `seq` across good lines and counts what went missing in between.

    A `hello` starts a new count (the detector restarted, its seq starts afresh). A jump
    forward of less than half the seq range counts as `lost` lines in one `gap`; a step back
    (a repeated line, or a restart whose hello was lost) counts as a `reset`."""

    last: int | None = None
    gaps: int = 0
    lost: int = 0
    resets: int = 0

    def observe(self, msg: Message) -> int:
        """Record a good line; returns how many lines went missing just before it."""
        seq = msg.seq
        prev, self.last = self.last, seq
        if prev is None or isinstance(msg, Hello):
            return 0
        missing = (seq - prev - 1) % SEQ_MOD
        if missing == 0:
            return 0
        if missing < SEQ_MOD // 2:
            self.gaps += 1
            self.lost += missing
            return missing
        self.resets += 1
        return 0
