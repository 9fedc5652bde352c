"""The matrix keypad in the hall (4x3: 1-9, *, 0, #; or 4x4 with A-D).

A matrix keypad has one wire per row and one per column; a key joins its row to its column.
The driver waits without using the processor: all rows are driven low and the columns (inputs
with pull-ups) are watched for an edge. Only when a column falls (someone pressed a key) does it
wait a moment for the contact to settle and then scan: one row at a time is driven low, the
others let go (high impedance, so two keys in one column can never short two outputs), and the
column that reads low gives the key. Each press is reported once; the next key counts only
after every key has been released, and a scan that finds more than one key (two keys at once,
or a "ghost" key of three pressed together) reports nothing.

Pin callbacks may come from the GPIO library's thread; they only wake the asyncio loop, where
all the logic and every timer (on the daemon's clock) run. Idle means: no timer and no thread.
"""

from __future__ import annotations

import asyncio
import contextlib
import enum
import logging
from collections.abc import Callable, Sequence
from datetime import datetime, timedelta
from typing import Any

from gpiozero import DigitalInputDevice, GPIODevice

from hardware.backend import HardwareError
from hardware.timing import Scheduler, TimerHandle

log = logging.getLogger(__name__)

OnKey = Callable[[str, datetime], None]

DEFAULT_DEBOUNCE = timedelta(milliseconds=20)


class _State(enum.Enum):
    IDLE = "idle"  # nothing pressed; waiting for a falling column edge (no timer)
    SETTLING = "settling"  # a column fell; scan when the contact has settled (timer)
    HELD = "held"  # key(s) down after a scan; waiting for a column edge (no timer)
    RELEASING = "releasing"  # a column rose; check that all are up when settled (timer)
    CLOSED = "closed"


def check_layout(rows: int, cols: int, layout: Sequence[str]) -> list[str]:
    if rows < 1 or cols < 1:
        raise ValueError("a keypad needs at least one row and one column")
    if len(layout) != rows:
        raise ValueError(f"the layout gives {len(layout)} rows, the keypad has {rows}")
    for i, row in enumerate(layout):
        if len(row) != cols:
            raise ValueError(
                f"layout row {i + 1} ({row!r}) has {len(row)} keys, the keypad has {cols} columns"
            )
    return list(layout)


