"""The simulated drone detector's firmware: what the ESP32 node (firmware_py/node.py) says on
its UART, spoken into the simulated serial line (hardware.sim.SimSerial, a pty).

It lives beside the protocol it speaks: the hardware twin only provides the line, as the
hardware only provides the cable; the lines on it are the detector's and the controller's.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Protocol

from controller.clock import Clock, TimerHandle
from controller.drone.protocol import Heartbeat, Hello, encode_line

HEARTBEAT_EVERY = timedelta(seconds=5)  # firmware_py/node.py: HB_MS


class Line(Protocol):
    """The node's end of the serial line; `write` raises OSError when the bytes cannot go."""

    def write(self, data: bytes) -> None: ...


class DetectorNode:
    """The simulated drone detector's firmware: `hello` when it starts, then `hb` every 5 s
    on the daemon's clock, written into its pty as the ESP32 node (firmware_py/node.py)
    writes them to its UART. So a healthy simulated site shows no "detector silent" trouble,
    and the real reader and monitor see what they see on a roof. `set_beating(False)` makes
    it fall silent like a hung node; lines injected with `sim serial` go through the same pty.
    A write that fails (cable pulled, nobody reading) is counted and dropped, as on the node.
    """

    FIRMWARE = "og-sim 0.1.0"
    CAPS = ("ble4", "rf24")

    def __init__(self, port: Line, clock: Clock) -> None:
        self.port = port
        self.clock = clock
        self.seq = 0
        self.write_errors = 0
        self.beating = False
        self._started = clock.now()
        self._timer: TimerHandle | None = None

    def start(self) -> None:
        """Boot: `hello`, and a heartbeat every 5 s from now on."""
        self._started = self.clock.now()
        self._send(Hello(self.seq, self.FIRMWARE, self.CAPS))
        self.set_beating(True)

    def set_beating(self, on: bool) -> None:
        """Heartbeats on (the next one 5 s from now) or off (the node hangs, silent)."""
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        self.beating = on
        if on:
            self._timer = self.clock.call_at(self.clock.now() + HEARTBEAT_EVERY, self._beat)

    def _beat(self) -> None:
        self._timer = None
        up = int((self.clock.now() - self._started).total_seconds())
        self._send(Heartbeat(self.seq, up, 0, 0))
        self.set_beating(True)

    def _send(self, msg: Hello | Heartbeat) -> None:
        line = encode_line(msg)
        self.seq = (self.seq + 1) & 0xFFFF
        try:
            self.port.write(line)
        except OSError:
            self.write_errors += 1

    def stop(self) -> None:
        self.set_beating(False)
