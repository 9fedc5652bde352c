"""Remote commands from the security office or Home Assistant, checked before anything happens.

Two topics carry commands (P = <topic_prefix>/<site>):

- `P/cmd`: `{"id": "...", "action": "arm"|"disarm"|"bypass"|"unbypass"|"silence",
  "zone": "..." or "zones": [...], "mode": "away"|"home"|"night", "sensor": "...",
  "force": bool, "code": "..."}`; the answer goes to `P/cmd/result` as
  `{"id": ..., "ok": bool, "error": "..."}`.
- `P/zone/<zone>/set`: Home Assistant's alarm panel format, `{"action": "ARM_AWAY"|"ARM_HOME"|
  "ARM_NIGHT"|"DISARM", "code": "..."}` (the plain text `ARM_AWAY` is understood too, but has
  no code, so it is refused).

This module is pure: it turns a payload into a `Command` or a `CommandError` with a plain reason,
and checks the optional signature. A site may set a key (`mqtt.command_key_file`): a command then
carries `ts` (Unix seconds or ISO 8601), `nonce` and `sig`, the lowercase hex HMAC-SHA256 with
that key of

    <topic> + "\\n" + <the command's JSON without "sig", keys sorted, separators "," and ":",
                      non-ASCII kept as UTF-8>

A signed command outside the time window, or whose nonce was already seen inside the window, is
refused (replay), and so is one older than the last signed command accepted (less the window),
whatever the clock says: nonces and that time are kept in the logbook across restarts
(`snapshot`/`restore`), so neither a restart nor a clock that comes up wrong lets a captured
command run again. With `mqtt.require_signature` (the default) a command that lowers the site's
protection (`SIGNED_ONLY`: disarm, bypass, silence) is refused unless it is signed; arming and
unbypassing may come with a code alone. No error or result ever contains the code.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import re
from collections import OrderedDict
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Literal

from controller.errors import OfficeGuardError

MAX_PAYLOAD = 4096  # bytes; a command is a few hundred
MAX_ID = 64
MAX_NONCE = 64
MAX_ZONES = 64
# actions that lower the site's protection: with require_signature they must be signed
SIGNED_ONLY = frozenset({"disarm", "bypass", "silence"})

CmdAction = Literal["arm", "disarm", "bypass", "unbypass", "silence"]
CMD_ACTIONS: tuple[CmdAction, ...] = ("arm", "disarm", "bypass", "unbypass", "silence")
MODES = ("away", "home", "night")
# Home Assistant's alarm panel actions we support, and the arming mode each means
HA_ACTIONS: dict[str, tuple[CmdAction, str | None]] = {
    "ARM_AWAY": ("arm", "away"),
    "ARM_HOME": ("arm", "home"),
    "ARM_NIGHT": ("arm", "night"),
    "DISARM": ("disarm", None),
}
_IDENT = re.compile(r"[A-Za-z0-9_.:-]{1,64}")
_NONCE = re.compile(r"[A-Za-z0-9_.:+/=-]{8,64}")
_HEX64 = re.compile(r"[0-9a-f]{64}")


class CommandError(OfficeGuardError, ValueError):
    """A command that cannot be carried out. `str()` is safe to publish: it never holds a code.
    `cmd_id` is the command's correlation id when it could be read."""

    def __init__(self, reason: str, cmd_id: str | None = None):
        super().__init__(reason)
        self.reason = reason
        self.cmd_id = cmd_id


@dataclass(frozen=True)
class Command:
    id: str | None
    action: CmdAction
    zones: tuple[str, ...] = ()
    mode: str | None = None
    sensor: str | None = None
    force: bool = False
    code: str | None = None
    signed: bool = False

    def __repr__(self) -> str:  # never show the code, even in a traceback
        return (
            f"Command(id={self.id!r}, action={self.action!r}, zones={self.zones!r}, "
            f"mode={self.mode!r}, sensor={self.sensor!r}, force={self.force!r}, "
            f"code={'***' if self.code else None}, signed={self.signed!r})"
        )


# ----------------------------------------------------------------------------- parsing


def _load(payload: bytes) -> Any:
    if len(payload) > MAX_PAYLOAD:
        raise CommandError(f"command too large ({len(payload)} bytes, at most {MAX_PAYLOAD})")
    try:
        text = payload.decode("utf-8")
    except UnicodeDecodeError:
        raise CommandError("command is not UTF-8 text") from None
    try:
        return json.loads(text)
    except (json.JSONDecodeError, RecursionError):
        return text.strip()  # Home Assistant's plain "ARM_AWAY"; refused below unless allowed


