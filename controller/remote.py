"""Remote commands over MQTT: `P/cmd` and Home Assistant's `P/zone/<zone>/set`.

Each command is parsed and checked (`controller.commands`: size, JSON, types, known action,
optional HMAC signature with time window and nonce), then carried out by the site (`Site.operate`) exactly like
a code typed at the CLI: the user's code is checked in a worker thread, with the same
permissions and duress rules, and the whole MQTT channel shares one lockout counter. The answer
goes to `P/cmd/result` as `{"id", "ok", "error"?}`; it never contains the code. A malformed or
refused command changes nothing.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections import Counter
from typing import TYPE_CHECKING, Any

from controller.commands import (
    Command,
    CommandError,
    CommandVerifier,
    parse_cmd,
    parse_zone_set,
)
from controller.control import ControlError
from controller.mqtt import MqttConfigError, MqttLink, read_secret

if TYPE_CHECKING:
    from controller.site import Site

log = logging.getLogger(__name__)

MAX_PENDING = 16  # commands waiting for their code check; more are refused as busy
CHANNEL = "mqtt"


class RemoteCommands:
    def __init__(self, site: Site, link: MqttLink) -> None:
        self.site = site
        self.link = link
        self.prefix = link.prefix
        self.result_topic = f"{self.prefix}/cmd/result"
        self.counts: Counter[str] = Counter()
        self._pending: set[asyncio.Task[dict[str, Any]]] = set()
        self.verifier = self._verifier()

    def _verifier(self) -> CommandVerifier:
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
                "command_key", {"source": "command_key", "cid": "E300", "what": str(e)}
            )
            return CommandVerifier(None, required=False, window=m.signature_window).refusing()
        return CommandVerifier(key, required=m.require_signature, window=m.signature_window)

    def start(self) -> None:
        self.link.subscribe(f"{self.prefix}/cmd", self._on_cmd)
        self.link.subscribe(f"{self.prefix}/zone/+/set", self._on_zone_set)

    def reload(self) -> None:
        """The configuration changed (SIGHUP): read the key and the signature rules again."""
        self.verifier = self._verifier()

    def status(self) -> dict[str, Any]:
        return {"pending": len(self._pending), **self.counts}

    # ------------------------------------------------------------------ incoming

    def _on_cmd(self, topic: str, payload: bytes) -> None:
        self._spawn(topic, payload, None)

    def _on_zone_set(self, topic: str, payload: bytes) -> None:
        zone = topic[len(self.prefix) + len("/zone/") : -len("/set")]
        self._spawn(topic, payload, zone)

    def _spawn(self, topic: str, payload: bytes, zone: str | None) -> None:
        self.counts["received"] += 1
        if len(self._pending) >= MAX_PENDING:
            self._refuse(None, "busy: too many commands waiting, try again", "busy")
            return
        task = asyncio.get_running_loop().create_task(self.handle(topic, payload, zone))
        self._pending.add(task)
        task.add_done_callback(self._pending.discard)

    async def handle(self, topic: str, payload: bytes, zone: str | None) -> dict[str, Any]:
        """Check and carry out one command; publish and return its result."""
        cmd: Command | None = None
        try:
            raw: dict[str, Any] | None
            if zone is None:
                cmd, raw = parse_cmd(payload)
            else:
                cmd, raw = parse_zone_set(zone, payload)
            self.verifier.verify(topic, cmd, raw, self.site.clock.now())
        except CommandError as e:
            return self._refuse(e.cmd_id if cmd is None else cmd.id, e.reason, "malformed")
        try:
            outcome = await self.site.operate(cmd, CHANNEL)
        except ControlError as e:  # a sentence in the site's language, and its stable key
            return self._refuse(cmd.id, str(e), "refused", e.reason)
        except Exception:  # never let one command take the daemon down
            log.exception("remote command %s %s failed", cmd.id, cmd.action)
            return self._refuse(cmd.id, "internal error", "failed")
        self.counts["done"] += 1
        log.info("remote command %s %s done", cmd.id or "-", cmd.action)
        return self._answer({"id": cmd.id, "ok": True, "action": cmd.action, **outcome})

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
            self.link.publish(self.result_topic, json.dumps(result, ensure_ascii=False), qos=1)
        return result

    async def close(self) -> None:
        for task in list(self._pending):
            task.cancel()
        if self._pending:
            await asyncio.gather(*self._pending, return_exceptions=True)
