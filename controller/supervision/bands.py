"""Supervised loops: from a loop's wiring to voltage bands, and from readings to loop states.

A supervised loop is a contact wired with end-of-line resistors to an ADC channel, fed from the
ADC's reference through a pull-up: the channel reads `vref * R_loop / (R_pull_up + R_loop)`.
Each state of the loop has its own resistance, so its own voltage:

| wiring | normal | alarm | cut (wire cut, loop open) | short (loop bridged) |
|---|---|---|---|---|
| `nc`, `double` (DEOL) | R_eol | R_eol + R_alarm | infinite | 0 |
| `no`, `double` (DEOL) | R_eol + R_alarm | R_eol | infinite | 0 |
| `nc`, `single` (EOL in series) | R_eol | infinite (= a cut) | infinite | 0: a tamper |
| `no`, `single` (EOL across the contact) | R_eol | 0 (= a short) | infinite: a tamper | 0 |

A state's band is the span of voltages its resistance gives with every resistor anywhere within
its tolerance; between bands lies no state ("trouble": a reading outside every band, a loop
that corrodes or a resistor that is not the one the config says). A short is anything below a
tenth of the smallest loop resistance, a cut anything above ten times the largest.

Pure: no clock, no I/O. `Decoder` follows one loop: hysteresis (a settled state holds while the
reading stays within `hysteresis` volts of its band) and a debounce on the daemon's time (a new
state must hold `debounce` before it counts), so noise never flaps a zone.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Literal

LoopState = Literal["normal", "alarm", "cut", "short", "trouble", "unknown"]
BandState = Literal["normal", "alarm", "cut", "short"]
# the order of the bands from 0 V up is not fixed (NO wiring swaps normal and alarm)
BAND_STATES: tuple[BandState, ...] = ("short", "normal", "alarm", "cut")
SHORT_FRACTION = 0.1  # below a tenth of the smallest loop resistance: a short
CUT_FACTOR = 10.0  # above ten times the largest: a cut
INFINITE = float("inf")


@dataclass(frozen=True, slots=True)
class Band:
    state: BandState
    lo: float  # volts, inclusive
    hi: float  # volts, inclusive

    def holds(self, volts: float, margin: float = 0.0) -> bool:
        return self.lo - margin <= volts <= self.hi + margin


@dataclass(frozen=True, slots=True)
class LoopWiring:
    """One loop's circuit: the contact, EOL or DEOL, the resistors (ohms) and their tolerance."""

    contact: Literal["nc", "no"] = "nc"
    eol: Literal["single", "double"] = "double"
    eol_ohms: float = 4700.0
    alarm_ohms: float = 4700.0  # DEOL only: the resistor across (NC) or beside (NO) the contact
    pull_up_ohms: float = 4700.0
    tolerance: float = 0.05  # of every resistor, e.g. 0.05 for 5 % parts

    def resistances(self) -> dict[BandState, float]:
        """The loop's resistance in each state it can be told apart in (single EOL: the alarm
        and one tamper share a resistance; the alarm wins)."""
        r1, r2 = self.eol_ohms, self.alarm_ohms
        if self.eol == "double":
            normal, alarm = (r1, r1 + r2) if self.contact == "nc" else (r1 + r2, r1)
            return {"short": 0.0, "normal": normal, "alarm": alarm, "cut": INFINITE}
        if self.contact == "nc":
            return {"short": 0.0, "normal": r1, "alarm": INFINITE}
        return {"alarm": 0.0, "normal": r1, "cut": INFINITE}


def volts(vref: float, pull_up: float, loop: float) -> float:
    """What the channel reads for this loop resistance (infinite: the full reference)."""
    if loop == INFINITE:
        return vref
    return vref * loop / (pull_up + loop)


def wiring_bands(w: LoopWiring, vref: float) -> tuple[Band, ...]:
    """The bands of a loop wired as `w`, sorted from 0 V up."""
    rs = w.resistances()
    finite = [r for r in rs.values() if 0 < r < INFINITE]
    short_max = SHORT_FRACTION * min(finite)
    cut_min = CUT_FACTOR * max(finite)
    t = w.tolerance
    pu_lo, pu_hi = w.pull_up_ohms * (1 - t), w.pull_up_ohms * (1 + t)
    bands = []
    for state, r in rs.items():
        if r == 0:
            lo, hi = 0.0, volts(vref, pu_lo, short_max)
        elif r == INFINITE:
            lo, hi = volts(vref, pu_hi, cut_min), vref
        else:  # lowest with the loop low and the pull-up high, highest the other way round
            lo, hi = volts(vref, pu_hi, r * (1 - t)), volts(vref, pu_lo, r * (1 + t))
        bands.append(Band(state, round(lo, 4), round(hi, 4)))
    return tuple(sorted(bands, key=lambda b: b.lo))