def _read_id(obj: dict[str, Any]) -> str | None:
    cid = obj.get("id")
    if cid is None:
        return None
    if isinstance(cid, bool) or not isinstance(cid, str | int):
        raise CommandError("id must be a string")
    cid = str(cid)
    # printable text that goes back out as UTF-8 (a lone surrogate is neither)
    if not 1 <= len(cid) <= MAX_ID or not cid.isprintable():
        raise CommandError(f"id must be 1 to {MAX_ID} printable characters")
    return cid


def peek_id(obj: Any) -> str | None:
    """The command's id when it is a good one, else None (for a refusal's answer)."""
    if not isinstance(obj, dict):
        return None
    try:
        return _read_id(obj)
    except CommandError:
        return None


def _code(obj: dict[str, Any], cmd_id: str | None) -> str | None:
    code = obj.get("code")
    if code is None:
        return None
    if isinstance(code, bool) or not isinstance(code, str | int):
        raise CommandError("code must be a string of digits", cmd_id)
    return str(code)


def _ident(value: Any, what: str, cmd_id: str | None) -> str:
    if not isinstance(value, str) or not _IDENT.fullmatch(value):
        raise CommandError(f"{what} must be a name like 'finance' or 'door.director'", cmd_id)
    return value


def parse_cmd(payload: bytes) -> tuple[Command, dict[str, Any]]:
    """A `P/cmd` payload → the command and the raw object (for the signature check)."""
    obj = _load(payload)
    if not isinstance(obj, dict):
        raise CommandError("command must be a JSON object")
    cmd_id = _read_id(obj)
    action = obj.get("action")
    if not isinstance(action, str) or action.lower() not in CMD_ACTIONS:
        raise CommandError(f"action must be one of {', '.join(CMD_ACTIONS)}", cmd_id)
    act: CmdAction = action.lower()  # type: ignore[assignment]
    zones: tuple[str, ...] = ()
    if "zones" in obj and obj["zones"] is not None:
        raw = obj["zones"]
        if not isinstance(raw, list) or not raw or len(raw) > MAX_ZONES:
            raise CommandError("zones must be a non-empty list of zone names", cmd_id)
        zones = tuple(_ident(z, "zone", cmd_id) for z in raw)
    if "zone" in obj and obj["zone"] is not None:
        zones = (*zones, _ident(obj["zone"], "zone", cmd_id))
    zones = tuple(dict.fromkeys(zones))
    sensor = None
    if act in ("bypass", "unbypass"):
        sensor = _ident(obj.get("sensor"), "sensor", cmd_id)
    elif not zones:
        raise CommandError(f"{act} needs a zone", cmd_id)
    mode = obj.get("mode")
    if act == "arm":
        mode = "away" if mode is None else mode
        if mode not in MODES:
            raise CommandError("mode must be away, home or night", cmd_id)
    elif mode is not None:
        raise CommandError(f"mode only goes with arm, not {act}", cmd_id)
    force = obj.get("force", False)
    if not isinstance(force, bool):
        raise CommandError("force must be true or false", cmd_id)
    cmd = Command(cmd_id, act, zones, mode, sensor, force, _code(obj, cmd_id), "sig" in obj)
    return cmd, obj


def parse_zone_set(zone: str, payload: bytes) -> tuple[Command, dict[str, Any] | None]:
    """A Home Assistant `P/zone/<zone>/set` payload → the command (and the raw object)."""
    obj = _load(payload)
    raw: dict[str, Any] | None
    action: Any
    code: str | None
    if isinstance(obj, str):
        action, code, raw = obj, None, None
    elif isinstance(obj, dict):
        action, raw = obj.get("action"), obj
        code = _code(obj, _read_id(obj))
    else:
        raise CommandError("command must be a JSON object or an action name")
    cmd_id = _read_id(raw) if raw is not None else None
    if not isinstance(action, str) or action.upper() not in HA_ACTIONS:
        raise CommandError(f"action must be one of {', '.join(HA_ACTIONS)}", cmd_id)
    act, mode = HA_ACTIONS[action.upper()]
    return Command(
        cmd_id, act, (zone,), mode, code=code, signed=raw is not None and "sig" in raw
    ), raw


# ----------------------------------------------------------------------------- signatures


def canonical(topic: str, obj: dict[str, Any]) -> bytes:
    body = {k: v for k, v in obj.items() if k != "sig"}
    text = json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return f"{topic}\n{text}".encode()


def sign(key: bytes, topic: str, obj: dict[str, Any]) -> str:
    """The signature a sender puts in `sig` (used by tools and tests)."""
    return hmac.new(key, canonical(topic, obj), hashlib.sha256).hexdigest()


def _timestamp(value: Any) -> datetime:
    if isinstance(value, bool):
        raise ValueError
    if isinstance(value, int | float):
        return datetime.fromtimestamp(float(value), UTC)
    if isinstance(value, str):
        ts = datetime.fromisoformat(value)
        if ts.tzinfo is None:
            raise ValueError
        return ts
    raise ValueError


