"""SIA DC-09 frames, pure: build a message, read a receiving centre's answer.

A frame on the wire (SIA DC-09-2013, §5.4)::

    <LF> CRC 0LLL "ID" seq Rrcvr Lpref #acct [data] _HH:MM:SS,MM-DD-YYYY <CR>

- `CRC`: CRC-16/ARC (poly 0x8005 reflected, init 0, no final xor) of the body, from the
  first `"` to the end of the timestamp, as 4 uppercase hex digits;
- `0LLL`: the body's length in bytes, 3 hex digits after a `0`;
- `"ID"`: `ADM-CID`, `SIA-DCS` or `NULL`, with a `*` before it when the rest is encrypted;
- `seq` 0001-9999 (wraps to 0001), `R` receiver number and `L` line prefix in hex (1-6
  digits), `#acct` the account (3-16 hex digits);
- ADM-CID data `[#acct|Q EEE GG CCC]` written `#1234|1130 01 015`: `Q` is 1 for a new event or
  an opening, 3 for a restore or a closing; `EEE` the Contact ID event; `GG` the partition;
  `CCC` the zone or the user;
- SIA-DCS data `[#acct|Nri<area>/<code><zone>]` written `#1234|Nri1/BA015`: `N` a new event,
  `ri` the area (left out for 0, the whole site), the SIA DC-03 code of two letters and the zone
  or user number;
- the timestamp is UTC.

Encrypted (`"*ADM-CID"`), everything from after the `[` to the end of the timestamp is
`pad|` + `#acct|...]_timestamp`, AES-CBC with an all-zero IV and a key of 16, 24 or 32 bytes,
sent as uppercase hex; the pad (random characters other than `|`, `[` and `]`) makes the
plain text a whole number of 16-byte blocks.

The answers (`ACK`, `NAK`, `DUH`, `RSP`) are frames of the same shape; a NAK carries the
receiver's own time, which the sender uses to correct its clock.
"""

from __future__ import annotations

import re
import secrets
import string
from dataclasses import dataclass
from datetime import UTC, datetime

import crcmod.predefined
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

from controller.contact_id import sia
from controller.errors import OfficeGuardError

# CRC-16/ARC is crcmod's predefined "crc-16" (check value 0xBB3D over "123456789"): the
# maintained library rather than a table of our own.
_crc16 = crcmod.predefined.mkPredefinedCrcFun("crc-16")

IV = bytes(16)  # DC-09: CBC with an all-zero initialisation vector
TIMESTAMP_FORMAT = "_%H:%M:%S,%m-%d-%Y"
_PAD_ALPHABET = string.ascii_letters + string.digits  # never |, [ or ]
MAX_SEQ = 9999


class FrameError(OfficeGuardError, ValueError):
    """A frame that does not follow DC-09 (bad CRC, length, shape, key or encryption)."""


def crc16(body: bytes) -> int:
    """CRC-16/ARC of `body`."""
    return int(_crc16(body))


def timestamp(at: datetime) -> str:
    """`_HH:MM:SS,MM-DD-YYYY` in UTC."""
    return at.astimezone(UTC).strftime(TIMESTAMP_FORMAT)


def parse_timestamp(text: str) -> datetime:
    """The UTC instant of a `_HH:MM:SS,MM-DD-YYYY` timestamp (the `_` optional)."""
    try:
        return datetime.strptime(text.lstrip("_"), TIMESTAMP_FORMAT[1:]).replace(tzinfo=UTC)
    except ValueError as e:
        raise FrameError(f"not a DC-09 timestamp: {text!r}") from e


def next_seq(seq: int) -> int:
    """The sequence number after `seq`: 0001-9999, then 0001 again (0000 is never used)."""
    return 1 if seq >= MAX_SEQ else seq + 1


def check_key(key: bytes) -> bytes:
    if len(key) not in (16, 24, 32):
        raise FrameError(
            f"a DC-09 key is 16, 24 or 32 bytes (AES-128/192/256), this one is {len(key)}"
        )
    return key


def encrypt(key: bytes, plain: str) -> str:
    """`pad|plain`, AES-CBC, as uppercase hex."""
    pad_len = 16 - (len(plain) + 1) % 16
    pad = "".join(secrets.choice(_PAD_ALPHABET) for _ in range(pad_len))
    data = (pad + "|" + plain).encode("ascii")
    enc = Cipher(algorithms.AES(check_key(key)), modes.CBC(IV)).encryptor()
    return (enc.update(data) + enc.finalize()).hex().upper()


def decrypt(key: bytes, hex_text: str) -> str:
    """The plain text of an encrypted part, the pad before the first `|` taken off (a pad
    without `|`, as some receivers write their answers, is taken off up to the first `]`,
    `#` or `_`)."""
    try:
        data = bytes.fromhex(hex_text)
    except ValueError as e:
        raise FrameError("the encrypted part is not hex") from e
    if not data or len(data) % 16:
        raise FrameError("the encrypted part is not a whole number of AES blocks")
    dec = Cipher(algorithms.AES(check_key(key)), modes.CBC(IV)).decryptor()
    text = (dec.update(data) + dec.finalize()).decode("ascii", errors="replace")
    if "|" in text and text.index("|") < 16 and not text.startswith("#"):
        return text.split("|", 1)[1]
    m = re.search(r"[#\]_]", text)
    if m is None:
        raise FrameError("the encrypted part does not decrypt with this key")
    return text[m.start() :]


