"""Wiegand 26/34-bit decoding, pure: bits with their edge timestamps in, badge reads out.

A Wiegand reader holds DATA0 and DATA1 high and pulls one of them low for ~50 µs per bit
(DATA0 a 0, DATA1 a 1), a bit every 1-2 ms; a read ends with silence. The frame is
`P D...D P`: the first bit is the even parity of the first half of the data bits, the last
the odd parity of the second half. 26 bits carry 8 bits of facility code and 16 of card
number (printed "188,12345", or as the 24-bit decimal); 34 bits carry 32 bits.

`WiegandDecoder.feed(bit, t)` takes one bit with its edge time (seconds, any monotonic
origin). A frame of the reader's length is decoded at its last bit, so a read costs no wait;
a frame cut short or too long, or a wrong parity, is a `Garbled` read, counted and skipped by
the caller. A frame ends at its length or after `frame_gap` of silence (`expire(t)`).
"""

from __future__ import annotations

from dataclasses import dataclass

from hardware.backend import HardwareError

FRAME_GAP = 0.015  # s of silence that ends a frame (readers space bits 1-2.7 ms apart)
FORMATS = (26, 34)


class WiegandError(HardwareError, ValueError):
    """A frame that is not a valid Wiegand read (length or parity); never holds the number."""


@dataclass(frozen=True)
class Badge:
    number: int  # the data bits: facility * 65536 + card for 26 bits
    bits: int


@dataclass(frozen=True)
class Garbled:
    reason: str  # "length", "parity"
    bits: int


Read = Badge | Garbled


def _parity_ok(frame: list[int]) -> bool:
    n = len(frame)
    data = frame[1:-1]
    half = len(data) // 2
    even_ok = (frame[0] + sum(data[:half])) % 2 == 0
    odd_ok = (frame[-1] + sum(data[half:])) % 2 == 1
    return n in FORMATS and even_ok and odd_ok


def decode(frame: list[int], expected: int) -> int:
    """The number of one frame; WiegandError for a wrong length or parity."""
    if len(frame) != expected:
        raise WiegandError(f"{len(frame)} bits where {expected} were expected")
    if not _parity_ok(frame):
        raise WiegandError("parity check failed")
    value = 0
    for b in frame[1:-1]:
        value = value * 2 + b
    return value


def encode(number: int, bits: int = 26) -> list[int]:
    """The frame a reader sends for `number` (the simulated twin's side, and the tests')."""
    if bits not in FORMATS:
        raise WiegandError(f"Wiegand {bits} is not supported (26 or 34)")
    width = bits - 2
    if not 0 <= number < 2**width:
        raise WiegandError(f"a {bits}-bit card holds numbers below 2**{width}")
    data = [(number >> (width - 1 - i)) & 1 for i in range(width)]
    half = width // 2
    even = sum(data[:half]) % 2
    odd = 1 - sum(data[half:]) % 2
    return [even, *data, odd]


class WiegandDecoder:
    """Bits with timestamps in, reads out; counts what it skipped."""

    def __init__(self, bits: int = 26, frame_gap: float = FRAME_GAP) -> None:
        if bits not in FORMATS:
            raise WiegandError(f"Wiegand {bits} is not supported (26 or 34)")
        self.bits = bits
        self.frame_gap = frame_gap
        self._frame: list[int] = []
        self._last: float | None = None
        self._overrun = False  # bits still coming after a frame of the right length
        self.reads = 0
        self.garbled = 0

    @property
    def pending(self) -> bool:
        return bool(self._frame) or self._overrun

    def feed(self, bit: int, t: float) -> list[Read]:
        out = self.expire(t)
        self._frame.append(1 if bit else 0)
        self._last = t
        if not self._overrun and len(self._frame) == self.bits:
            out.append(self._finish())
            self._overrun = True  # until the line falls silent
        return out

    def expire(self, t: float) -> list[Read]:
        """End the frame if the line has been silent for `frame_gap` at time `t`."""
        if self._last is None or t - self._last < self.frame_gap:
            return []
        self._last = None
        if self._overrun:
            # bits after a frame of the right length: the read was longer than the reader's
            # format (reported already, if its first bits passed the parity check)
            self._overrun = False
            trailing, self._frame = self._frame, []
            if not trailing:
                return []
            self.garbled += 1
            return [Garbled("length", self.bits + len(trailing))]
        if not self._frame:
            return []
        return [self._finish()]

    def _finish(self) -> Read:
        frame, self._frame = self._frame, []
        try:
            number = decode(frame, self.bits)
        except WiegandError:
            self.garbled += 1
            reason = "length" if len(frame) != self.bits else "parity"
            return Garbled(reason, len(frame))
        self.reads += 1
        return Badge(number, len(frame))
