"""Patrol checkpoints: a Wiegand badge reader on two GPIOs, and a key switch or push button on
one, with their simulated twins.

Why Wiegand: the proximity readers Vietnamese offices install at doors and gates (ZKTeco,
Hikvision, Ronald Jack, Soyal; 125 kHz EM cards and 13.56 MHz MIFARE) have a Wiegand 26/34
output as standard, work on 12 V over up to ~150 m of alarm cable, and need no driver or USB
port; a patrol checkpoint is far from the Pi, where a USB reader's 5 m cable cannot reach.
DATA0/DATA1 are 5 V open-collector lines: a level shifter (or a 10k/20k divider) brings them
to the Pi's 3.3 V (hardware/README.md).

`WiegandReader` takes each falling edge on DATA0 (a 0) or DATA1 (a 1) with its time on the GPIO
library's thread, hands it to the loop, and decodes there (hardware/wiegand.py): a read of the
reader's length is decoded at its last bit; a garbled one (length or parity) is reported as
such, for the caller to count. `KeySwitch` is a debounced input (hardware/inputs.py) that
reports the turn of a key or the press of a button. Nothing here imports the controller.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable
from datetime import datetime, timedelta
from functools import partial
from typing import Any

from gpiozero import DigitalInputDevice

from hardware.backend import HardwareError, SimPin, is_simulated
from hardware.inputs import DEFAULT_DEBOUNCE, SensorInput
from hardware.timing import Scheduler
from hardware.wiegand import FRAME_GAP, Badge, Garbled, WiegandDecoder, encode

log = logging.getLogger(__name__)

# (checkpoint id, badge number or None, why it was garbled or None)
OnRead = Callable[[str, int | None, str | None], None]
OnPress = Callable[[str, datetime], None]


class WiegandReader:
    """A Wiegand 26/34 reader on `d0` and `d1` (pull-ups; a bit pulls its line low)."""

    def __init__(
        self,
        id: str,
        d0: int,
        d1: int,
        factory: Any,
        loop: asyncio.AbstractEventLoop,
        on_read: OnRead,
        *,
        bits: int = 26,
        frame_gap: float = FRAME_GAP,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self.id = id
        self._loop = loop
        self._on_read = on_read
        self._monotonic = monotonic
        self.decoder = WiegandDecoder(bits, frame_gap)
        self._expiry: asyncio.TimerHandle | None = None
        self._closed = False
        self._devs: list[DigitalInputDevice] = []
        try:
            for bit, pin in ((0, d0), (1, d1)):
                dev = DigitalInputDevice(pin, pull_up=True, pin_factory=factory)
                dev.when_activated = partial(self._edge_from_pin_thread, bit)
                self._devs.append(dev)
        except Exception as e:
            self.close()
            raise HardwareError(f"badge reader {id}: GPIO{d0}/GPIO{d1}: {e}") from None

    @property
    def garbled(self) -> int:
        return self.decoder.garbled

    @property
    def reads(self) -> int:
        return self.decoder.reads

    def _edge_from_pin_thread(self, bit: int) -> None:
        t = self._monotonic()  # the edge's time, taken on the pin's thread
        with contextlib.suppress(RuntimeError):  # a closed loop: shutting down
            self._loop.call_soon_threadsafe(self._bit, bit, t)

    def _bit(self, bit: int, t: float) -> None:
        if self._closed:
            return
        self._deliver(self.decoder.feed(bit, t))
        if self._expiry is not None:
            self._expiry.cancel()
            self._expiry = None
        if self.decoder.pending:
            self._expiry = self._loop.call_later(self.decoder.frame_gap, self._expire)

    def _expire(self) -> None:
        self._expiry = None
        if not self._closed:
            self._deliver(self.decoder.expire(self._monotonic()))

    def _deliver(self, reads: list[Badge | Garbled]) -> None:
        for r in reads:
            try:
                if isinstance(r, Badge):
                    self._on_read(self.id, r.number, None)
                else:
                    self._on_read(self.id, None, r.reason)
            except Exception:
                log.exception("badge reader %s: on_read failed", self.id)

    def close(self) -> None:
        self._closed = True
        if self._expiry is not None:
            self._expiry.cancel()
            self._expiry = None
        for dev in self._devs:
            try:
                dev.close()
            except Exception:  # pragma: no cover - closing a half-dead pin
                log.exception("closing badge reader %s", self.id)
        self._devs = []


class KeySwitch:
    """A key switch or push button between `pin` and GND (pull-up): a turn or press is a visit."""

    def __init__(
        self,
        id: str,
        pin: int,
        factory: Any,
        clock: Scheduler,
        loop: asyncio.AbstractEventLoop,
        on_press: OnPress,
        debounce: timedelta = DEFAULT_DEBOUNCE,
    ) -> None:
        self.id = id
        self._on_press = on_press
        self.presses = 0
        self._input = SensorInput(
            id,
            pin,
            factory,
            clock,
            loop,
            self._changed,
            pull_up=True,
            active_high=False,
            debounce=debounce,
        )

    def _changed(self, _id: str, active: bool, at: datetime) -> None:
        if active:
            self.presses += 1
            self._on_press(self.id, at)

    def close(self) -> None:
        self._input.close()


# ----------------------------------------------------------------------------- simulated twins


def _sim_pin(factory: Any, pin: int) -> SimPin:
    if not is_simulated(factory):
        raise TypeError(
            "the simulated checkpoints need the factory of pin_factory_for('simulated')"
        )
    p: SimPin = factory.pin(pin)
    return p


class SimWiegandReader:
    """Plays a reader on mock pins: each bit pulls its line low, then lets it go."""

    def __init__(self, d0: int, d1: int, factory: Any, bits: int = 26) -> None:
        self.lines = (_sim_pin(factory, d0), _sim_pin(factory, d1))
        self.bits = bits
        for p in self.lines:
            p.sim_drive(None)  # idle high on the pull-up

    def send(self, frame: list[int]) -> None:
        """Any frame, garbled or not (the tests' and `sim badge --garble`'s)."""
        for bit in frame:
            line = self.lines[1 if bit else 0]
            line.sim_drive(False)
            line.sim_drive(None)

    def present(self, number: int) -> None:
        """A badge held to the reader."""
        self.send(encode(number, self.bits))


class SimKeySwitch:
    """Plays a key switch: `press()` closes it to GND, `release()` opens it."""

    def __init__(self, pin: int, factory: Any) -> None:
        self.pin = _sim_pin(factory, pin)
        self.pin.sim_drive(None)

    def press(self) -> None:
        self.pin.sim_drive(False)

    def release(self) -> None:
        self.pin.sim_drive(None)
