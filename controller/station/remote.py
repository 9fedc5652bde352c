"""Remote arm/disarm from the station: the office's `P/cmd` (docs/mqtt.md) with the operator's
code, signed with the site's command key when the station has it, and its `P/cmd/result`.

`Commander.send` publishes one command and waits (on the caller's thread) for the result with
the same id, or says the site did not answer. The site's key is `<keys_dir>/<site>.key`, the
same key as the site's `mqtt.command_key_file`, a file only its owner may read; without it a
command goes unsigned (a site that requires signatures then refuses a disarm, and says so).
The code is sent to the site and never kept, logged or shown; the station records who sent
what and the site's answer (`Store.log_command`).
"""

from __future__ import annotations

import json
import os
import secrets
import stat
import threading
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

from controller.errors import OfficeGuardError
from controller.remote.commands import sign

ACTIONS = ("arm", "disarm")
MODES = ("away", "home", "night")
RESULT_TIMEOUT_S = 10.0


class CommandError(OfficeGuardError, ValueError):
    """A command the station will not send (the message says why)."""


class Commander:
    def __init__(
        self,
        publish: Callable[[str, bytes], None],
        prefix: str = "officeguard",
        keys_dir: str | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.publish = publish
        self.prefix = prefix.strip("/")
        self.keys_dir = Path(keys_dir) if keys_dir else None
        self.clock = clock
        self._results: dict[str, dict[str, Any]] = {}
        self._waiting: set[str] = set()
        self._cond = threading.Condition()

    def on_result(self, site: str, payload: bytes) -> None:
        """A `P/cmd/result` message (from ingest's thread)."""
        try:
            d = json.loads(payload.decode("utf-8"))
        except (ValueError, UnicodeDecodeError):
            return
        if not isinstance(d, dict) or not isinstance(d.get("id"), str):
            return
        with self._cond:
            if d["id"] in self._waiting:
                self._results[d["id"]] = d
                self._cond.notify_all()

    def key(self, site: str) -> bytes | None:
        if self.keys_dir is None:
            return None
        path = self.keys_dir / f"{site}.key"
        try:
            st = os.stat(path)
        except FileNotFoundError:
            return None
        if st.st_mode & (stat.S_IRWXG | stat.S_IRWXO):
            raise CommandError(f"the command key {path} is readable by others: chmod 600 it")
        key = path.read_bytes().strip()
        return key or None

    def command(
        self, site: str, action: str, zones: list[str], code: str, mode: str = "away"
    ) -> dict[str, Any]:
        if action not in ACTIONS:
            raise CommandError(f"action is one of {', '.join(ACTIONS)}")
        if mode not in MODES:
            raise CommandError(f"mode is one of {', '.join(MODES)}")
        zones = [z for z in zones if z]
        if not zones:
            raise CommandError("name at least one zone")
        if not code:
            raise CommandError("the operator's code is needed")
        cmd: dict[str, Any] = {
            "id": f"station-{uuid.uuid4().hex[:16]}",
            "action": action,
            "code": code,
        }
        if action == "arm":
            cmd.update(zones=zones, mode=mode)
        elif len(zones) == 1:
            cmd["zone"] = zones[0]
        else:
            cmd["zones"] = zones
        return cmd

    def send(
        self, site: str, action: str, zones: list[str], code: str, mode: str = "away",
        timeout: float = RESULT_TIMEOUT_S,
    ) -> dict[str, Any]:  # fmt: skip
        """Publish the command and wait for its result (blocking)."""
        if not site or any(c in site for c in "/+#"):
            raise CommandError("bad site name")
        cmd = self.command(site, action, zones, code, mode)
        topic = f"{self.prefix}/{site}/cmd"
        key = self.key(site)
        if key is not None:
            cmd.update(ts=int(self.clock()), nonce=secrets.token_hex(8))
            cmd["sig"] = sign(key, topic, cmd)
        cid = cmd["id"]
        with self._cond:
            self._waiting.add(cid)
        try:
            self.publish(topic, json.dumps(cmd, ensure_ascii=False).encode())
            with self._cond:
                self._cond.wait_for(lambda: cid in self._results, timeout)
                result = self._results.pop(cid, None)
        finally:
            with self._cond:
                self._waiting.discard(cid)
        if result is None:
            return {"id": cid, "ok": False, "error": "no answer from the site", "reason": "timeout"}
        result.setdefault("signed", key is not None)
        result["signed"] = key is not None
        return result
