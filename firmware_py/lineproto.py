"""The detector's side of the serial line protocol: one message in, one line out.

    <JSON object>*<crc>\\n     crc = CRC-32 of the JSON bytes, 8 lowercase hex digits

The controller checks every line (controller/drone/protocol.py). This module cannot import the
controller, so it keeps its own small encoder; it writes exactly the bytes the controller's
`encode_line` writes for the same object (compact JSON, ASCII only, keys in the given order),
which the host tests check. It writes JSON by hand rather than with MicroPython's `json`, whose
spacing and float format differ from CPython's.
"""

try:
    from binascii import crc32
except ImportError:  # a MicroPython build without binascii.crc32
    crc32 = None

MAX_LINE = 1024  # bytes, without the "\n"

_ESCAPES = {
    '"': '\\"',
    "\\": "\\\\",
    "\n": "\\n",
    "\r": "\\r",
    "\t": "\\t",
    "\b": "\\b",
    "\f": "\\f",
}

_TABLE = None


def _crc32_soft(data):
    global _TABLE
    if _TABLE is None:
        _TABLE = []
        for i in range(256):
            c = i
            for _ in range(8):
                c = (c >> 1) ^ 0xEDB88320 if c & 1 else c >> 1
            _TABLE.append(c)
    crc = 0xFFFFFFFF
    for b in data:
        crc = _TABLE[(crc ^ b) & 0xFF] ^ (crc >> 8)
    return crc ^ 0xFFFFFFFF


def crc(data):
    if crc32 is not None:
        return crc32(data) & 0xFFFFFFFF
    return _crc32_soft(data)


def _string(text, out):
    out.append('"')
    for ch in text:
        esc = _ESCAPES.get(ch)
        if esc is not None:
            out.append(esc)
            continue
        o = ord(ch)
        if 0x20 <= o < 0x7F:  # printable ASCII; DEL and above are escaped, as CPython does
            out.append(ch)
        elif o < 0x10000:
            out.append(f"\\u{o:04x}")
        else:
            o -= 0x10000
            out.append(f"\\u{0xD800 | (o >> 10):04x}\\u{0xDC00 | (o & 0x3FF):04x}")
    out.append('"')


def _value(value, out):
    if value is None:
        out.append("null")
    elif value is True:
        out.append("true")
    elif value is False:
        out.append("false")
    elif isinstance(value, int):
        out.append(str(value))
    elif isinstance(value, float):
        if value != value or value in (float("inf"), float("-inf")):
            raise ValueError("NaN and infinity are not JSON")
        out.append(repr(value))
    elif isinstance(value, str):
        _string(value, out)
    elif isinstance(value, (list, tuple)):
        out.append("[")
        for i, item in enumerate(value):
            if i:
                out.append(",")
            _value(item, out)
        out.append("]")
    elif isinstance(value, dict):
        _object(value.items(), out)
    else:
        raise ValueError("cannot write this type as JSON")


def _object(pairs, out):
    out.append("{")
    first = True
    for key, value in pairs:
        if not isinstance(key, str):
            raise ValueError("JSON keys are strings")
        if not first:
            out.append(",")
        first = False
        _string(key, out)
        out.append(":")
        _value(value, out)
    out.append("}")


def dumps(obj):
    """Compact ASCII JSON of a dict, or of a list of (key, value) pairs (kept in order)."""
    out = []
    _object(obj.items() if isinstance(obj, dict) else obj, out)
    return "".join(out)


def encode(obj):
    """One protocol line (bytes, ending in "\\n"). Raises ValueError if over MAX_LINE."""
    body = dumps(obj).encode()
    line = body + b"*" + f"{crc(body):08x}".encode() + b"\n"
    if len(line) - 1 > MAX_LINE:
        raise ValueError("line too long")
    return line
