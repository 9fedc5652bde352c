"""An MCP3008/MCP3208 on SPI0 (gpiozero's MCP3xxx classes), and its simulated twin.

`AdcReader(chip, device, vref, channels, factory)` reads the channels in use, in volts. The
MCP3xxx answers each request with a null bit before the result; with the 10 k pull-up on MISO
that hardware/README.md asks for, an ADC that is gone (unplugged, unpowered, a broken ribbon)
reads that bit as 1, and `read()` raises `AdcNotAnswering` instead of handing over a reading
that would look like every loop cut at once. An SPI error (spidev's OSError) is raised the same
way. The caller decides what that means (controller/supervision/: a trouble, loops `unknown`).

`SimulatedAdc` plays the chip on gpiozero's mock SPI device (`MockSPIDevice`, whose slave side
gpiozero 2 ships without an MCP3xxx): the simulator sets each channel's voltage, and can unplug
the chip (MISO then floats up to the pull-up). It runs on a mock factory of its own: gpiozero's
mock SPI pins are plain `MockPin`s, and the simulator's GPIO pins are PWM-capable `SimPin`s,
which gpiozero refuses to mix on one header.

Plain values only (hardware/ imports nothing of controller/).
"""

from __future__ import annotations

import contextlib
from collections.abc import Collection
from typing import Any, Literal

from gpiozero import MCP3008, MCP3208, Device
from gpiozero.pins.mock import MockFactory, MockSPIDevice

from hardware.backend import HardwareError

Chip = Literal["mcp3008", "mcp3208"]
BITS: dict[str, int] = {"mcp3008": 10, "mcp3208": 12}
# SPI0 as gpiozero (and the Pi) wire it: SCLK, MOSI, MISO, and the chip selects CE0/CE1
SPI_CLOCK, SPI_MOSI, SPI_MISO = 11, 10, 9
SPI_SELECT = (8, 7)  # CE0, CE1


class AdcError(HardwareError):
    """The ADC cannot be opened (a bad channel, SPI not enabled)."""


class AdcNotAnswering(AdcError):
    """The ADC did not answer a read (gone from the bus, or an SPI error)."""


class AdcReader:
    """The channels in use of one MCP3xxx, read in volts."""

    def __init__(
        self, chip: Chip, device: int, vref: float, channels: tuple[int, ...], factory: Any
    ) -> None:
        if chip not in BITS:
            raise AdcError(f"unknown ADC chip {chip!r}: use mcp3008 or mcp3208")
        cls = MCP3008 if chip == "mcp3008" else MCP3208
        self.chip, self.device, self.vref = chip, device, vref
        self.bits = BITS[chip]
        self.full_scale = (1 << self.bits) - 1
        self._devs: dict[int, Any] = {}
        # gpiozero 2's software SPI bus (mock pins, or a Pi without spidev) builds itself
        # without the factory it was given and so asks for a default one, which a PC has not:
        # lend it ours while the channels open (hardware SPI never asks)
        lent = Device.pin_factory is None
        if lent:
            Device.pin_factory = factory
        try:
            for ch in channels:
                self._devs[ch] = cls(
                    channel=ch, device=device, max_voltage=vref, pin_factory=factory
                )
        except Exception as e:  # gpiozero's SPI errors, a pin already in use, no spidev
            self.close()
            raise AdcError(f"cannot open the {chip} on SPI0 CE{device}: {e}") from None
        finally:
            if lent:
                Device.pin_factory = None

    @property
    def channels(self) -> tuple[int, ...]:
        return tuple(self._devs)

    def _raw(self, dev: Any) -> int:
        # gpiozero's MCP3xxx.value masks off the null bit; it is read here to know the chip
        # answered (MISO pulled up reads it as 1 with no chip on the bus)
        try:
            words = dev._spi.transfer(dev._send())
        except Exception as e:  # spidev's OSError, a closed interface
            raise AdcNotAnswering(f"{self.chip} on SPI0 CE{self.device}: {e}") from None
        value = (words[-2] << 8) | words[-1]
        if (value >> self.bits) & 1:
            raise AdcNotAnswering(f"{self.chip} on SPI0 CE{self.device} does not answer")
        return int(value & self.full_scale)

    def read(self, channel: int) -> float:
        """One channel in volts; AdcNotAnswering if the chip did not answer."""
        dev = self._devs.get(channel)
        if dev is None:
            raise AdcError(f"channel {channel} was not opened")
        return self._raw(dev) * self.vref / self.full_scale

    def read_all(self, only: Collection[int] | None = None) -> dict[int, float]:
        """Every channel in use, or only those of `only` in use, in volts (one transfer each)."""
        chans = self._devs if only is None else [ch for ch in self._devs if ch in only]
        return {ch: self.read(ch) for ch in chans}

    def close(self) -> None:
        for dev in self._devs.values():
            with contextlib.suppress(Exception):  # closing on the way out, best effort
                dev.close()
        self._devs = {}


class _McpSlave(MockSPIDevice):  # type: ignore[misc]
    """The MCP3xxx's side of the SPI conversation: start bit, single/differential, three
    channel bits, then the sample bit, the null bit and the result, most significant first."""

    def __init__(self, owner: SimulatedAdc, select: int, factory: MockFactory) -> None:
        super().__init__(SPI_CLOCK, SPI_MOSI, SPI_MISO, select, pin_factory=factory)
        self._owner = owner
        self._phase = "idle"
        self.rx_buf: list[int] = []

    def on_start(self) -> None:
        super().on_start()
        self._phase = "idle"

    def on_bit(self) -> None:
        if self._phase == "idle":
            if self.rx_buf[-1]:
                self._phase = "mode"
                self.rx_buf = []
        elif self._phase == "mode":
            self._phase = "channel" if self.rx_buf[-1] else "diff"
            self.rx_buf = []
        elif self._phase in ("channel", "diff"):
            if len(self.rx_buf) == 3:
                code = self._owner.code(self.rx_word())
                self.tx_word(code, self._owner.bits + 2)
                self._phase = "result"
        elif self._phase == "result" and not self.tx_buf:
            self._phase = "idle"
            self.rx_buf = []


class SimulatedAdc:
    """The simulated MCP3xxx: set a channel's volts, unplug and plug the chip back."""

    def __init__(self, chip: Chip, device: int, vref: float) -> None:
        self.factory = MockFactory()  # its own header: see the module's note
        self.bits = BITS[chip]
        self.vref = vref
        self.volts: dict[int, float] = dict.fromkeys(range(8), 0.0)
        self._select = SPI_SELECT[device]
        self._slave: _McpSlave | None = _McpSlave(self, self._select, self.factory)

    def code(self, channel: int) -> int:
        v = min(max(self.volts.get(channel, 0.0), 0.0), self.vref)
        return round(v / self.vref * ((1 << self.bits) - 1))

    def set(self, channel: int, volts: float) -> None:
        self.volts[channel] = volts

    @property
    def plugged(self) -> bool:
        return self._slave is not None

    def unplug(self) -> None:
        """The chip leaves the bus: MISO floats up to its pull-up."""
        if self._slave is not None:
            self._slave.close()
            self._slave = None
        self.factory.pin(SPI_MISO).drive_high()

    def plug(self) -> None:
        if self._slave is None:
            self._slave = _McpSlave(self, self._select, self.factory)

    def close(self) -> None:
        if self._slave is not None:
            self._slave.close()
            self._slave = None
        self.factory.close()
