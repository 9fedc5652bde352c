"""Remote commands over MQTT: `P/cmd` and Home Assistant's `P/zone/<zone>/set`.

Before anything else a message must pass the rate limits of `controller.remote.guard` (per
topic, and for all command topics together): over them it is dropped and counted, unparsed and
unanswered. A retained message on a command topic is ignored (the link drops it). Each command
is then parsed and checked (`controller.remote.commands`: size, JSON, types, known action, id, HMAC
signature with time window and nonce; with `require_signature`, the default, disarm, bypass and
silence must be signed), then carried out by the site (`Site.operate`) exactly like a code typed at the CLI:
the user's code is checked in a worker thread, with the same permissions and duress rules.
Lockout sources: unsigned MQTT is one source (a broker does not say who published), commands
signed with the site's key another, so junk on the unsigned path never locks out the office's
signed console. The answer goes to `P/cmd/result` as `{"id", "ok", "error"?}`, as a "bulk"
message that cannot take the link's in-flight window from events; it never contains the code.
Refusals decided before a code check (malformed, busy) are answered within a budget, then only
counted. A topic flooded far over its rate is not listened to for a while (unsubscribed at the
broker, 5 s doubling to 60 s while the flood lasts; a trouble says so), so that the broker, not
the alarm's loop, drops the flood. A malformed or refused command changes nothing.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections import Counter
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from controller.control import ControlError
from controller.remote.commands import (
    SIGNED_ONLY,
    Command,
    CommandError,
    CommandVerifier,
    parse_cmd,
    parse_zone_set,
)
from controller.remote.guard import CommandGuard, FloodDetector
from controller.reporting.mqtt import MqttConfigError, MqttLink, read_secret

if TYPE_CHECKING:
    from controller.site import Site

log = logging.getLogger(__name__)

MAX_PENDING = 16  # commands waiting for their code check; more are refused as busy
CHANNEL = "mqtt"
UNSIGNED = "mqtt"  # the lockout source of every unsigned command
SIGNED = "mqtt:signed"  # ... of commands signed with the site's key
STATE_KEY = "commands"  # the logbook's record of nonces and the last signed command's time


class RemoteCommands:
    def __init__(
        self, site: Site, link: MqttLink, on_trouble: Callable[[], None] = lambda: None
    ) -> None:
        self.site = site
        self._on_trouble = on_trouble  # a trouble raised or cleared: the office must see it
        self.link = link
        self.prefix = link.prefix
        self.result_topic = f"{self.prefix}/cmd/result"
        self.counts: Counter[str] = Counter()
        self._pending: set[asyncio.Task[Any]] = set()
        self.guard = CommandGuard(time.monotonic)
        self.flood = FloodDetector(time.monotonic)
        self._resume_timers: dict[str, asyncio.TimerHandle] = {}
        self.verifier = self._verifier(self._saved_nonces())

    def _saved_nonces(self) -> object:
        journal = self.site.logbook
        return journal.load_state(STATE_KEY) if journal is not None else None

    def _verifier(self, saved: object) -> CommandVerifier:
        verifier = self._make_verifier()
        verifier.restore(saved)  # a restart or reload: nonces already used stay used
        m = self.site.config.mqtt
        if m.require_signature and verifier.key is None and verifier.off_reason is None:
            log.warning(
                "remote commands: no command key (mqtt.command_key_file): %s commands are"
                " refused until the site has one (see docs/security.md)",
                ", ".join(sorted(SIGNED_ONLY)),
            )
        return verifier

    def _make_verifier(self) -> CommandVerifier:
        m = self.site.config.mqtt
        key: bytes | None = None
        self.site.trouble_board.clear("command_key")
        try:
            secret = read_secret(m.command_key_file, "command key file")
            key = secret.encode() if secret else None
            if m.command_key_file is not None and not key:
                raise MqttConfigError(f"the command key file {m.command_key_file} is empty")
        except MqttConfigError as e:
            # commands are refused (signed ones, or all when signatures are required), the
            # alarm keeps working, and the office sees why
            log.error("remote commands: %s", e)
            self.site.trouble_board.raise_(
            "command_key",
            {
                "source": "command_key",
                "cid": "E300",
                "what": str(e),
            },
        )
            return CommandVerifier(None, required=False, window=m.signature_window).refusing()
        return CommandVerifier(key, required=m.require_signature, window=m.signature_window)

    @property
    def cmd_filter(self) -> str:
        return f"{self.prefix}/cmd"

    @property
    def zone_filter(self) -> str:
        return f"{self.prefix}/zone/+/set"

    def start(self) -> None:
        # a command left retained on the broker would otherwise run again at every start
        self.link.subscribe(self.cmd_filter, self._on_cmd, retained=False)
        self.link.subscribe(self.zone_filter, self._on_zone_set, retained=False)

    def _pause(self, flt: str) -> None:
        """A flood on `flt`: unsubscribe for a while, and say so (one log line and a trouble
        per pause, never one per message)."""
        if flt in self._resume_timers:
            return
        seconds = self.flood.pause_for(flt)
        self.link.pause(flt)
        self.counts["paused"] += 1
        log.warning(
            "remote commands: %s is flooded (far over %s): not listening to it for %g s;"
            " the alarm is not affected, remote commands on it are lost meanwhile",
            flt,
            "its rate limit",
            seconds,
        )
        self.site.trouble_board.raise_(
            "command_flood",
            {
            "source": "commands",
            "cid": "E350",
            "what": f"command flood on {flt}: commands paused",
        },
        )
        self._state_changed()
        loop = asyncio.get_running_loop()
        self._resume_timers[flt] = loop.call_later(seconds, self._resume, flt)

    def _state_changed(self) -> None:
        self._on_trouble()

    def _resume(self, flt: str) -> None:
        self._resume_timers.pop(flt, None)
        self.flood.resumed(flt)
        self.link.resume(flt)
        if not self._resume_timers:
            self.site.trouble_board.clear("command_flood")
            self._state_changed()

    def reload(self) -> None:
        """The configuration changed (SIGHUP): read the key and the signature rules again."""
        self.verifier = self._verifier(self.verifier.snapshot())

    def status(self) -> dict[str, Any]:
        dropped = {k: v for k, v in self.guard.counts.items() if k != "received"}
        paused = sorted(self.link.paused)
        return {"pending": len(self._pending), **self.counts, **dropped, "not_listening": paused}

    # ------------------------------------------------------------------ incoming

    def _on_cmd(self, topic: str, payload: bytes) -> None:
        self._spawn(topic, payload, None)

    def _on_zone_set(self, topic: str, payload: bytes) -> None:
        zone = topic[len(self.prefix) + len("/zone/") : -len("/set")]
        self._spawn(topic, payload, zone)

    def _meter_key(self, topic: str, zone: str | None) -> str:
        # a zone the site does not have shares one bucket: made-up topics get no burst each
        if zone is not None and zone not in self.site.engine.zones:
            return f"{self.prefix}/zone/?/set"
        return topic

    def _spawn(self, topic: str, payload: bytes, zone: str | None) -> None:
        key = self._meter_key(topic, zone)
        if not self.guard.admit(key):
            # over the rate: not parsed, not answered, counted; a flood: not listened to
            flt = self.cmd_filter if zone is None else self.zone_filter
            if self.flood.dropped(flt):
                self._pause(flt)
            return
        self.counts["received"] += 1
        try:
            cmd, source = self.check(topic, payload, zone)
        except CommandError as e:
            self._refuse_early(key, e.cmd_id, e.reason, "malformed")
            return
        if len(self._pending) >= MAX_PENDING:
            self._refuse_early(key, cmd.id, "busy: too many commands waiting, try again", "busy")
            return
        task = asyncio.get_running_loop().create_task(self.carry_out(cmd, source))
        self._pending.add(task)
        task.add_done_callback(self._task_done)

    def _task_done(self, task: asyncio.Task[Any]) -> None:
        self._pending.discard(task)
        if not task.cancelled() and task.exception() is not None:
            log.error("remote command task failed", exc_info=task.exception())

    def check(self, topic: str, payload: bytes, zone: str | None) -> tuple[Command, str]:
        """Parse and verify one command: the command and its lockout source, or CommandError.
        A signed command's nonce goes to the logbook in the commit of this loop turn, before
        any event the command causes: on disk before anything of the command reaches the
        office, without an fsync on the loop thread (docs/security.md)."""
        raw: dict[str, Any] | None
        if zone is None:
            cmd, raw = parse_cmd(payload)
        else:
            cmd, raw = parse_zone_set(zone, payload)
        self.verifier.verify(topic, cmd, raw, self.site.clock.now())
        if cmd.signed:
            journal = self.site.logbook
            if journal is not None:
                journal.stage_state(STATE_KEY, self.verifier.snapshot())
            return cmd, SIGNED
        if not cmd.code:
            # no code, nothing to check: answered, never an event (a flood of them would be)
            raise CommandError("a code is required", cmd.id)
        return cmd, UNSIGNED

    async def handle(self, topic: str, payload: bytes, zone: str | None) -> dict[str, Any]:
        """Check and carry out one command; publish and return its result (no rate limit:
        for tests and tools that call it directly)."""
        try:
            cmd, source = self.check(topic, payload, zone)
        except CommandError as e:
            return self._refuse(e.cmd_id, e.reason, "malformed")
        return await self.carry_out(cmd, source)

    async def carry_out(self, cmd: Command, source: str) -> dict[str, Any]:
        try:
            outcome = await self.site.operate(cmd, CHANNEL, source)
        except ControlError as e:  # a sentence in the site's language, and its stable key
            return self._refuse(cmd.id, str(e), "refused", e.reason)
        except Exception:  # never let one command take the daemon down
            log.exception("remote command %s %s failed", cmd.id, cmd.action)
            return self._refuse(cmd.id, "internal error", "failed")
        self.counts["done"] += 1
        log.info("remote command %s %s done", cmd.id or "-", cmd.action)
        return self._answer({"id": cmd.id, "ok": True, "action": cmd.action, **outcome})

    def _refuse_early(self, key: str, cmd_id: str | None, error: str, count: str) -> None:
        """A refusal before any code check: counted, summarised in the log, and answered
        only within the answer budget (a flood of junk gets no reply per message)."""
        self.counts[count] += 1
        self.guard.note(count)
        if self.guard.may_answer(key):
            self._answer({"id": cmd_id, "ok": False, "error": error})

    def _refuse(
        self, cmd_id: str | None, error: str, count: str, reason: str | None = None
    ) -> dict[str, Any]:
        self.counts[count] += 1
        log.warning("remote command %s refused: %s", cmd_id or "-", error)
        result: dict[str, Any] = {"id": cmd_id, "ok": False, "error": error}
        if reason:
            result["reason"] = reason
        return self._answer(result)

    def _answer(self, result: dict[str, Any]) -> dict[str, Any]:
        if self.link.connected:
            try:
                body = json.dumps(result, ensure_ascii=False).encode("utf-8")
            except UnicodeEncodeError:  # never expected (ids are checked): still an answer
                body = json.dumps(result).encode("ascii")
            self.link.publish(self.result_topic, body, qos=1, bulk=True)
        return result

    async def close(self) -> None:
        for timer in self._resume_timers.values():
            timer.cancel()
        self._resume_timers.clear()
        for task in list(self._pending):
            task.cancel()
        if self._pending:
            await asyncio.gather(*self._pending, return_exceptions=True)
