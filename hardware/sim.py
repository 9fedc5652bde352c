"""The simulated twin of the hardware: a whole office wing without a single wire.

`SimulatedHardware` plays the part of the wiring on gpiozero's mock pins, so the real drivers
(inputs, keypad scanning, outputs) run unchanged on top of it:

  set("door.director", True)   the door opens: the contact lets go of the pin (normally-closed
                               loop), a PIR module drives its output high, and so on per wiring
  pulse(...)                   knocks on a safe, movement in front of a PIR
  press_keys("keypad.hall", "2468#")
                               each key joins its row to its column, like the real membrane
  output_states()              which sirens are sounding, read from the pins
  serial["rf.roof"]            a real pseudo-terminal standing in for the detector's UART; the
                               real SerialLineReader opens it; unplug()/replug() pull the cable
                               (what the detector's firmware says on it is the controller's
                               twin of the node: controller/drone/twin.py)

The twin takes the site's pins as plain values (hardware.pins.SitePins), the same the drivers
take; the controller maps its config onto them.

Where time must pass (a key held for 100 ms, a gap between knocks), a virtual clock is advanced
(after letting the loop run what the pins handed over); with a real clock the sim really waits.
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import os
import shutil
import tempfile
import tty
from collections.abc import Awaitable, Callable, Iterable
from datetime import timedelta
from pathlib import Path
from typing import Any

from hardware.backend import HardwareError, SimPin, is_simulated
from hardware.pins import InputPin, KeypadPins, SitePins
from hardware.timing import SimScheduler

Advance = Callable[[timedelta], Awaitable[Any] | Any]

DEFAULT_HOLD = timedelta(milliseconds=100)
DEFAULT_GAP = timedelta(milliseconds=100)
DEFAULT_PULSE_WIDTH = timedelta(milliseconds=100)
DEFAULT_PULSE_INTERVAL = timedelta(milliseconds=500)


class UnknownDevice(HardwareError, KeyError):
    """An id the site's pins do not have (the message lists the ones they have)."""

    def __str__(self) -> str:
        return str(self.args[0]) if self.args else "unknown device"


def _unknown(kind: str, ident: str, known: Iterable[str]) -> UnknownDevice:
    names = ", ".join(sorted(known)) or "none configured"
    return UnknownDevice(f"unknown {kind} {ident!r} (known: {names})")


def _as_timedelta(value: timedelta | float | int, what: str) -> timedelta:
    if isinstance(value, timedelta):
        return value
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise TypeError(f"{what} must be a duration (timedelta or seconds)")
    return timedelta(seconds=float(value))


def _outside_level(spec: InputPin, active: bool) -> bool | None:
    """What the wiring outside does to a sensor's pin. On a pin with a pull resistor the sensor
    is a contact: at the pulled level it lets go (None: the pull decides, as an open
    normally-closed loop or a cut wire does), at the other it holds the pin there (a closed
    contact to GND). Without a pull it is a module's push-pull output, always driving."""
    level = spec.active_high if active else not spec.active_high
    if spec.pull_up is not None and level == spec.pull_up:
        return None
    return level


async def let_loop_run(rounds: int = 3) -> None:
    """Let the loop run the callbacks the pins handed over (call_soon_threadsafe)."""
    for _ in range(rounds):
        await asyncio.sleep(0)


async def pass_time(clock: SimScheduler, delta: timedelta, advance: Advance | None = None) -> None:
    """Let `delta` pass: advance a virtual clock (through `advance` if given, so the daemon
    can fire its own timers), or really wait on a real one."""
    if delta < timedelta(0):
        raise ValueError("time cannot pass backwards")
    if clock.virtual:
        await let_loop_run()
        step = advance if advance is not None else getattr(clock, "advance", None)
        if step is None:
            raise TypeError("this virtual clock has no advance(); pass advance=")
        result = step(delta)
        if inspect.isawaitable(result):
            await result
        await let_loop_run()
    else:
        await asyncio.sleep(delta.total_seconds())


# ----------------------------------------------------------------------------- keypad


