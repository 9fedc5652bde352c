"""ADC polling CPU: the supervision component polling 8 channels of an MCP3008 (6 supervised
loops at `adc.poll`, 200 ms, the default, 100 ms reported beside it; mains and battery once a
second, as the component reads power channels) on an asyncio loop with a real clock, nothing
happening, against the same loop with no component (the baseline), over the same real-time
window. Each runs in a child process so neither pays for the other's start-up.

Two readers: gpiozero's MCP3008 on the simulated chip (gpiozero's mock SPI device: a software
SPI bus that bit-bangs 24 clock edges per channel through mock pins in Python, a pessimistic
stand-in for a Pi's hardware SPI, where spidev does one ioctl per channel), and a reader that
returns fixed volts (what the component itself costs: decoding, conditions, deadlines).
Target: the ADC polling under 1 % of one core over the idle loop, with the software SPI bus.
"""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
from collections.abc import Collection
from datetime import datetime
from typing import Any

from bench.common import cpu_while_idle, figure, print_figures

WINDOW = 10.0
TARGET_EXTRA = 1.0  # percentage points of one core over the idle loop
RATE = "200ms"  # the config's default `adc.poll`
LOOPS = 6


def _config(poll: str) -> Any:
    from controller.config import parse_config

    sensors = "".join(
        f"""
  - id: door.{i}
    type: door
    zone: office
    loop: {{channel: {i}}}"""
        for i in range(LOOPS)
    )
    text = f"""
site: {{id: bench}}
zones:
  - id: office
adc: {{chip: mcp3008, poll: {poll}}}
sensors:{sensors}
power:
  mains: {{channel: 6}}
  battery: {{channel: 7}}
"""
    return parse_config(text).config


class _Site:
    """The few members of the port the component uses, on a real engine and a real clock."""

    def __init__(self, cfg: Any, clock: Any, reader: Any) -> None:
        from controller.engine import Emit, Engine
        from controller.site import TroubleBoard
        from controller.timers import TimerDriver

        self.config = cfg
        self.clock = clock
        self.timers = TimerDriver(clock)
        self.trouble_board = TroubleBoard()
        self.engine = Engine(cfg)
        self.engine.boot(clock.now(), {s.id: False for s in cfg.sensors}, None)
        self._reader = reader
        self._emit = Emit
        self.recorded: list[Any] = []

    def analog(self) -> Any:
        return self._reader

    def submit(self, inp: Any) -> list[Any]:
        effects = self.engine.handle(inp, self.clock.now())
        self.recorded += [e.event for e in effects if isinstance(e, self._emit)]
        return []

    def record(self, drafts: list[Any]) -> list[Any]:
        self.recorded += drafts
        return []

    def started_at(self) -> datetime:
        return self.clock.now()  # type: ignore[no-any-return]


class _FixedReader:
    def __init__(self, volts: dict[int, float]) -> None:
        self.volts = volts

    def read_all(self, only: Collection[int] | None = None) -> dict[int, float]:
        return {ch: v for ch, v in self.volts.items() if only is None or ch in only}


def _child(mode: str, poll: str, window: float) -> None:
    from controller.clock import RealClock
    from controller.supervision.component import Supervision
    from controller.wiring import adc_channels, twin_volts
    from hardware.adc import AdcReader, SimulatedAdc

    async def main() -> dict[str, float]:
        loop = asyncio.get_running_loop()
        comp = None
        sim = reader = None
        if mode != "none":
            cfg = _config(poll)
            clock = RealClock(loop)
            volts = twin_volts(cfg)
            if mode == "spi":
                sim = SimulatedAdc("mcp3008", 0, 3.3)
                for ch, v in volts.items():
                    sim.set(ch, v)
                reader = AdcReader("mcp3008", 0, 3.3, adc_channels(cfg), sim.factory)
            else:
                reader = _FixedReader(volts)
            comp = Supervision(_Site(cfg, clock, reader))  # type: ignore[arg-type]
            comp.start()
        cpu, wall = await cpu_while_idle(window)
        polls = comp.polls if comp is not None else 0
        if comp is not None:
            st = comp.status() or {}
            assert all(
                loop_["state"] == "normal" for loop_ in st["supervision"]["loops"].values()
            ), st
            comp.close()
        if reader is not None and hasattr(reader, "close"):
            reader.close()
        if sim is not None:
            sim.close()
        return {"cpu_s": cpu, "wall_s": wall, "polls": polls}

    print(json.dumps(asyncio.run(main())))


def measure(mode: str, poll: str, window: float) -> dict[str, float]:
    out = subprocess.run(
        [sys.executable, "-m", "bench.adc_poll", "--child", mode, poll, str(window)],
        capture_output=True,
        text=True,
        timeout=window + 60,
        check=True,
    )
    return json.loads(out.stdout.strip().splitlines()[-1])  # type: ignore[no-any-return]


def run(quick: bool = False) -> dict[str, Any]:
    window = 4.0 if quick else WINDOW
    base = measure("none", RATE, window)
    spi = measure("spi", RATE, window)
    fast = measure("spi", "100ms", window)
    fixed = measure("fixed", RATE, window)

    def pct(r: dict[str, float]) -> float:
        return 100 * r["cpu_s"] / r["wall_s"]

    extra_spi = pct(spi) - pct(base)
    extra_fast = pct(fast) - pct(base)
    extra_fixed = pct(fixed) - pct(base)
    per_poll_us = 1e6 * max(0.0, spi["cpu_s"] - base["cpu_s"]) / max(1, spi["polls"])
    figures = [
        figure(
            f"6 loops every {RATE} + mains and battery every 1 s, gpiozero MCP3008 on the mock (software) SPI bus: CPU",
            pct(spi),
            "% of a core",
            baseline=pct(base),
            baseline_name="idle asyncio loop",
            target=f"<= {TARGET_EXTRA} point over the baseline",
            ok=extra_spi <= TARGET_EXTRA,
        ),
        figure(
            "the same every 100ms: CPU",
            pct(fast),
            "% of a core",
            baseline=pct(base),
            baseline_name="idle asyncio loop",
            target="reported (the software SPI bus is the cost: see the poll figure)",
        ),
        figure(
            f"the component alone (fixed readings) every {RATE}: CPU",
            pct(fixed),
            "% of a core",
            baseline=pct(base),
            baseline_name="idle asyncio loop",
            target="reported",
        ),
        figure(
            "CPU per poll, on average (software SPI)",
            per_poll_us,
            "µs",
            target="reported",
        ),
        figure("polls in the window", float(spi["polls"]), "", target="reported"),
    ]
    return {
        "name": "adc_poll",
        "figures": figures,
        "extra_points": extra_spi,
        "extra_points_100ms": extra_fast,
        "extra_points_component": extra_fixed,
    }


def main() -> int:
    if len(sys.argv) >= 2 and sys.argv[1] == "--child":
        _child(sys.argv[2], sys.argv[3], float(sys.argv[4]))
        return 0
    result = run(quick="--quick" in sys.argv)
    print_figures("ADC polling (supervised wiring)", result["figures"])
    return 0 if all(f.get("ok") is not False for f in result["figures"]) else 1


if __name__ == "__main__":
    raise SystemExit(main())