class CommandVerifier:
    """Checks signatures, the time window and nonces. Time is passed in; nonces are remembered
    for the window (a bounded number of them), so a replayed command is refused, and so is a
    signed command older than the last one accepted less the window (a clock that came up
    wrong after a restart). `snapshot()`/`restore()` carry both across restarts.

    `required`: SIGNED_ONLY actions must be signed. Without a key they are then all refused
    (a site whose key is not made yet); everything else still works with a code."""

    def __init__(
        self,
        key: bytes | None,
        *,
        required: bool,
        window: timedelta = timedelta(seconds=60),
        max_nonces: int = 10_000,
    ) -> None:
        self.key = key
        self.required = required
        self.window = window
        self.max_nonces = max_nonces
        self._seen: OrderedDict[str, datetime] = OrderedDict()
        self.off_reason: str | None = None
        self.last_accepted: datetime | None = None  # the newest `ts` of a signed command taken

    def refusing(
        self, reason: str = "remote commands are off: the command key cannot be read"
    ) -> CommandVerifier:
        """This verifier refuses every command (the key file is configured but unusable)."""
        self.off_reason = reason
        return self

    def verify(self, topic: str, cmd: Command, raw: dict[str, Any] | None, now: datetime) -> None:
        """Raise CommandError unless the command may go on to the code check."""
        if self.off_reason is not None:
            raise CommandError(self.off_reason, cmd.id)
        signed = raw is not None and "sig" in raw
        if not signed:
            if self.required and cmd.action in SIGNED_ONLY:
                if self.key is None:
                    raise CommandError(
                        f"{cmd.action} must be signed, and this site has no command key yet"
                        " (mqtt.command_key_file)",
                        cmd.id,
                    )
                raise CommandError(f"command must be signed ({cmd.action})", cmd.id)
            return
        assert raw is not None
        if self.key is None:
            raise CommandError("this site takes no signed commands (no command key)", cmd.id)
        sig = raw.get("sig")
        if not isinstance(sig, str) or not _HEX64.fullmatch(sig):
            raise CommandError("sig must be 64 lowercase hex digits", cmd.id)
        if not hmac.compare_digest(sig, sign(self.key, topic, raw)):
            raise CommandError("bad signature", cmd.id)
        try:
            ts = _timestamp(raw.get("ts"))
        except (ValueError, OverflowError, OSError):
            raise CommandError(
                "a signed command needs ts (Unix seconds or ISO 8601)", cmd.id
            ) from None
        if abs(now - ts) > self.window:
            raise CommandError(
                f"command time outside the {self.window.total_seconds():g} s window", cmd.id
            )
        if self.last_accepted is not None and ts < self.last_accepted - self.window:
            raise CommandError(
                "replayed command (older than a signed command already accepted)", cmd.id
            )
        nonce = raw.get("nonce")
        if not isinstance(nonce, str) or not _NONCE.fullmatch(nonce):
            raise CommandError("a signed command needs a nonce of 8 to 64 characters", cmd.id)
        self._forget(now)
        if nonce in self._seen:
            raise CommandError("replayed command (nonce already used)", cmd.id)
        self._seen[nonce] = now
        while len(self._seen) > self.max_nonces:
            self._seen.popitem(last=False)
        if self.last_accepted is None or ts > self.last_accepted:
            self.last_accepted = ts

    def snapshot(self) -> dict[str, Any]:
        """What must survive a restart (kept in the logbook): the nonces still inside their
        window and the time of the newest signed command accepted."""
        return {
            "nonces": {n: t.isoformat() for n, t in self._seen.items()},
            "last_accepted": self.last_accepted.isoformat() if self.last_accepted else None,
        }

    def restore(self, saved: object) -> None:
        """Take back a `snapshot()`; anything unreadable is skipped."""
        if not isinstance(saved, dict):
            return
        nonces = saved.get("nonces")
        if isinstance(nonces, dict):
            for nonce, at in list(nonces.items())[-self.max_nonces :]:
                try:
                    t = datetime.fromisoformat(at)
                except (TypeError, ValueError):
                    continue
                if t.tzinfo is not None and isinstance(nonce, str):
                    self._seen[nonce] = t
        last = saved.get("last_accepted")
        try:
            ts = datetime.fromisoformat(last) if isinstance(last, str) else None
        except ValueError:
            ts = None
        if ts is not None and ts.tzinfo is not None:
            self.last_accepted = ts

    def _forget(self, now: datetime) -> None:
        # a nonce older than twice the window can no longer pass the time check
        while self._seen:
            nonce, seen = next(iter(self._seen.items()))
            if now - seen <= 2 * self.window:
                break
            self._seen.popitem(last=False)
