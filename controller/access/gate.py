"""Who may arm and disarm: recognising a user from a code, zone permissions, lockout, duress.

The same rules serve the hall keypad and remote commands (MQTT, local CLI):

* A code alone identifies the user (codes are unique per site). A user's duress code does
  exactly what the normal code would, and in addition sends a silent `duress` report (E121).
* A user may operate only the zones listed for them (no list: every zone). At a keypad they
  operate the keypad's zones they are allowed; if none, the attempt is refused.
* Five wrong codes within 5 minutes from one source (one keypad, one socket user, one signing
  key, unsigned MQTT as a whole) lock that source for 5 minutes; during the lockout even a
  right code is refused without being checked, and the lockout ends by itself after 5 minutes
  on the controller's clock.
* Every refused attempt is written to the logbook with its reason (wrong code, not permitted,
  entry timed out...), never with the code; except attempts refused because the source is
  locked out: those are counted, and the one event that says the lockout ended carries the
  count (a flood of attempts during a lockout must not become a flood of events).

Pieces, for the daemon:

* `Authenticator(users)`: `identify(code) -> Match | None`. Thread-safe and CPU-heavy (scrypt),
  so run it in a thread-pool executor; never on the alarm loop.
* `Lockout`: pure failure counter per source; time is passed in.
* `AccessGate(lockout, lang, tz)`: pure; turns (attempt, match, now, zone states) into a
  `Decision` (arm/disarm/refused, zones, mode, user, duress, reason, events to journal).

Event kinds used here (all from docs/events.md): a wrong code is `system` with cid `E461`;
the lockout itself is `keypad_lockout` (also for a remote command source, see detail.channel),
with no cid since each wrong code already carried its E461; the lockout's end is `system`;
other refusals (locked out, not permitted, timeout, too long/short, bad mode) are `system`
without cid; duress is `duress` with cid `E121`. Arm/disarm events (R401/E401...) come from
the engine when the daemon applies the decision.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import threading
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta, tzinfo
from typing import Literal, get_args

from controller import texts
from controller.access.codes import is_hash, is_valid_code, verify_code
from controller.config import Mode, User
from controller.contact_id import cid
from controller.events import EventDraft

Action = Literal["toggle", "arm", "disarm"]
Channel = str  # "keypad", "mqtt", "cli"; free text, reported in event detail
Reason = Literal[
    "wrong_code",
    "locked_out",
    "not_permitted",
    "timeout",
    "too_long",
    "too_short",
    "bad_mode",
    "no_code",
    "busy",
]
REASONS: tuple[str, ...] = get_args(Reason)
ACTIONS: tuple[str, ...] = get_args(Action)
MODES: tuple[str, ...] = ("away", "home", "night")

# Zone states (Home Assistant's names) in which `CODE#` disarms rather than arms.
ACTIVE_STATES = frozenset(
    {
        "arming",
        "armed_away",
        "armed_home",
        "armed_night",
        "armed_vacation",
        "armed_custom_bypass",
        "pending",
        "triggered",
    }
)

texts.register(
    {
        "access.wrong_code": {
            "vi": "Sai mã tại {source} (lần {failures}/{limit})",
            "en": "Wrong code at {source} ({failures} of {limit})",
        },
        "access.locked_out": {
            "vi": "Từ chối mã tại {source}: đang khóa đến {until}",
            "en": "Code refused at {source}: locked until {until}",
        },
        "access.not_permitted": {
            "vi": "{user} không được phép điều khiển {zones} (tại {source})",
            "en": "{user} may not operate {zones} (at {source})",
        },
        "access.timeout": {
            "vi": "Hủy thao tác nhập dở dang tại {source} (quá thời gian)",
            "en": "Unfinished entry dropped at {source} (timed out)",
        },
        "access.too_long": {
            "vi": "Từ chối tại {source}: nhập quá 8 chữ số",
            "en": "Entry refused at {source}: more than 8 digits",
        },
        "access.too_short": {
            "vi": "Từ chối tại {source}: nhập ít hơn 4 chữ số",
            "en": "Entry refused at {source}: fewer than 4 digits",
        },
        "access.bad_mode": {
            "vi": "Từ chối tại {source}: chế độ không hợp lệ (dùng *1, *2 hoặc *3)",
            "en": "Entry refused at {source}: unknown mode (use *1, *2 or *3)",
        },
        "access.no_code": {
            "vi": "Từ chối tại {source}: không có mã",
            "en": "Refused at {source}: no code given",
        },
        "access.lockout": {
            "vi": "Khóa {source} trong {minutes} phút sau {failures} lần nhập sai mã",
            "en": "{source} locked for {minutes} min after {failures} wrong codes",
        },
        "access.unlocked": {
            "vi": "Hết thời gian khóa {source}",
            "en": "{source} lockout ended",
        },
        "access.unlocked_refused": {
            "vi": "Hết thời gian khóa {source} ({refused} lần thử bị từ chối trong lúc khóa)",
            "en": "{source} lockout ended ({refused} attempt(s) refused while locked)",
        },
        "access.busy": {
            "vi": "Từ chối tại {source}: quá nhiều lần thử đang chờ kiểm tra mã",
            "en": "Refused at {source}: too many attempts waiting for their code check",
        },
        "access.duress": {
            "vi": "Mã cưỡng ép do {user} nhập tại {source}",
            "en": "Duress code entered by {user} at {source}",
        },
    }
)


# ----------------------------------------------------------------------------- identification


@dataclass(frozen=True)
class Match:
    """A recognised user. `user` is the user's name (never the code); `zones` the zones they
    may operate (None: every zone); `duress` true when the duress code was given."""

    user: str
    duress: bool
    zones: tuple[str, ...] | None

    def may_operate(self, zone: str) -> bool:
        return self.zones is None or zone in self.zones

    def permitted(self, zones: Iterable[str]) -> tuple[str, ...]:
        """The given zones this user may operate, in the given order."""
        return tuple(z for z in zones if self.may_operate(z))


def may_operate(user: User | Match, zones: Iterable[str]) -> bool:
    """True when the user may operate every one of `zones` (user.zones None: all zones)."""
    allowed = user.zones
    return allowed is None or all(z in allowed for z in zones)


@dataclass(frozen=True, repr=False)
class _Entry:
    user: str
    zones: tuple[str, ...] | None
    duress: bool
    stored: str | None = None  # scrypt hash; None when the code came in plain (tag only)

    def __repr__(self) -> str:
        return f"_Entry(user={self.user!r}, duress={self.duress})"

    def match(self) -> Match:
        return Match(self.user, self.duress, self.zones)


class Authenticator:
    """Recognises users by code. Thread-safe: call `identify` from a thread-pool executor.

    Plain codes from the config (`code:`, `duress_code:`) are turned at load into an
    HMAC-SHA256 tag under a random key that lives only in this object; no plain code is kept
    here (the config object the caller holds still has it). Hashed codes (`code_hash:`) are
    checked with scrypt, which is slow on purpose, and a code must be tried against every
    user's hash in turn. So a code once verified is remembered, as the same kind of tag.

    Why the cache is safe: a tag is HMAC(process key, code). The key is 32 random bytes made
    when the Authenticator is built, never written anywhere and gone with the process (or
    replaced at a config reload, which also empties the cache, so a removed user's code stops
    working at once). Without the key a tag says nothing about the code, even though codes are
    short, so a tag is as good as the code itself only to someone who can read this process's
    memory, and such a person could read the codes as they are typed anyway. Looking a tag up
    in a dict takes time that depends on the tag, not on how close a guess came to a real code,
    so it leaks nothing a timing attacker could use. The cache holds only right codes (at most
    one tag per code in the config), so wrong guesses cannot make it grow.
    """

    def __init__(self, users: Iterable[User]):
        self._key = secrets.token_bytes(32)
        self._lock = threading.Lock()
        self._entries: list[_Entry] = []
        self._tags: dict[bytes, int] = {}  # tag -> entry index: plain codes + verified hashes
        self._pending: list[int] = []  # hashed entries whose code has not been seen yet
        self._verifications = 0
        self.problems: list[str] = []  # config problems found here (never with a code)
        for i, user in enumerate(users):
            if user.disabled:
                continue  # a disabled user's codes open nothing (the user stays in the logbook)
            zones = tuple(user.zones) if user.zones is not None else None
            for duress, plain, stored, label in (
                (False, user.code, user.code_hash, "code"),
                (True, user.duress_code, user.duress_code_hash, "duress_code"),
            ):
                where = f"users[{i}] ({user.name})"
                if plain is not None:
                    if not is_valid_code(plain):
                        self.problems.append(f"{where}: {label} is not 4-8 digits; ignored")
                        continue
                    tag = self._tag(plain)
                    if tag in self._tags:
                        raise ValueError(f"{where}: {label} is the same as another user's code")
                    self._entries.append(_Entry(user.name, zones, duress))
                    self._tags[tag] = len(self._entries) - 1
                elif stored is not None:
                    if not is_hash(stored):
                        self.problems.append(
                            f"{where}: {label}_hash is malformed (not from `officeguard "
                            "hash-code`); that code will never be accepted"
                        )
                        continue
                    self._entries.append(_Entry(user.name, zones, duress, stored))
                    self._pending.append(len(self._entries) - 1)

    def __repr__(self) -> str:
        return f"Authenticator(codes={len(self._entries)})"

    def _tag(self, code: str) -> bytes:
        return hmac.new(self._key, code.encode("utf-8"), hashlib.sha256).digest()

    @property
    def verifications(self) -> int:
        """How many scrypt checks ran so far (for tests and the benchmark)."""
        return self._verifications

    def identify(self, code: object) -> Match | None:
        """The user whose code (or duress code) this is, or None. Never raises.

        Anything but 4-8 digits is None at once. A known code costs one HMAC; an unknown one
        one scrypt check per hashed code not yet seen (tens of ms each on a Pi: run this in an
        executor). Stops at the first match; config validation keeps codes unique.
        """
        if not isinstance(code, str) or not is_valid_code(code):
            return None
        tag = self._tag(code)
        with self._lock:
            idx = self._tags.get(tag)
            if idx is not None:
                return self._entries[idx].match()
            candidates = list(self._pending)
        for idx in candidates:
            entry = self._entries[idx]
            with self._lock:
                self._verifications += 1
            if entry.stored is not None and verify_code(code, entry.stored):
                with self._lock:
                    self._tags[tag] = idx
                    if idx in self._pending:
                        self._pending.remove(idx)
                return entry.match()
        return None


# ----------------------------------------------------------------------------- lockout


@dataclass
class _SourceState:
    failures: list[datetime] = field(default_factory=list)
    locked_until: datetime | None = None
    touched: datetime | None = None
    refused: int = 0  # attempts refused during the running lockout


class Lockout:
    """Wrong-code counter per source (a keypad id, a remote command channel). Pure: every call
    takes `now` (aware UTC) and nothing reads a clock.

    `limit` wrong codes with less than `window` between the first and the last lock the source
    for `duration`. A right code clears the count (`reset_on_success`, like most panels); note
    that someone who knows one valid code can then keep guessing others four at a time, but
    every wrong code is still reported (E461) to the security office.
    If the clock is stepped back, a lockout never lasts longer than `duration` from now.
    """

    def __init__(
        self,
        limit: int = 5,
        window: timedelta = timedelta(minutes=5),
        duration: timedelta = timedelta(minutes=5),
        *,
        reset_on_success: bool = True,
        max_sources: int = 1024,
    ):
        if limit < 1:
            raise ValueError("lockout limit must be at least 1")
        if window <= timedelta(0) or duration <= timedelta(0):
            raise ValueError("lockout window and duration must be positive")
        if max_sources < 1:
            raise ValueError("max_sources must be at least 1")
        self.limit = limit
        self.window = window
        self.duration = duration
        self.reset_on_success = reset_on_success
        self.max_sources = max_sources
        self._state: dict[str, _SourceState] = {}

    def __repr__(self) -> str:
        return (
            f"Lockout(limit={self.limit}, window={self.window}, duration={self.duration}, "
            f"sources={len(self._state)})"
        )

    def _get(self, source: str, now: datetime) -> _SourceState:
        st = self._state.get(source)
        if st is None:
            if len(self._state) >= self.max_sources:
                self._prune(now)
            st = self._state[source] = _SourceState()
        st.touched = now
        return st

    def _prune(self, now: datetime) -> None:
        """Forget sources with nothing to remember; if still too many, the least recently
        seen unlocked ones."""
        for src in list(self._state):
            st = self._state[src]
            self._forget_old(st, now)
            if not st.failures and st.locked_until is None:
                del self._state[src]
        if len(self._state) >= self.max_sources:
            unlocked = [s for s, st in self._state.items() if st.locked_until is None]
            unlocked.sort(key=lambda s: self._state[s].touched or now)
            for src in unlocked[: len(self._state) - self.max_sources + 1]:
                del self._state[src]

    def _forget_old(self, st: _SourceState, now: datetime) -> None:
        # a failure in the future means the clock was stepped back: count it as now
        st.failures = [min(t, now) for t in st.failures if now - t < self.window]
        if st.locked_until is not None:
            if st.locked_until <= now:
                st.locked_until = None
            elif st.locked_until - now > self.duration:
                st.locked_until = now + self.duration

    def check(self, source: str, now: datetime) -> datetime | None:
        """When the source is locked now: the instant the lockout ends; else None."""
        st = self._state.get(source)
        if st is None or st.locked_until is None:
            return None
        if st.locked_until <= now:
            return None
        if st.locked_until - now > self.duration:
            st.locked_until = now + self.duration
        return st.locked_until

    def failures(self, source: str, now: datetime) -> int:
        """Wrong codes from this source counted toward a lockout at `now`."""
        st = self._state.get(source)
        if st is None:
            return 0
        return sum(1 for t in st.failures if now - t < self.window)

    def failure(self, source: str, now: datetime) -> bool:
        """Count one wrong code; True when this one starts a lockout. A failure while the
        source is already locked is not counted and does not extend the lockout."""
        if self.check(source, now) is not None:
            return False
        st = self._get(source, now)
        self._forget_old(st, now)
        st.failures.append(now)
        if len(st.failures) >= self.limit:
            st.failures.clear()
            st.locked_until = now + self.duration
            return True
        return False

    def success(self, source: str, now: datetime) -> None:
        """A right code from this source: clears its count (not a running lockout)."""
        st = self._state.get(source)
        if st is None or not self.reset_on_success or self.check(source, now) is not None:
            return
        st.failures.clear()

    def next_due(self) -> datetime | None:
        """The earliest instant a lockout ends (for the daemon's timer), or None."""
        ends = [st.locked_until for st in self._state.values() if st.locked_until is not None]
        return min(ends) if ends else None

    def refused(self, source: str) -> None:
        """One more attempt refused because the source is locked (reported when it ends)."""
        st = self._state.get(source)
        if st is not None and st.locked_until is not None:
            st.refused += 1

    def expire(self, now: datetime) -> list[str]:
        """Sources whose lockout has ended by `now`, each reported once."""
        return [src for src, _ in self.expire_counted(now)]

    def expire_counted(self, now: datetime) -> list[tuple[str, int]]:
        """Like `expire`, with how many attempts each source had refused while locked."""
        ended = []
        for src, st in list(self._state.items()):
            if st.locked_until is not None and st.locked_until <= now:
                ended.append((src, st.refused))
                del self._state[src]
        return ended

    def clock_stepped(self, delta: timedelta) -> None:
        """The wall clock was stepped by `delta` while no real time passed: counted wrong codes
        and running lockouts keep their age and length (a step forward must not end a lockout
        early, nor a step back stretch it)."""
        for st in self._state.values():
            st.failures = [t + delta for t in st.failures]
            if st.locked_until is not None:
                st.locked_until += delta

    def snapshot(self) -> dict[str, dict[str, object]]:
        """What must survive a restart or a reload (kept by the journal): counted wrong codes
        and running lockouts, so that power-cycling the panel does not reset the count."""
        return {
            src: {
                "failures": [t.isoformat() for t in st.failures],
                "locked_until": st.locked_until.isoformat() if st.locked_until else None,
                "refused": st.refused,
            }
            for src, st in sorted(self._state.items())
            if st.failures or st.locked_until is not None
        }

    def restore(self, saved: object, now: datetime) -> None:
        """Take back a `snapshot()`; anything unreadable is ignored (never locks anyone out)."""
        if not isinstance(saved, dict):
            return
        for src, data in list(saved.items())[: self.max_sources]:
            try:
                failures = [datetime.fromisoformat(t) for t in data.get("failures", [])]
                until = data.get("locked_until")
                st = _SourceState(
                    failures=[t for t in failures if t.tzinfo is not None][-self.limit :],
                    locked_until=datetime.fromisoformat(until) if until else None,
                    touched=now,
                    refused=max(0, int(data.get("refused", 0) or 0)),
                )
            except (AttributeError, TypeError, ValueError):
                continue
            if st.locked_until is not None and st.locked_until.tzinfo is None:
                continue
            self._forget_old(st, now)
            if st.failures or st.locked_until is not None:
                self._state[str(src)] = st

    def locked(self, now: datetime) -> dict[str, datetime]:
        """Every source locked at `now`, with the instant its lockout ends (for `status`)."""
        out = {}
        for src in self._state:
            until = self.check(src, now)
            if until is not None:
                out[src] = until
        return out


# ----------------------------------------------------------------------------- decisions


@dataclass(frozen=True)
class Attempt:
    """What someone asked for, without the code.

    source: the keypad id, or the remote channel ("mqtt", "mqtt:<client>", "cli");
    channel: "keypad", "mqtt", "cli" (reported in event detail);
    action: "toggle" (keypad `CODE#`), "arm" (with mode, default away) or "disarm";
    zones: the zones asked for (a keypad's zones, or a command's zone);
    partial: True to operate the permitted part of `zones` (keypad); False to refuse the
             whole attempt unless every zone is permitted (remote commands).
    """

    source: str
    zones: tuple[str, ...]
    action: Action = "toggle"
    mode: Mode | None = None
    channel: Channel = "keypad"
    partial: bool = False

    def __post_init__(self) -> None:
        object.__setattr__(self, "zones", tuple(self.zones))
        if self.action not in ACTIONS:
            raise ValueError(f"unknown action {self.action!r} (toggle, arm, disarm)")
        if self.mode is not None and self.mode not in MODES:
            raise ValueError(f"unknown arming mode {self.mode!r} (away, home, night)")
        if not self.zones or not all(isinstance(z, str) for z in self.zones):
            raise ValueError("an attempt names at least one zone")


Sound = Literal["key", "accept", "refuse"]


@dataclass(frozen=True)
class Decision:
    """What to do about an attempt. kind "arm" (with mode) or "disarm" on `zones` by `user`;
    or "refused" with a `reason`. `events` are for the journal (refusals, lockout, duress);
    the engine adds the arm/disarm events when the daemon applies the decision.
    `duress` decisions must be carried out exactly like the normal code's, with no siren and
    the same `accept` beep; only the `duress` event in `events` tells them apart."""

    kind: Literal["arm", "disarm", "refused"]
    source: str
    channel: Channel
    zones: tuple[str, ...] = ()
    mode: Mode | None = None
    user: str | None = None
    duress: bool = False
    reason: Reason | None = None
    locked_until: datetime | None = None
    events: tuple[EventDraft, ...] = ()

    @property
    def ok(self) -> bool:
        return self.kind != "refused"

    @property
    def sound(self) -> Sound:
        """The keypad buzzer's answer: `accept` for arm/disarm (duress too), else `refuse`."""
        return "accept" if self.ok else "refuse"


def _minutes(td: timedelta) -> str:
    return f"{td.total_seconds() / 60:g}"


class AccessGate:
    """Pure decision-maker shared by the keypad and remote commands.

    Flow for one attempt:
      1. `precheck(source, channel, now)`: a refusal if the source is locked (then do not
         verify the code at all), else None;
      2. `match = await loop.run_in_executor(None, authenticator.identify, code)`;
      3. `decide(attempt, match, now, zone_states)` -> Decision; counts the failure or clears
         the count, checks the lockout again (another attempt may have locked it meanwhile),
         checks zone permissions, resolves `toggle` from the zone states, adds events.
    A command that comes with no code at all (or an empty one) is `refuse_entry("no_code")`:
    refused and logged, but not a wrong code toward the lockout. `tick(now)` at `next_due()` reports lockouts that ended.
    """

    def __init__(self, lockout: Lockout | None = None, *, lang: str = "vi", tz: tzinfo = UTC):
        self.lockout = lockout if lockout is not None else Lockout()
        self.lang = lang
        self.tz = tz

    def __repr__(self) -> str:
        return f"AccessGate({self.lockout!r}, lang={self.lang!r})"

    # -- events

    def _event(
        self,
        kind: str,
        now: datetime,
        key: str,
        fields: Mapping[str, object],
        detail: Mapping[str, object],
        *,
        code: str | None = None,
        user: str | None = None,
        zones: Sequence[str] = (),
    ) -> EventDraft:
        text = texts.render(self.lang, key, **fields)
        return EventDraft(
            kind=kind,
            ts=now,
            text=text,
            cid=code,
            zone=zones[0] if len(zones) == 1 else None,
            user=user,
            detail=dict(detail),
        )

    def _until(self, until: datetime) -> str:
        return until.astimezone(self.tz).strftime("%H:%M:%S")

    def _refusal(
        self,
        reason: Reason,
        source: str,
        channel: Channel,
        now: datetime,
        zones: tuple[str, ...],
        *,
        user: str | None = None,
        locked_until: datetime | None = None,
        extra: tuple[EventDraft, ...] = (),
    ) -> Decision:
        detail: dict[str, object] = {"source": source, "channel": channel, "reason": reason}
        if zones:
            detail["zones"] = list(zones)
        if locked_until is not None:
            detail["locked_until"] = locked_until.isoformat()
        fields = {
            "source": source,
            "user": user or "?",
            "zones": ", ".join(zones),
            "until": self._until(locked_until) if locked_until is not None else "",
        }
        ev = self._event("system", now, f"access.{reason}", fields, detail, user=user, zones=zones)
        return Decision(
            "refused",
            source,
            channel,
            zones,
            user=user,
            reason=reason,
            locked_until=locked_until,
            events=(ev, *extra),
        )

    # -- steps

    def precheck(
        self, source: str, channel: Channel, now: datetime, zones: Sequence[str] = ()
    ) -> Decision | None:
        """A `locked_out` refusal when the source is locked at `now`, else None. It carries no
        event: the attempt is counted, and the lockout's end reports the count."""
        until = self.lockout.check(source, now)
        if until is None:
            return None
        self.lockout.refused(source)
        refused = self._refusal(
            "locked_out", source, channel, now, tuple(zones), locked_until=until
        )
        return replace(refused, events=())

    def busy(self, source: str, channel: Channel, zones: Sequence[str] = ()) -> Decision:
        """A refusal for an attempt that found too many others from its source waiting for
        their code check: not checked, not counted, and no event (a flood's own)."""
        return Decision("refused", source, channel, tuple(zones), reason="busy")

    def refuse_entry(
        self,
        reason: Reason,
        source: str,
        channel: Channel,
        now: datetime,
        zones: Sequence[str] = (),
    ) -> Decision:
        """A refusal decided before any code was checked (keypad timeout, too long, too short,
        bad mode, no code at all). Not counted toward the lockout: no code was tried."""
        if reason not in REASONS:
            raise ValueError(f"unknown reason {reason!r}")
        return self._refusal(reason, source, channel, now, tuple(zones))

    def decide(
        self,
        attempt: Attempt,
        match: Match | None,
        now: datetime,
        zone_states: Mapping[str, str] | None = None,
    ) -> Decision:
        """The decision for an attempt whose code was identified as `match` (None: wrong code).

        zone_states (zone id -> Home Assistant state) is needed for `toggle`: disarm when any
        permitted zone is arming, armed, pending or triggered; otherwise arm away. A zone
        missing from it counts as disarmed.
        """
        src, ch, zones = attempt.source, attempt.channel, attempt.zones
        locked = self.precheck(src, ch, now, zones)
        if locked is not None:
            return locked
        if match is None:
            failures = self.lockout.failures(src, now) + 1
            started = self.lockout.failure(src, now)
            until = self.lockout.check(src, now)
            wrong = self._event(
                "system",
                now,
                "access.wrong_code",
                {"source": src, "failures": failures, "limit": self.lockout.limit},
                {
                    "source": src,
                    "channel": ch,
                    "reason": "wrong_code",
                    "failures": failures,
                    "limit": self.lockout.limit,
                    "zones": list(zones),
                },
                code=cid(461),
                zones=zones,
            )
            events = [wrong]
            if started and until is not None:
                events.append(
                    self._event(
                        "keypad_lockout",
                        now,
                        "access.lockout",
                        {
                            "source": src,
                            "minutes": _minutes(self.lockout.duration),
                            "failures": failures,
                        },
                        {
                            "source": src,
                            "channel": ch,
                            "failures": failures,
                            "locked_until": until.isoformat(),
                        },
                        zones=zones,
                    )
                )
            return Decision(
                "refused",
                src,
                ch,
                zones,
                reason="wrong_code",
                locked_until=until,
                events=tuple(events),
            )

        self.lockout.success(src, now)
        permitted = match.permitted(zones)
        if not attempt.partial and len(permitted) != len(zones):
            permitted = ()
        duress_events: tuple[EventDraft, ...] = ()
        if match.duress:
            # reported even if the attempt is refused: the person at the keypad is in danger
            duress_events = (
                self._event(
                    "duress",
                    now,
                    "access.duress",
                    {"source": src, "user": match.user},
                    {
                        "source": src,
                        "channel": ch,
                        "zones": list(permitted or zones),
                        "action": attempt.action,
                        "silent": True,
                    },
                    code=cid(121),
                    user=match.user,
                    zones=permitted or zones,
                ),
            )
        if not permitted:
            refused = self._refusal(
                "not_permitted", src, ch, now, zones, user=match.user, extra=duress_events
            )
            return replace(refused, duress=match.duress)
        action = attempt.action
        if action == "toggle":
            states = zone_states or {}
            active = any(_is_active(states.get(z)) for z in permitted)
            action = "disarm" if active else "arm"
            mode: Mode | None = None if active else "away"
        else:
            mode = (attempt.mode or "away") if action == "arm" else None
        return Decision(
            "arm" if action == "arm" else "disarm",
            src,
            ch,
            permitted,
            mode=mode,
            user=match.user,
            duress=match.duress,
            events=duress_events,
        )

    def next_due(self) -> datetime | None:
        """When `tick` has something to report (a lockout ends), or None."""
        return self.lockout.next_due()

    def tick(self, now: datetime) -> list[EventDraft]:
        """`system` events for lockouts that ended by `now`, each with the number of attempts
        refused while it ran."""
        return [
            self._event(
                "system",
                now,
                "access.unlocked_refused" if refused else "access.unlocked",
                {"source": src, "refused": refused},
                {"source": src, "reason": "lockout_ended", "refused": refused},
            )
            for src, refused in self.lockout.expire_counted(now)
        ]


def _is_active(state: str | None) -> bool:
    return state is not None and (state in ACTIVE_STATES or state.startswith("armed_"))
