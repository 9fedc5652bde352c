"""Drone detectors in the daemon: each detector's serial port (the real one, or its simulated
pty) is read by hardware/serial_line.py on the loop; every line goes to the pure
DetectorMonitor (controller/drone/detector.py), whose events are journaled and reported at
once in every zone state. A detector configured with `siren: true` also sounds its zone.
"""

from __future__ import annotations

import asyncio
import logging
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from controller.drone.detector import DetectorMonitor
from controller.engine import ExternalAlarm
from controller.events import EventDraft
from hardware import SerialLineReader

if TYPE_CHECKING:
    from controller.clock import TimerHandle
    from controller.config import DroneDetector
    from controller.daemon import Daemon

log = logging.getLogger(__name__)


class DetectorStation:
    def __init__(self, daemon: Daemon, cfg: DroneDetector, loop: asyncio.AbstractEventLoop):
        self.daemon = daemon
        self.cfg = cfg
        self.monitor = DetectorMonitor(cfg, daemon.cfg.site)
        assert daemon.hw is not None
        port = daemon.hw.serial_port(cfg.id, cfg.port)
        self.reader = SerialLineReader(
            port, cfg.baudrate, daemon.clock, loop, self._on_line, self._on_port
        )
        self._timer: TimerHandle | None = None

    def start(self) -> None:
        self.daemon.clock.add_jump_listener(self._clock_stepped)
        self._emit(self.monitor.tick(self.daemon.clock.now()))
        self.reader.start()
        self._reschedule()

    def _on_line(self, line: bytes, at: datetime, too_long: bool) -> None:
        self._emit(self.monitor.feed_line(line, self.daemon.clock.now(), too_long))

    def _on_port(self, is_open: bool, at: datetime, error: str | None) -> None:
        self._emit(self.monitor.port_state(is_open, self.daemon.clock.now(), error))

    def _clock_stepped(self, delta: timedelta) -> None:
        self.monitor.clock_stepped(delta)
        self._reschedule()

    def _tick(self) -> None:
        self._timer = None
        self._emit(self.monitor.tick(self.daemon.clock.now()))

    def _emit(self, drafts: list[EventDraft]) -> None:
        if drafts:
            self.daemon.record_external(drafts)
            if self.cfg.siren:
                for d in drafts:
                    if d.kind == "drone" and not d.detail.get("update"):
                        self.daemon.submit(ExternalAlarm(self.cfg.zone, self.cfg.id, 150, d.text))
        self._reschedule()

    def _reschedule(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        due = self.monitor.next_due()
        if due is not None:
            self._timer = self.daemon.clock.call_at(due, self._tick)

    def status(self) -> dict[str, Any]:
        return self.monitor.status()

    def troubles(self) -> list[dict[str, Any]]:
        return self.monitor.troubles()

    def close(self) -> None:
        self.daemon.clock.remove_jump_listener(self._clock_stepped)
        if self._timer is not None:
            self._timer.cancel()
        self.reader.stop()
