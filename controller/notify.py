"""systemd service notifications (sd_notify) without a dependency: READY=1 once inputs, journal
and engine are up, WATCHDOG=1 from the event loop itself (so a stuck loop stops the pings and
systemd restarts the service), STATUS= with a one-line summary, STOPPING=1 on the way out.
Does nothing when NOTIFY_SOCKET is not set (not started by systemd)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import socket

log = logging.getLogger(__name__)


class Notifier:
    def __init__(self, env: dict[str, str] | None = None):
        env = dict(os.environ) if env is None else env
        addr = env.get("NOTIFY_SOCKET") or ""
        if addr.startswith("@"):
            addr = "\0" + addr[1:]  # abstract namespace
        self.address = addr or None
        usec = env.get("WATCHDOG_USEC")
        pid = env.get("WATCHDOG_PID")
        self.watchdog_interval: float | None = None
        if usec and usec.isdigit() and int(usec) > 0 and (not pid or pid == str(os.getpid())):
            self.watchdog_interval = int(usec) / 1_000_000 / 2
        self._task: asyncio.Task[None] | None = None
        self._last_status: str | None = None

    @property
    def enabled(self) -> bool:
        return self.address is not None

    def send(self, *fields: str) -> bool:
        if self.address is None:
            return False
        msg = "\n".join(fields).encode()
        with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as s:
            try:
                s.connect(self.address)
                s.sendall(msg)
            except OSError as e:
                log.warning("sd_notify failed: %s", e)
                return False
        return True

    def ready(self, status: str) -> None:
        self._last_status = status
        self.send("READY=1", f"STATUS={status}")

    def status(self, status: str) -> None:
        if status != self._last_status:
            self._last_status = status
            self.send(f"STATUS={status}")

    def stopping(self, status: str = "stopping") -> None:
        self.send("STOPPING=1", f"STATUS={status}")

    def start_watchdog(self) -> None:
        if self.watchdog_interval is None or self.address is None or self._task is not None:
            return
        self._task = asyncio.get_running_loop().create_task(self._pinger(self.watchdog_interval))

    async def _pinger(self, interval: float) -> None:
        # runs on the daemon's own loop: if the loop is blocked, no ping goes out
        while True:
            self.send("WATCHDOG=1")
            await asyncio.sleep(interval)

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
