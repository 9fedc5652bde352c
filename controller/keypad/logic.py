"""What the keys typed at a keypad mean (no hardware here: the driver delivers key characters).

For the guard at the hall keypad:

    CODE #      disarm this keypad's zones if any is armed, arming or in alarm; else arm away
    CODE * 1    arm away        CODE * 2    arm home        CODE * 3    arm night
    *           with nothing typed: clear;  * *  clears at any point
    (nothing for 10 s)  the unfinished entry is dropped (three short beeps)

A code is 4 to 8 digits; a ninth digit drops the entry at once (refused, three short beeps) and
the rest of it is ignored up to the next `#` or `*`. Keys a 4x4 keypad has beyond these (A-D)
are ignored. Every key gives a short beep; the long `accept` beep or the three short `refuse`
beeps come when the code has been checked. A duress code sounds exactly like a normal one.

For the daemon, per keypad:

    ctl = KeypadController(keypad_cfg, gate)          # gate: access.AccessGate, shared
    step = ctl.key(char, clock.now())                 # from the driver, on the event loop
    play(step.sounds); journal(step.events)
    if step.verify is not None:                       # a complete entry; the lockout allows it
        match = await loop.run_in_executor(None, authenticator.identify, step.verify.code)
        decision = ctl.complete(step.verify, match, clock.now(), engine_zone_states)
        journal(decision.events)
        ok = decision.ok and engine.apply(decision)   # arm/disarm decision.zones as decision.user
        play(ctl.result(ok, clock.now()))             # accept / refuse
    # and at ctl.next_due(): step = ctl.tick(now) (entry timeout), handled like key()

`KeypadSession` is the key-sequence logic alone; `KeypadController` adds the lockout check,
permissions and events through the shared `AccessGate`. All of it is pure: time is passed in.
The typed code lives only in `Request.code`, which no repr, str or event shows.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Literal

from controller.access.gate import AccessGate, Attempt, Decision, Match, Reason, Sound
from controller.config import Keypad, Mode
from controller.events import EventDraft

KEYS = frozenset("0123456789*#")
DIGITS = frozenset("0123456789")
MODE_KEYS: dict[str, Mode] = {"1": "away", "2": "home", "3": "night"}
MIN_DIGITS = 4
MAX_DIGITS = 8

Phase = Literal["idle", "code", "mode", "overflow"]


@dataclass(frozen=True)
class Feedback:
    """A buzzer intent: `key` (short beep), `accept` (long), `refuse` (three short)."""

    sound: Sound


@dataclass(frozen=True, eq=False, repr=False)
class Request:
    """A complete entry to check: the code and what it asks for. `action` is `toggle`
    (`CODE#`) or `arm` with `mode` (`CODE*1..3`). Never printed or logged with its code."""

    keypad: str
    action: Literal["toggle", "arm"]
    mode: Mode | None
    ts: datetime
    code: str = field(repr=False, compare=False)

    def __repr__(self) -> str:
        return (
            f"Request(keypad={self.keypad!r}, action={self.action!r}, mode={self.mode!r}, "
            "code=<hidden>)"
        )

    __str__ = __repr__

    def attempt(self, zones: tuple[str, ...]) -> Attempt:
        """The code-free description of this request for `AccessGate.decide`."""
        return Attempt(
            source=self.keypad,
            zones=zones,
            action=self.action,
            mode=self.mode,
            channel="keypad",
            partial=True,
        )


@dataclass(frozen=True)
class EntryRefused:
    """An entry dropped before any code was checked: `timeout`, `too_long`, `too_short`,
    `bad_mode`."""

    keypad: str
    reason: Reason
    ts: datetime


KeypadOutput = Feedback | Request | EntryRefused


class KeypadSession:
    """Key-sequence state of one keypad. `key(char, now)` and `tick(now)` return what happened
    as a list of `Feedback`, `Request` and `EntryRefused`, in the order to act on them.
    Never raises on any key: anything that is not a key is ignored."""

    def __init__(
        self,
        keypad: Keypad,
        *,
        entry_timeout: timedelta | None = None,
        min_digits: int = MIN_DIGITS,
        max_digits: int = MAX_DIGITS,
    ):
        self.keypad_id = keypad.id
        self.entry_timeout = entry_timeout if entry_timeout is not None else keypad.entry_timeout
        self.min_digits = min_digits
        self.max_digits = max_digits
        self._phase: Phase = "idle"
        self._digits: list[str] = []
        self._last: datetime | None = None

    def __repr__(self) -> str:
        # neither the digits nor how many were typed
        return f"KeypadSession(keypad={self.keypad_id!r}, phase={self._phase!r})"

    __str__ = __repr__

    @property
    def phase(self) -> Phase:
        """idle, code (digits being typed), mode (after CODE*), overflow (over-long entry)."""
        return self._phase

    def _reset(self) -> None:
        self._phase = "idle"
        self._digits.clear()
        self._last = None

    def _refuse(self, reason: Reason, now: datetime) -> list[KeypadOutput]:
        self._reset()
        return [EntryRefused(self.keypad_id, reason, now), Feedback("refuse")]

    def _finish(
        self, action: Literal["toggle", "arm"], mode: Mode | None, now: datetime
    ) -> list[KeypadOutput]:
        if len(self._digits) < self.min_digits:
            return self._refuse("too_short", now)
        code = "".join(self._digits)
        self._reset()
        return [Request(self.keypad_id, action, mode, now, code)]

    def next_due(self) -> datetime | None:
        """When an unfinished entry will be dropped, or None when nothing is being typed."""
        if self._phase == "idle" or self._last is None:
            return None
        return self._last + self.entry_timeout

    def tick(self, now: datetime) -> list[KeypadOutput]:
        """Drop an entry left unfinished for `entry_timeout` (refused: `timeout`)."""
        if self._phase == "idle" or self._last is None:
            return []
        if now < self._last:  # the clock was stepped back: count from now
            self._last = now
            return []
        if now - self._last < self.entry_timeout:
            return []
        if self._phase == "overflow":  # already refused when it overflowed
            self._reset()
            return []
        return self._refuse("timeout", now)

    def key(self, char: object, now: datetime) -> list[KeypadOutput]:
        """One key press at `now`."""
        out = self.tick(now)
        if not isinstance(char, str) or len(char) != 1:
            return out  # not a key press at all
        out.append(Feedback("key"))
        if char not in KEYS:
            return out  # A-D on a 4x4 keypad: unused
        if self._phase == "overflow":
            if char in "*#":
                self._reset()
            else:
                self._last = now
            return out
        if char in DIGITS:
            if self._phase == "mode":
                mode = MODE_KEYS.get(char)
                if mode is None:
                    return out + self._refuse("bad_mode", now)
                return out + self._finish("arm", mode, now)
            self._digits.append(char)
            self._phase = "code"
            self._last = now
            if len(self._digits) > self.max_digits:
                out += self._refuse("too_long", now)
                self._phase = "overflow"  # swallow the rest of this entry
                self._last = now
            return out
        if char == "*":
            if self._phase == "code":
                self._phase = "mode"
                self._last = now
            elif self._phase == "mode":
                self._reset()  # `**` clears
            return out  # `*` with nothing typed: nothing to clear
        # char == "#"
        if self._phase == "code":
            return out + self._finish("toggle", None, now)
        if self._phase == "mode":
            return out + self._refuse("bad_mode", now)
        return out  # `#` with nothing typed: ignored

    def result(self, ok: bool, now: datetime) -> list[Feedback]:
        """The buzzer's answer once the daemon has acted on a request (duress: also ok)."""
        return [Feedback("accept" if ok else "refuse")]