class SimKeypad:
    """A membrane keypad on mock pins: a pressed key joins its row wire to its column wire.

    The column pins follow whatever the driver does with the rows (a column reads low when a
    pressed key connects it, perhaps through other pressed keys, to a row driven low), so the
    real scanning code, ghost keys included, runs unchanged. `conflicts` counts the times a
    row driven high and one driven low were joined through keys (a short on real hardware).
    """

    def __init__(self, keypad: KeypadPins, factory: Any) -> None:
        self.id = keypad.id
        self.layout = keypad.layout
        self._rows: list[SimPin] = [factory.pin(p) for p in keypad.rows]
        self._cols: list[SimPin] = [factory.pin(p) for p in keypad.cols]
        self._pressed: set[tuple[int, int]] = set()
        self.conflicts = 0
        for r in self._rows:
            r.listeners.append(self._row_changed)
        self._update()

    def position(self, key: str) -> tuple[int, int]:
        for i, row in enumerate(self.layout):
            j = row.find(key)
            if len(key) == 1 and j >= 0:
                return i, j
        raise ValueError(f"keypad {self.id} has no key {key!r} (keys: {''.join(self.layout)})")

    def check(self, keys: str) -> None:
        for k in keys:
            self.position(k)

    @property
    def pressed(self) -> set[str]:
        return {self.layout[i][j] for i, j in self._pressed}

    def down(self, *keys: str) -> None:
        positions = [self.position(k) for k in keys]
        self._pressed.update(positions)
        self._update()

    def up(self, *keys: str) -> None:
        positions = [self.position(k) for k in keys]
        self._pressed.difference_update(positions)
        self._update()

    def release_all(self) -> None:
        self._pressed.clear()
        self._update()

    def close(self) -> None:
        for r in self._rows:
            with contextlib.suppress(ValueError):
                r.listeners.remove(self._row_changed)
        self._pressed.clear()
        for c in self._cols:
            c.sim_drive(None)

    def _row_changed(self, _pin: SimPin) -> None:
        self._update()

    def _update(self) -> None:
        n_rows = len(self._rows)
        parent = list(range(n_rows + len(self._cols)))  # rows first, then columns

        def find(x: int) -> int:
            while parent[x] != x:
                parent[x] = parent[parent[x]]
                x = parent[x]
            return x

        for i, j in self._pressed:
            a, b = find(i), find(n_rows + j)
            if a != b:
                parent[a] = b
        low: set[int] = set()
        high: set[int] = set()
        for i, r in enumerate(self._rows):
            if r.driving_low:
                low.add(find(i))
            elif r.driving_high:
                high.add(find(i))
        self.conflicts += len(low & high)
        for j, c in enumerate(self._cols):
            root = find(n_rows + j)
            c.sim_drive(False if root in low else True if root in high else None)


# ----------------------------------------------------------------------------- serial


