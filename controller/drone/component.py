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

from controller.component import Component
from controller.drone.detector import DetectorMonitor
from controller.engine import ExternalAlarm
from controller.events import EventDraft
from hardware import SerialLineReader

if TYPE_CHECKING:
    from controller.config import DroneDetector
    from controller.site import Site, Trouble

log = logging.getLogger(__name__)


class DetectorStation:
    """One detector: its serial reader and its pure monitor."""

    def __init__(self, site: Site, cfg: DroneDetector, loop: asyncio.AbstractEventLoop):
        self.site = site
        self.cfg = cfg
        self.monitor = DetectorMonitor(cfg, site.config.site)
        port = site.serial_port(cfg.id, cfg.port)
        self.reader = SerialLineReader(
            port, cfg.baudrate, site.clock, loop, self._on_line, self._on_port
        )
        self._deadline = site.timers.deadline(self.monitor.next_due, self._tick)

    def start(self) -> None:
        self._emit(self.monitor.tick(self.site.clock.now()))
        self.reader.start()
        self._deadline.reschedule()

    def _on_line(self, line: bytes, at: datetime, too_long: bool) -> None:
        self._emit(self.monitor.feed_line(line, self.site.clock.now(), too_long))

    def _on_port(self, is_open: bool, at: datetime, error: str | None) -> None:
        self._emit(self.monitor.port_state(is_open, self.site.clock.now(), error))

    def clock_stepped(self, delta: timedelta) -> None:
        self.monitor.clock_stepped(delta)
        self._deadline.reschedule()

    def _tick(self) -> None:
        self._emit(self.monitor.tick(self.site.clock.now()))

    def _emit(self, drafts: list[EventDraft]) -> None:
        if drafts:
            self.site.record(drafts)
            if self.cfg.siren:
                for d in drafts:
                    if d.kind == "drone" and not d.detail.get("update"):
                        self.site.submit(ExternalAlarm(self.cfg.zone, self.cfg.id, 150, d.text))
        self._deadline.reschedule()

    def status(self) -> dict[str, Any]:
        return self.monitor.status()

    def troubles(self) -> list[Trouble]:
        return self.monitor.troubles()

    def close(self) -> None:
        self._deadline.cancel()
        self.reader.stop()


class DroneDetectors(Component):
    """Every drone detector of the site, each a `DetectorStation`."""

    name = "detectors"

    def __init__(self, site: Site) -> None:
        super().__init__(site)
        loop = asyncio.get_running_loop()
        self.stations = {d.id: DetectorStation(site, d, loop) for d in site.config.drone_detectors}

    def start(self) -> None:
        for station in self.stations.values():
            station.start()

    def clock_stepped(self, delta: timedelta) -> None:
        for station in self.stations.values():
            station.clock_stepped(delta)

    def status(self) -> dict[str, Any]:
        return {"detectors": {did: st.status() for did, st in self.stations.items()}}

    def troubles(self) -> list[Trouble]:
        return [t for station in self.stations.values() for t in station.troubles()]

    def close(self) -> None:
        for station in self.stations.values():
            station.close()
