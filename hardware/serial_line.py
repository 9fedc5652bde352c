"""Reading lines from a serial port (the drone detector on the roof, 115200 8N1).

The port is opened with pyserial and watched by the asyncio loop (no reader thread); whatever
waited in the port's buffer before it was opened is discarded. When bytes arrive they are split into lines at "\\n" and each line is handed over with the time it was
complete. A line longer than `max_line` bytes is handed over once, cut to `max_line` bytes and
flagged `too_long`, and the rest of it is skipped up to the next "\\n", so a noisy or runaway
line can never fill the memory. A line cut off by an unplug is dropped.

When the port cannot be opened, or fails while open (USB adapter pulled out, cable fault), it
is closed and opened again after 1 s, 2 s, 4 s ... up to 30 s between attempts, on the daemon's
clock; the backoff starts again from 1 s once a complete line has been received.
`on_port(open, at, error)` reports each change: True when the port opens, False (with the
reason) when it is lost or the first attempt fails; further failed attempts are not repeated.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import termios
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

import serial

from hardware.timing import Scheduler, TimerHandle

log = logging.getLogger(__name__)

OnLine = Callable[[bytes, datetime, bool], None]
OnPort = Callable[[bool, datetime, str | None], None]

BACKOFF_FIRST = timedelta(seconds=1)
BACKOFF_MAX = timedelta(seconds=30)
READ_CHUNK = 4096


class SerialLineReader:
    """One serial port, read line by line on the asyncio loop. Use from the loop thread.

    on_line(line, at, too_long): `line` without its "\\n" (and without a "\\r" before it);
    too_long=True means the line was longer than max_line and `line` is its first max_line
    bytes (count it and drop it).
    """

    def __init__(
        self,
        port: str,
        baudrate: int,
        clock: Scheduler,
        loop: asyncio.AbstractEventLoop,
        on_line: OnLine,
        on_port: OnPort,
        max_line: int = 1024,
    ) -> None:
        if max_line < 1:
            raise ValueError("max_line must be at least 1")
        if baudrate <= 0:
            raise ValueError("the baud rate must be positive")
        self.port = port
        self.baudrate = baudrate
        self.max_line = max_line
        self._clock = clock
        self._loop = loop
        self._on_line = on_line
        self._on_port = on_port
        self._serial: Any = None
        self._fd: int | None = None
        self._buf = bytearray()
        self._skipping = False  # inside an over-long line, waiting for its "\n"
        self._backoff = BACKOFF_FIRST
        self._retry: TimerHandle | None = None
        self._running = False
        self._reported_open: bool | None = None
        self.last_error: str | None = None
        self.next_retry: datetime | None = None
        self.attempts = 0  # open attempts so far
        self.bytes_in = 0  # bytes read from the port
        self.lines = 0  # lines handed over (too_long included)
        self.too_long = 0

    # -- public -------------------------------------------------------------------------
    @property
    def is_open(self) -> bool:
        return self._serial is not None

    def start(self) -> None:
        """Open the port now (or schedule the retries if it cannot be opened)."""
        if self._running:
            return
        self._running = True
        self._open()

    def stop(self) -> None:
        """Close the port and stop retrying. No on_port call is made for a stop."""
        self._running = False
        if self._retry is not None:
            self._retry.cancel()
            self._retry = None
        self.next_retry = None
        self._close()

    # -- opening and closing ------------------------------------------------------------
    def _open(self) -> None:
        self._retry = None
        self.next_retry = None
        if not self._running:
            return
        self.attempts += 1
        ser: Any = None
        try:
            ser = serial.Serial(self.port, self.baudrate, timeout=0, exclusive=True)
            ser.reset_input_buffer()  # stale bytes from before: at best half a line
            fd = ser.fileno()
            self._loop.add_reader(fd, self._read_ready)
        except (serial.SerialException, OSError, ValueError, termios.error) as e:
            if ser is not None:
                with contextlib.suppress(Exception):
                    ser.close()
            self._failed(f"cannot open {self.port}: {_reason(e)}")
            return
        self._serial = ser
        self._fd = fd
        self._buf.clear()
        self._skipping = False
        self.last_error = None
        self._report(True, None)

    def _close(self) -> None:
        ser, fd = self._serial, self._fd
        self._serial = None
        self._fd = None
        self._buf.clear()
        self._skipping = False
        if fd is not None:
            try:
                self._loop.remove_reader(fd)
            except Exception:  # pragma: no cover - the loop is closing
                log.debug("remove_reader failed", exc_info=True)
        if ser is not None:
            try:
                ser.close()
            except Exception:
                log.debug("closing %s failed", self.port, exc_info=True)

    def _failed(self, error: str) -> None:
        self.last_error = error
        self._report(False, error)
        if not self._running:
            return
        delay = self._backoff
        self._backoff = min(self._backoff * 2, BACKOFF_MAX)
        self.next_retry = self._clock.now() + delay
        self._retry = self._clock.call_at(self.next_retry, self._open)
        log.info("%s; next attempt in %ss", error, delay.total_seconds())

    def _report(self, is_open: bool, error: str | None) -> None:
        if self._reported_open == is_open:
            return
        self._reported_open = is_open
        try:
            self._on_port(is_open, self._clock.now(), error)
        except Exception:
            log.exception("on_port for %s failed", self.port)

    # -- reading ------------------------------------------------------------------------
    def _read_ready(self) -> None:
        ser = self._serial
        if ser is None:
            return
        try:
            data = ser.read(READ_CHUNK)
        except Exception as e:  # SerialException, OSError, termios.error: all mean the same
            self._close()
            self._failed(f"{self.port} lost: {_reason(e)}")
            return
        if data:
            self.bytes_in += len(data)
            self._feed(bytes(data))

    def _feed(self, data: bytes) -> None:
        now = self._clock.now()
        limit = self.max_line
        start = 0
        while start < len(data):
            nl = data.find(b"\n", start)
            chunk = data[start:] if nl < 0 else data[start:nl]
            start = len(data) if nl < 0 else nl + 1
            if self._skipping:  # the rest of an over-long line
                self._skipping = nl < 0
                continue
            total = len(self._buf) + len(chunk)
            if nl >= 0:
                if total > limit + 1:  # too long even without a "\r"
                    line, too_long = (bytes(self._buf) + chunk[:limit])[:limit], True
                else:
                    line = bytes(self._buf) + chunk
                    if line.endswith(b"\r"):
                        line = line[:-1]
                    too_long = len(line) > limit
                    line = line[:limit]
                self._buf.clear()
                self._hand_over(line, now, too_long)
            elif total > limit + 1 or (total == limit + 1 and not chunk.endswith(b"\r")):
                # certainly too long whatever comes next: hand it over now, skip to "\n"
                line = (bytes(self._buf) + chunk[:limit])[:limit]
                self._buf.clear()
                self._skipping = True
                self._hand_over(line, now, True)
            else:
                self._buf += chunk  # a partial line, at most max_line + 1 bytes

    def _hand_over(self, line: bytes, at: datetime, too_long: bool) -> None:
        self.lines += 1
        if too_long:
            self.too_long += 1
        else:
            self._backoff = BACKOFF_FIRST  # the link works
        try:
            self._on_line(line, at, too_long)
        except Exception:
            log.exception("on_line for %s failed", self.port)


def _reason(e: BaseException) -> str:
    text = str(e) or type(e).__name__
    return text.splitlines()[0][:200]