def adm_cid_data(cid: str, partition: int, number: int) -> str:
    """ADM-CID event data `QEEE GG CCC` from an event's `cid` ("E130" → `1130 01 015`)."""
    m = re.fullmatch(r"([ER])(\d{3})", cid)
    if m is None:
        raise FrameError(f"not a Contact ID code with qualifier: {cid!r}")
    if not 0 <= partition <= 99 or not 0 <= number <= 999:
        raise FrameError(f"partition {partition} or zone/user {number} out of range")
    qualifier = "1" if m.group(1) == "E" else "3"
    return f"{qualifier}{m.group(2)} {partition:02d} {number:03d}"


def sia_dcs_data(cid: str, partition: int, number: int) -> str:
    """SIA-DCS event data `Nri<area>/<code><zone>` from an event's `cid` ("E130" → `Nri1/BA015`),
    the SIA code from the one Contact ID table (controller/contact_id.py)."""
    try:
        code = sia(cid)
    except KeyError as e:
        raise FrameError(f"no SIA code for {cid!r}") from e
    if not 0 <= partition <= 99 or not 0 <= number <= 999:
        raise FrameError(f"partition {partition} or zone/user {number} out of range")
    area = f"ri{partition}/" if partition else ""
    return f"N{area}{code}{number:03d}"


@dataclass(frozen=True)
class Header:
    """Who a frame is from and to, as the receiver checks it."""

    account: str  # 3-16 hex digits
    receiver: str | None = "0"  # hex; None leaves the R field out
    line: str = "0"  # hex

    def __post_init__(self) -> None:
        if not re.fullmatch(r"[0-9A-F]{3,16}", self.account):
            raise FrameError(f"account {self.account!r}: 3-16 uppercase hex digits")
        for name, v in (("receiver", self.receiver), ("line", self.line)):
            if v is not None and not re.fullmatch(r"[0-9A-F]{1,6}", v):
                raise FrameError(f"{name} {v!r}: 1-6 uppercase hex digits")


def wrap(body: str) -> bytes:
    """`<LF> CRC 0LLL body <CR>`."""
    raw = body.encode("ascii")
    if len(raw) > 0xFFF:
        raise FrameError("a DC-09 frame body is at most 4095 bytes")
    return b"\n" + f"{crc16(raw):04X}0{len(raw):03X}".encode("ascii") + raw + b"\r"


def build(
    token: str,
    seq: int,
    header: Header,
    data: str,
    at: datetime,
    key: bytes | None = None,
) -> bytes:
    """One message frame: `token` ADM-CID, SIA-DCS or NULL; `data` what goes between
    `[#acct|` and `]` (empty for NULL, whose data is `[]`)."""
    if not 0 <= seq <= MAX_SEQ:
        raise FrameError(f"sequence {seq} out of 0000-9999")
    rcv = f"R{header.receiver}" if header.receiver is not None else ""
    inner = f"#{header.account}|{data}]" if data else "]"
    content = inner + timestamp(at)
    if key is not None:
        content = encrypt(key, content)
    star = "*" if key is not None else ""
    return wrap(f'"{star}{token}"{seq:04d}{rcv}L{header.line}#{header.account}[{content}')


_FRAME = re.compile(
    rb"\n?(?P<crc>[0-9A-Fa-f]{4})(?P<len>[0-9A-Fa-f]{4})"
    rb'(?P<body>"(?P<star>\*?)(?P<token>[A-Z-]+)"(?P<seq>\d{4})'
    rb"(?:R(?P<rcv>[0-9A-Fa-f]{1,6}))?L(?P<line>[0-9A-Fa-f]{1,6})"
    rb"(?:#(?P<acct>[0-9A-Fa-f]{3,16}))?(?:A0)?\[(?P<rest>[^\r\n]*))\r?\n?"
)


@dataclass(frozen=True)
class Frame:
    """A frame as read: an answer from a centre (or a message, in tests)."""

    ident: str  # the ID token: ACK, NAK, DUH, RSP, ADM-CID, SIA-DCS, NULL
    encrypted: bool
    seq: int
    receiver: str | None
    line: str
    account: str | None
    data: str  # between `[` and `]` (decrypted), without the brackets
    at: datetime | None  # the timestamp, when the frame has one


def parse(raw: bytes, key: bytes | None = None) -> Frame:
    """Read one frame, checking its CRC and length; an encrypted one needs `key`."""
    m = _FRAME.fullmatch(raw.strip(b"\x00")) or _FRAME.fullmatch(raw.strip())
    if m is None:
        raise FrameError(f"not a DC-09 frame: {raw[:80]!r}")
    body = m.group("body")
    if int(m.group("crc"), 16) != crc16(body):
        raise FrameError(f"bad CRC {m.group('crc').decode()}, body has {crc16(body):04X}")
    if int(m.group("len"), 16) != len(body):
        raise FrameError(f"bad length {m.group('len').decode()}, body has {len(body):04X}")
    rest = m.group("rest").decode("ascii")
    encrypted = bool(m.group("star"))
    if encrypted:
        if key is None:
            raise FrameError("an encrypted frame and no key")
        rest = decrypt(key, rest)
    if "]" not in rest:
        raise FrameError("no ] closing the data")
    data, _, tail = rest.partition("]")
    at: datetime | None = None
    ts = re.search(r"_\d\d:\d\d:\d\d,\d\d-\d\d-\d{4}$", tail)
    if ts is not None:
        at = parse_timestamp(ts.group(0))
    acct = m.group("acct")
    rcv = m.group("rcv")
    return Frame(
        ident=m.group("token").decode(),
        encrypted=encrypted,
        seq=int(m.group("seq")),
        receiver=rcv.decode().upper() if rcv else None,
        line=m.group("line").decode().upper(),
        account=acct.decode().upper() if acct else None,
        data=data,
        at=at,
    )