@dataclass(frozen=True)
class KeypadStep:
    """What one key press (or a timeout) asks of the daemon: `sounds` to play in order,
    `events` to journal, `decisions` already taken (refusals), and `verify`, a complete
    entry whose code must be identified off the loop and passed to `complete()`."""

    sounds: tuple[Sound, ...] = ()
    events: tuple[EventDraft, ...] = ()
    decisions: tuple[Decision, ...] = ()
    verify: Request | None = None


class KeypadController:
    """One keypad's session tied to the shared AccessGate (lockout, permissions, duress).
    Pure: the daemon does the code check (`Authenticator.identify`) and the arming."""

    def __init__(self, keypad: Keypad, gate: AccessGate, *, entry_timeout: timedelta | None = None):
        self.keypad = keypad
        self.zones = tuple(keypad.zones)
        self.gate = gate
        self.session = KeypadSession(keypad, entry_timeout=entry_timeout)

    def __repr__(self) -> str:
        return f"KeypadController(keypad={self.keypad.id!r}, {self.session!r})"

    def _step(self, outputs: list[KeypadOutput], now: datetime) -> KeypadStep:
        sounds: list[Sound] = []
        decisions: list[Decision] = []
        verify: Request | None = None
        for item in outputs:
            if isinstance(item, Feedback):
                sounds.append(item.sound)
            elif isinstance(item, EntryRefused):
                decisions.append(
                    self.gate.refuse_entry(item.reason, self.keypad.id, "keypad", now, self.zones)
                )
            else:
                locked = self.gate.precheck(self.keypad.id, "keypad", now, self.zones)
                if locked is not None:  # not even checked: a right code is refused too
                    decisions.append(locked)
                    sounds.append("refuse")
                else:
                    verify = item
        events = tuple(ev for d in decisions for ev in d.events)
        return KeypadStep(tuple(sounds), events, tuple(decisions), verify)

    def key(self, char: object, now: datetime) -> KeypadStep:
        return self._step(self.session.key(char, now), now)

    def tick(self, now: datetime) -> KeypadStep:
        return self._step(self.session.tick(now), now)

    def next_due(self) -> datetime | None:
        """When `tick` must run (entry timeout). Lockout ends are the gate's (`gate.next_due`)."""
        return self.session.next_due()

    def complete(
        self,
        request: Request,
        match: Match | None,
        now: datetime,
        zone_states: Mapping[str, str] | None = None,
    ) -> Decision:
        """The decision for a verified request: match from `Authenticator.identify`."""
        return self.gate.decide(request.attempt(self.zones), match, now, zone_states)

    def result(self, ok: bool, now: datetime) -> tuple[Sound, ...]:
        return tuple(f.sound for f in self.session.result(ok, now))