class SimSerial:
    """A pseudo-terminal standing in for a serial port.

    `port` is a stable path (a symlink to the current /dev/pts/N) to give SerialLineReader;
    `write()` sends bytes as the detector would. `unplug()` hangs the pty up (the reader's
    next read fails) and removes the link, `replug()` makes a new pty behind the same path.
    """

    def __init__(self, link: str | Path | None = None) -> None:
        self._tmpdir: str | None = None
        if link is None:
            self._tmpdir = tempfile.mkdtemp(prefix="officeguard-serial-")
            link = Path(self._tmpdir) / "tty"
        self.port = str(link)
        self._master: int | None = None
        self._slave: int | None = None
        self.tty: str | None = None
        self.written = 0  # bytes written into the line so far
        self.replug()

    @property
    def plugged(self) -> bool:
        return self._master is not None

    def replug(self) -> None:
        if self._master is not None:
            return
        master, slave = os.openpty()
        try:
            tty.setraw(slave)
            os.set_blocking(master, False)
            name = os.ttyname(slave)
            tmp = f"{self.port}.new"
            with contextlib.suppress(FileNotFoundError):
                os.unlink(tmp)
            os.symlink(name, tmp)
            os.replace(tmp, self.port)
        except BaseException:
            os.close(master)
            os.close(slave)
            raise
        self._master, self._slave, self.tty = master, slave, name

    def unplug(self) -> None:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(self.port)
        for fd in (self._master, self._slave):
            if fd is not None:
                os.close(fd)
        self._master = self._slave = None
        self.tty = None

    def write(self, data: bytes) -> None:
        """Send bytes down the line. Raises OSError if unplugged or if the line's buffer is full
        (nobody is reading the port)."""
        if not isinstance(data, bytes | bytearray | memoryview):
            raise TypeError("write() takes bytes")
        if self._master is None:
            raise OSError("the simulated serial port is unplugged")
        view = memoryview(bytes(data))
        while view:
            try:
                n = os.write(self._master, view)
            except BlockingIOError:
                raise OSError(
                    "the simulated serial line is full: nobody is reading the port"
                ) from None
            view = view[n:]
            self.written += n

    def write_line(self, line: str | bytes) -> None:
        """One line: adds the final "\\n" when it is missing."""
        data = line.encode() if isinstance(line, str) else bytes(line)
        if not data.endswith(b"\n"):
            data += b"\n"
        self.write(data)

    def close(self) -> None:
        self.unplug()
        if self._tmpdir is not None:
            shutil.rmtree(self._tmpdir, ignore_errors=True)
            self._tmpdir = None


# ----------------------------------------------------------------------------- site