def calibrated_bands(
    w: LoopWiring, vref: float, normal_v: float, alarm_v: float, spread: float = 0.08
) -> tuple[Band, ...]:
    """Bands from a loop measured in place (`officeguard wiring calibrate`): the normal and alarm
    bands centred on what was read, `spread` of the reference wide each side (what the resistors'
    drift with temperature and age needs), the short and cut bands as the wiring gives them."""
    out = {b.state: b for b in wiring_bands(w, vref)}
    rs = w.resistances()
    half = spread * vref / 2
    measured: tuple[tuple[BandState, float], ...] = (("normal", normal_v), ("alarm", alarm_v))
    for state, v in measured:
        if 0 < rs[state] < INFINITE:  # a single EOL's open or bridged alarm keeps its band
            out[state] = Band(state, round(max(0.0, v - half), 4), round(min(vref, v + half), 4))
    return tuple(sorted(out.values(), key=lambda b: b.lo))


def bands_from(spec: Mapping[str, Sequence[float]]) -> tuple[Band, ...]:
    """Bands as the config writes them: `{normal: [lo, hi], ...}` in volts."""
    out = []
    for state, (lo, hi) in spec.items():
        if state not in BAND_STATES:
            raise ValueError(f"no loop state {state!r}: use {', '.join(BAND_STATES)}")
        out.append(Band(state, float(lo), float(hi)))
    return tuple(sorted(out, key=lambda b: b.lo))


def band_problems(bands: Sequence[Band], hysteresis: float = 0.0) -> list[str]:
    """What is wrong with a set of bands: empty or inverted bands, bands that overlap, or
    bands closer than the hysteresis (a noisy reading could then hold either)."""
    out = []
    for b in bands:
        if b.lo > b.hi:
            out.append(f"band {b.state} is empty ({b.lo} V above {b.hi} V)")
    ordered = sorted(bands, key=lambda b: b.lo)
    for a, b in zip(ordered, ordered[1:], strict=False):
        if b.lo <= a.hi:
            out.append(
                f"bands {a.state} and {b.state} overlap ({a.state} up to {a.hi} V, {b.state} from {b.lo} V)"
            )
        elif b.lo - a.hi <= 2 * hysteresis:
            out.append(
                f"bands {a.state} and {b.state} are {b.lo - a.hi:.3f} V apart, not more than twice the hysteresis"
            )
    if "normal" not in {b.state for b in bands}:
        out.append("no normal band")
    return out


def classify(bands: Sequence[Band], volts_read: float) -> LoopState:
    """The one state a reading means: the band that holds it, or trouble if none does."""
    for b in bands:
        if b.holds(volts_read):
            return b.state
    return "trouble"


@dataclass(slots=True)
class Decoder:
    """One loop's state from its readings, with hysteresis and a debounce on the given times."""

    bands: tuple[Band, ...]
    hysteresis: float = 0.05  # volts
    debounce: timedelta = timedelta(milliseconds=250)
    state: LoopState = "unknown"  # the settled state
    last_volts: float | None = None
    _candidate: LoopState | None = field(default=None, repr=False)
    _since: datetime | None = field(default=None, repr=False)

    def _raw(self, v: float) -> LoopState:
        for b in self.bands:  # the settled band holds while within the hysteresis
            if b.state == self.state and b.holds(v, self.hysteresis):
                return b.state
        return classify(self.bands, v)

    def feed(self, v: float, now: datetime) -> LoopState | None:
        """One reading at `now`; the new settled state when it changed, else None. The first
        reading after start (or after `lost`) settles at once: it is the baseline."""
        self.last_volts = v
        raw = self._raw(v)
        if self.state == "unknown":
            self.state, self._candidate, self._since = raw, None, None
            return raw
        if raw == self.state:
            self._candidate = self._since = None
            return None
        if raw != self._candidate:
            self._candidate, self._since = raw, now
        assert self._since is not None
        if now - self._since >= self.debounce:
            self.state, self._candidate, self._since = raw, None, None
            return raw
        return None

    def next_due(self) -> datetime | None:
        """When a candidate state would settle if the readings hold (for a poll to wake then)."""
        return None if self._since is None else self._since + self.debounce

    def lost(self) -> None:
        """The ADC stopped answering: the loop's state is unknown until a reading comes."""
        self.state, self.last_volts, self._candidate, self._since = "unknown", None, None, None
