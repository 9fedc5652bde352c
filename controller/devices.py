"""The site's devices as the daemon sees them: sensor inputs, sirens, keypads with their
buzzers, and (in simulation) the simulated twin that plays the wiring and the detectors'
firmware. The config is mapped onto the drivers' plain values (controller/wiring.py) and the
drivers in hardware/ are built from them; the same code drives real pins and mock pins.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable
from datetime import datetime, timedelta
from functools import partial
from typing import Any

from controller.clock import Clock
from controller.config import SiteConfig
from controller.drone.twin import DetectorNode
from controller.supervision.bands import classify
from controller.supervision.component import DEFAULT_POLL
from controller.wiring import MAINS_INPUT, adc_channels, loop_volts, site_pins, twin_volts
from hardware import Buzzer, Inputs, MatrixKeypad, Outputs, pin_factory_for
from hardware.adc import AdcError, AdcReader, SimulatedAdc
from hardware.backend import HardwareError, close_pin_factory
from hardware.sim import SimulatedHardware, let_loop_run

OnSensor = Callable[[str, bool, datetime], None]
OnKey = Callable[[str, str, datetime], None]


class Devices:
    def __init__(
        self,
        cfg: SiteConfig,
        clock: Clock,
        loop: asyncio.AbstractEventLoop,
        *,
        simulate: bool,
        on_change: OnSensor,
        on_key: OnKey | None = None,
    ):
        self.cfg = cfg
        self.clock = clock
        self.simulate = simulate
        self.factory = pin_factory_for("simulated" if simulate else cfg.hardware.backend)
        self.sim: SimulatedHardware | None = None
        self.inputs: Inputs | None = None
        self.outputs: Outputs | None = None
        self.buzzers: dict[str, Buzzer] = {}
        self.keypads: dict[str, MatrixKeypad] = {}
        self.detector_nodes: dict[str, DetectorNode] = {}
        self.adc: AdcReader | None = None  # supervised loops and power (controller/supervision)
        self.adc_error = ""
        self.sim_adc: SimulatedAdc | None = None
        self._on_key = on_key
        pins = site_pins(cfg)
        try:
            if simulate:
                self.sim = SimulatedHardware(pins, self.factory)
                if any(p.id == MAINS_INPUT for p in pins.inputs):
                    self.sim.set(MAINS_INPUT, True)  # a healthy site has its mains
            self.outputs = Outputs.from_pins(pins.outputs, self.factory)
            self.inputs = Inputs(
                pins.inputs, self.factory, clock, loop, on_change, cfg.hardware.debounce
            )
            for k in pins.keypads:
                if k.buzzer is not None:
                    self.buzzers[k.id] = Buzzer(k.buzzer, self.factory, clock)
                self.keypads[k.id] = MatrixKeypad(
                    k.rows,
                    k.cols,
                    k.layout,
                    self.factory,
                    clock,
                    loop,
                    partial(self._key, k.id),
                    name=k.id,
                )
            self._open_adc()
        except BaseException:
            self.close()
            raise

    def _open_adc(self) -> None:
        """The ADC, if the config has one; in simulation its twin on gpiozero's mock SPI device,
        every channel at its quiet reading. A chip that cannot be opened is no crash: the
        supervision component reports it (E333) and its loops stay unknown."""
        a = self.cfg.adc
        if a is None:
            return
        factory = self.factory
        if self.simulate:
            self.sim_adc = SimulatedAdc(a.chip, a.device, a.vref)
            for ch, v in twin_volts(self.cfg).items():
                self.sim_adc.set(ch, v)
            factory = self.sim_adc.factory
        try:
            self.adc = AdcReader(a.chip, a.device, a.vref, adc_channels(self.cfg), factory)
        except AdcError as e:
            self.adc_error = str(e)

    def _key(self, keypad: str, char: str, at: datetime) -> None:
        if self._on_key is not None:
            self._on_key(keypad, char, at)

    def set_key_handler(self, on_key: OnKey) -> None:
        self._on_key = on_key

    # ------------------------------------------------------------------ daemon side

    def read_inputs(self) -> dict[str, bool]:
        """Every sensor's state now: the pins, and the supervised loops that read `alarm` (a
        loop that cannot be read, or reads cut or short, counts as quiet here)."""
        assert self.inputs is not None
        states = self.inputs.baseline()
        if self.adc is not None and self.cfg.adc is not None:
            try:
                volts = self.adc.read_all()
            except HardwareError:
                volts = {}
            for s in self.cfg.sensors:
                if s.loop is not None and s.loop.channel in volts:
                    bands = s.loop.band_set(self.cfg.adc.vref)
                    states[s.id] = classify(bands, volts[s.loop.channel]) == "alarm"
        return states

    def power_input(self, name: str) -> bool | None:
        """A power input on a pin (debounced, True while present), None if not wired to one."""
        if self.inputs is None or name not in {i.id for i in self.inputs}:
            return None
        return self.inputs[name].active

    def set_output(self, output: str, on: bool) -> None:
        assert self.outputs is not None
        self.outputs.set(output, on)

    def output_states(self) -> dict[str, bool]:
        states = self.outputs.states() if self.outputs else {}
        for kid, bz in self.buzzers.items():
            states[f"{kid}.buzzer"] = bz.is_on
        return states

    def serial_port(self, detector: str, configured: str) -> str:
        """The port a drone detector's reader opens: its simulated pty in simulation."""
        return self.sim.serial_port(detector) if self.sim is not None else configured

    def safe_state(self) -> None:
        """Sirens and buzzers off (stopping the daemon)."""
        if self.outputs is not None:
            for out in self.outputs:
                with contextlib.suppress(Exception):  # best effort on the way out
                    out.off()
        for bz in self.buzzers.values():
            bz.silence()

    def close(self) -> None:
        """Close every device, then the pin factory itself (it holds the GPIO chip). Safe to
        call more than once."""
        for node in self.detector_nodes.values():
            node.stop()
        self.detector_nodes = {}
        for kp in self.keypads.values():
            kp.close()
        for bz in self.buzzers.values():
            bz.close()
        if self.inputs is not None:
            self.inputs.close()
        if self.outputs is not None:
            self.outputs.close()
        if self.sim is not None:
            self.sim.close()
        if self.adc is not None:
            self.adc.close()
            self.adc = None
        if self.sim_adc is not None:
            self.sim_adc.close()
            self.sim_adc = None
        factory, self.factory = self.factory, None
        close_pin_factory(factory)

    # ------------------------------------------------------------------ simulation

    async def sim_set(self, sensor: str, active: bool) -> None:
        """Drive a simulated input and let it settle (a real contact takes the debounce time);
        a supervised loop goes to the middle of its alarm or normal band."""
        assert self.sim is not None
        loop = self.cfg.sensor(sensor).loop
        if loop is not None and self.cfg.adc is not None:
            await self.sim_wiring(sensor, loop_volts(loop, self.cfg.adc.vref, "alarm" if active else "normal"))
            return
        self.sim.set(sensor, active)
        await let_loop_run()
        advance = getattr(self.clock, "advance", None)
        if self.clock.virtual and advance is not None:
            advance(self.cfg.hardware.debounce + timedelta(milliseconds=1))
            await let_loop_run()

    async def _sim_settle(self, hold: timedelta) -> None:
        """On a virtual clock, let the ADC's polls see a new reading for `hold` (a real clock
        gets there on its own)."""
        await let_loop_run()
        advance = getattr(self.clock, "advance", None)
        if self.clock.virtual and advance is not None:
            # the first poll that sees it may come a poll late, and the one that settles it
            # a poll after the hold
            poll = self.cfg.adc.poll if self.cfg.adc is not None else DEFAULT_POLL
            advance(hold + 2 * poll + timedelta(milliseconds=1))
            await let_loop_run()

    async def sim_wiring(self, sensor: str, volts: float) -> None:
        """Put `volts` on a supervised loop's channel and let it settle (its debounce)."""
        assert self.sim_adc is not None
        loop = self.cfg.sensor(sensor).loop
        assert loop is not None
        self.sim_adc.set(loop.channel, volts)
        await self._sim_settle(loop.debounce)

    async def sim_channel(self, channel: int, volts: float) -> None:
        """Put `volts` on a power channel (mains, battery, siren line); its delay still runs
        on the daemon's clock (`sim advance`)."""
        assert self.sim_adc is not None
        self.sim_adc.set(channel, volts)
        await self._sim_settle(timedelta(0))

    async def sim_mains_pin(self, present: bool) -> None:
        """The PSU's AC-OK output on its pin: present or gone (its delay runs on the clock)."""
        assert self.sim is not None
        self.sim.set(MAINS_INPUT, present)
        await self._sim_settle(self.cfg.hardware.debounce)  # the pin's debounce, then a poll

    async def sim_adc_plugged(self, plugged: bool) -> None:
        assert self.sim_adc is not None
        if plugged:
            self.sim_adc.plug()
        else:
            self.sim_adc.unplug()
        await self._sim_settle(timedelta(0))

    async def sim_pulse(self, sensor: str, count: int, interval: float) -> None:
        assert self.sim is not None
        width = min(0.1, interval / 2)
        await self.sim.pulse(sensor, count=count, interval=interval, width=width, clock=self.clock)

    async def sim_keys(self, keypad: str, keys: str) -> None:
        assert self.sim is not None
        await self.sim.press_keys(keypad, keys, self.clock)

    def start_detector_nodes(self) -> None:
        """In simulation, each drone detector's firmware twin boots and starts its heartbeats.
        Call it once the readers have opened their ports (opening discards what waited)."""
        if self.sim is None:
            return
        for did, port in self.sim.serial.items():
            if did not in self.detector_nodes:
                self.detector_nodes[did] = node = DetectorNode(port, self.clock)
                node.start()

    def sim_heartbeat(self, detector: str, on: bool) -> None:
        self.detector_nodes[detector].set_beating(on)

    def sim_serial(self, detector: str, line: str | bytes) -> None:
        assert self.sim is not None
        self.sim.write_serial(detector, line)

    def sim_outputs(self) -> dict[str, Any]:
        assert self.sim is not None
        return self.sim.output_states()