class SimulatedHardware:
    """The simulated twin of a site's wiring, on the pin factory the drivers use.

    Create it with the factory from `pin_factory_for("simulated")`, before or after the drivers
    (order does not matter). Every sensor starts quiet (doors closed, no motion). `serial_dir`
    is where the serial port links `<detector id>.tty` go (default: a new temporary directory);
    `advance` replaces clock.advance when time must pass (the daemon's own "advance").
    """

    def __init__(
        self,
        pins: SitePins,
        factory: Any,
        *,
        serial_dir: str | Path | None = None,
        advance: Advance | None = None,
    ) -> None:
        if not is_simulated(factory):
            raise TypeError("SimulatedHardware needs the factory of pin_factory_for('simulated')")
        self.pins = pins
        self._advance = advance
        self._sensors: dict[str, tuple[InputPin, SimPin]] = {}
        for p in pins.inputs:
            self._sensors[p.id] = (p, factory.pin(p.pin))
            self._drive(p.id, False)
        self.keypads: dict[str, SimKeypad] = {k.id: SimKeypad(k, factory) for k in pins.keypads}
        self._outputs: dict[str, tuple[SimPin, bool]] = {
            o.id: (factory.pin(o.pin), o.active_high) for o in pins.outputs
        }
        self._buzzers: dict[str, SimPin] = {
            f"{k.id}.buzzer": factory.pin(k.buzzer) for k in pins.keypads if k.buzzer is not None
        }
        self._tmpdir: str | None = None
        self.serial: dict[str, SimSerial] = {}
        if pins.serial_ports:
            if serial_dir is None:
                self._tmpdir = tempfile.mkdtemp(prefix="officeguard-sim-")
                serial_dir = self._tmpdir
            try:
                for port_id in pins.serial_ports:
                    self.serial[port_id] = SimSerial(Path(serial_dir) / f"{port_id}.tty")
            except BaseException:
                self.close()
                raise

    # -- sensors ------------------------------------------------------------------------
    def _sensor(self, sensor_id: str) -> tuple[InputPin, SimPin]:
        try:
            return self._sensors[sensor_id]
        except KeyError:
            raise _unknown("sensor", sensor_id, self._sensors) from None

    def _drive(self, sensor_id: str, active: bool) -> None:
        spec, pin = self._sensors[sensor_id]
        pin.sim_drive(_outside_level(spec, active))

    def set(self, sensor_id: str, active: bool | str) -> None:
        """Make a sensor active (door open, motion, knock, tamper) or quiet again."""
        self._sensor(sensor_id)
        if isinstance(active, str):
            word = active.strip().lower()
            if word not in ("active", "inactive"):
                raise ValueError(f"a sensor is 'active' or 'inactive', not {active!r}")
            active = word == "active"
        if not isinstance(active, bool):
            raise TypeError("active must be True/False or 'active'/'inactive'")
        self._drive(sensor_id, active)

    def level(self, sensor_id: str) -> bool:
        """The sensor's pin level now (True = high), as the driver would read it."""
        return bool(self._sensor(sensor_id)[1].state)

    async def pulse(
        self,
        sensor_id: str,
        count: int = 3,
        interval: timedelta | float = DEFAULT_PULSE_INTERVAL,
        width: timedelta | float = DEFAULT_PULSE_WIDTH,
        clock: SimScheduler | None = None,
    ) -> None:
        """`count` pulses, one starting every `interval`, each active for `width`
        (knocks on a safe: vibration sensor; passes in front of a PIR)."""
        self._sensor(sensor_id)
        interval = _as_timedelta(interval, "interval")
        width = _as_timedelta(width, "width")
        if isinstance(count, bool) or not isinstance(count, int) or not 1 <= count <= 1000:
            raise ValueError("count must be a whole number from 1 to 1000")
        if width <= timedelta(0):
            raise ValueError("the pulse width must be positive")
        if interval <= width:
            raise ValueError("the interval (start to start) must be longer than the pulse width")
        if clock is None:
            raise TypeError("pulse() needs the daemon's clock")
        for n in range(count):
            self._drive(sensor_id, True)
            await pass_time(clock, width, self._advance)
            self._drive(sensor_id, False)
            if n < count - 1:
                await pass_time(clock, interval - width, self._advance)
        await let_loop_run()

    # -- keypads ------------------------------------------------------------------------
    def keypad(self, keypad_id: str) -> SimKeypad:
        try:
            return self.keypads[keypad_id]
        except KeyError:
            raise _unknown("keypad", keypad_id, self.keypads) from None

    async def press_keys(
        self,
        keypad_id: str,
        keys: str,
        clock: SimScheduler,
        hold: timedelta = DEFAULT_HOLD,
        gap: timedelta = DEFAULT_GAP,
    ) -> None:
        """Press and release each key in turn, e.g. "2468#". Every key is checked first: an
        unknown key changes nothing."""
        kp = self.keypad(keypad_id)
        if not isinstance(keys, str) or not keys:
            raise ValueError("give the keys to press, e.g. 2468#")
        kp.check(keys)
        for k in keys:
            kp.down(k)
            await pass_time(clock, hold, self._advance)
            kp.up(k)
            await pass_time(clock, gap, self._advance)

    # -- outputs and serial ports -------------------------------------------------------
    def output_states(self, include_buzzers: bool = False) -> dict[str, bool]:
        """{"siren.hall": True, ...}, read from the pins (an output no driver has set up yet
        reads False); with include_buzzers also "<keypad id>.buzzer"."""
        out = {
            oid: pin.function == "output" and bool(pin.state) == active_high
            for oid, (pin, active_high) in self._outputs.items()
        }
        if include_buzzers:
            for bid, pin in self._buzzers.items():
                out[bid] = pin.function == "output" and bool(pin.state)
        return out

    def serial_port(self, detector_id: str) -> str:
        """The path to open instead of the detector's configured port."""
        return self._serial(detector_id).port

    def _serial(self, detector_id: str) -> SimSerial:
        try:
            return self.serial[detector_id]
        except KeyError:
            raise _unknown("drone detector", detector_id, self.serial) from None

    def write_serial(self, detector_id: str, line: str | bytes) -> None:
        """One line from a detector (a "\\n" is added when missing)."""
        self._serial(detector_id).write_line(line)

    def close(self) -> None:
        for kp in self.keypads.values():
            kp.close()
        for s in self.serial.values():
            s.close()
        if self._tmpdir is not None:
            shutil.rmtree(self._tmpdir, ignore_errors=True)
            self._tmpdir = None
