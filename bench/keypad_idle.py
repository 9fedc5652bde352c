"""Keypad idle CPU: a 4x3 matrix keypad driver (interrupt-driven) on an asyncio loop with
nobody typing, against the same loop with no keypad at all (the baseline), over the same
real-time window. Both run in child processes so neither pays for the other's start-up."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
from typing import Any

from bench.common import cpu_while_idle, figure, print_figures

WINDOW = 5.0
TARGET_EXTRA = 0.1  # percentage points of one core over the idle loop


def _child(with_keypad: bool, window: float = WINDOW) -> None:
    from controller.clock import RealClock
    from controller.config import Keypad
    from controller.wiring import keypad_pins
    from hardware import MatrixKeypad, pin_factory_for

    async def main() -> dict[str, float]:
        loop = asyncio.get_running_loop()
        kp = None
        if with_keypad:
            cfg = Keypad(
                id="keypad.hall", zones=["leadership"], rows=[6, 13, 19, 26], cols=[12, 16, 20]
            )
            pins = keypad_pins(cfg)
            kp = MatrixKeypad(
                pins.rows,
                pins.cols,
                pins.layout,
                pin_factory_for("simulated"),
                RealClock(loop),
                loop,
                lambda k, at: None,
                name=pins.id,
            )
        cpu, wall = await cpu_while_idle(window)
        return {"cpu_s": cpu, "wall_s": wall, "scans": kp.scans if kp else 0}

    print(json.dumps(asyncio.run(main())))


def measure(with_keypad: bool, window: float = WINDOW) -> dict[str, float]:
    out = subprocess.run(
        [sys.executable, "-m", "bench.keypad_idle", "--child", "1" if with_keypad else "0",
         str(window)],
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    ).stdout
    return json.loads(out.strip().splitlines()[-1])


def run(quick: bool = False) -> dict[str, Any]:
    window = 2.0 if quick else WINDOW
    base = measure(False, window)
    kp = measure(True, window)
    pct = 100 * kp["cpu_s"] / kp["wall_s"]
    base_pct = 100 * base["cpu_s"] / base["wall_s"]
    figures = [
        figure(
            f"keypad idle CPU over {window:.0f} s",
            pct,
            "% core",
            baseline=base_pct,
            baseline_name="idle asyncio loop, no keypad",
            target=f"<= baseline + {TARGET_EXTRA} points",
            ok=pct <= base_pct + TARGET_EXTRA,
        ),
        figure("keypad scans while idle", kp["scans"], "", ok=kp["scans"] == 0),
    ]
    print_figures("keypad idle (interrupt-driven matrix scan)", figures)
    return {"name": "keypad_idle", "quick": quick, "figures": figures}


if __name__ == "__main__":
    if len(sys.argv) == 4 and sys.argv[1] == "--child":
        _child(sys.argv[2] == "1", float(sys.argv[3]))
    else:
        run()