class MatrixKeypad:
    """`on_key(char, at)` is called on the loop thread, once per key press."""

    def __init__(
        self,
        rows: Sequence[int],
        cols: Sequence[int],
        layout: Sequence[str],
        factory: Any,
        clock: Scheduler,
        loop: asyncio.AbstractEventLoop,
        on_key: OnKey,
        *,
        debounce: timedelta = DEFAULT_DEBOUNCE,
        name: str = "keypad",
    ) -> None:
        self.layout = check_layout(len(rows), len(cols), layout)
        if debounce <= timedelta(0):
            raise ValueError("the keypad debounce time must be positive")
        self.name = name
        self._clock = clock
        self._loop = loop
        self._on_key = on_key
        self._debounce = debounce
        self._timer: TimerHandle | None = None
        self._state = _State.IDLE
        self.scans = 0  # how many times the matrix was scanned (for tests and benchmarks)
        self.ignored = 0  # scans that found more than one key
        self._rows: list[Any] = []
        self._cols: list[Any] = []
        try:
            for i, p in enumerate(rows):
                try:
                    self._rows.append(GPIODevice(p, pin_factory=factory))
                except Exception as e:
                    raise HardwareError(f"{name} row {i + 1}: GPIO{p}: {e}") from None
            self._drive_all_low()
            for j, p in enumerate(cols):
                try:
                    dev = DigitalInputDevice(p, pull_up=True, pin_factory=factory)
                except Exception as e:
                    raise HardwareError(f"{name} column {j + 1}: GPIO{p}: {e}") from None
                self._cols.append(dev)
                dev.when_activated = self._edge_from_pin_thread
                dev.when_deactivated = self._edge_from_pin_thread
        except BaseException:
            self._close_devices()
            raise
        if self._any_column_low():
            # a key held (or a short) at start: treat it as held until everything is released
            self._state = _State.HELD

    # -- public -------------------------------------------------------------------------
    @property
    def state(self) -> str:
        return self._state.value

    @property
    def idle(self) -> bool:
        """Nothing pressed and nothing scheduled: the keypad costs no processor time."""
        return self._state is _State.IDLE and self._timer is None

    def close(self) -> None:
        if self._state is _State.CLOSED:
            return
        self._state = _State.CLOSED
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        self._close_devices()

    # -- pins ---------------------------------------------------------------------------
    def _drive_low(self, row: Any) -> None:
        pin = row.pin
        pin.function = "output"
        pin.state = False

    def _let_go(self, row: Any) -> None:
        row.pin.function = "input"  # high impedance: the column's pull-up decides

    def _drive_all_low(self) -> None:
        for row in self._rows:
            self._drive_low(row)

    def _column_low(self, col: Any) -> bool:
        return bool(col.is_active)  # pull-up: active = low = joined to a driven row

    def _any_column_low(self) -> bool:
        return any(self._column_low(c) for c in self._cols)

    def _scan(self) -> set[tuple[int, int]]:
        self.scans += 1
        found: set[tuple[int, int]] = set()
        try:
            for row in self._rows:
                self._let_go(row)
            for i, row in enumerate(self._rows):
                self._drive_low(row)
                for j, col in enumerate(self._cols):
                    if self._column_low(col):
                        found.add((i, j))
                self._let_go(row)
        finally:
            self._drive_all_low()
        return found

    def _close_devices(self) -> None:
        for dev in (*self._cols, *self._rows):
            try:
                dev.close()
            except Exception:  # pragma: no cover
                log.exception("closing %s", self.name)
        self._cols = []
        self._rows = []

    # -- pin thread ---------------------------------------------------------------------
    def _edge_from_pin_thread(self) -> None:
        with contextlib.suppress(RuntimeError):  # the loop is closed: shutting down
            self._loop.call_soon_threadsafe(self._edge)

    # -- loop thread --------------------------------------------------------------------
    def _edge(self) -> None:
        # An edge only wakes the state machine; the levels are read again here.
        if self._state is _State.IDLE:
            if self._any_column_low():
                self._state = _State.SETTLING
                self._schedule(self._settled)
        elif self._state is _State.HELD:
            self._state = _State.RELEASING
            self._schedule(self._release_check)
        # SETTLING / RELEASING: the pending timer reads the pins again; CLOSED: nothing

    def _schedule(self, callback: Callable[[], None]) -> None:
        self._timer = self._clock.call_at(self._clock.now() + self._debounce, callback)

    def _settled(self) -> None:
        self._timer = None
        if self._state is not _State.SETTLING:
            return
        try:
            keys = self._scan()
        except Exception:
            log.exception("%s: scan failed", self.name)
            self._state = _State.HELD
            self._schedule_release_if_up()
            return
        if not keys:
            self._state = _State.IDLE  # a glitch, or released before it settled
            return
        self._state = _State.HELD
        if len(keys) == 1:
            ((i, j),) = keys
            char = self.layout[i][j]
            try:
                self._on_key(char, self._clock.now())
            except Exception:
                log.exception("%s: on_key failed", self.name)
        else:
            self.ignored += 1
            log.debug("%s: %d keys at once, ignored", self.name, len(keys))
        self._schedule_release_if_up()

    def _schedule_release_if_up(self) -> None:
        # released between the scan and now: the edge may already have been handled
        if self._state is _State.HELD and not self._any_column_low():
            self._state = _State.RELEASING
            self._schedule(self._release_check)

    def _release_check(self) -> None:
        self._timer = None
        if self._state is not _State.RELEASING:
            return
        self._state = _State.HELD if self._any_column_low() else _State.IDLE
