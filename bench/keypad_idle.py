"""Keypad idle CPU: a 4x3 matrix keypad driver (interrupt-driven) on an asyncio loop with
nobody typing, against the same loop with no keypad at all (the baseline), over the same
real-time window. Both run in child processes so neither pays for the other's start-up."""

from __future__ import annotations

import asyncio
import json
import resource
import subprocess
import sys
import time

WINDOW = 5.0


def _child(with_keypad: bool) -> None:
    from controller.clock import RealClock
    from controller.config import Keypad
    from hardware import MatrixKeypad, pin_factory_for

    async def main() -> dict[str, float]:
        loop = asyncio.get_running_loop()
        kp = None
        if with_keypad:
            cfg = Keypad(
                id="keypad.hall", zones=["leadership"], rows=[6, 13, 19, 26], cols=[12, 16, 20]
            )
            kp = MatrixKeypad.from_config(
                cfg, pin_factory_for("simulated"), RealClock(loop), loop, lambda k, at: None
            )
        r0 = resource.getrusage(resource.RUSAGE_SELF)
        t0 = time.monotonic()
        await asyncio.sleep(WINDOW)
        r1 = resource.getrusage(resource.RUSAGE_SELF)
        wall = time.monotonic() - t0
        cpu = (r1.ru_utime - r0.ru_utime) + (r1.ru_stime - r0.ru_stime)
        return {"cpu_s": cpu, "wall_s": wall, "scans": kp.scans if kp else 0}

    print(json.dumps(asyncio.run(main())))


def measure(with_keypad: bool) -> dict[str, float]:
    out = subprocess.run(
        [sys.executable, "-m", "bench.keypad_idle", "--child", "1" if with_keypad else "0"],
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    ).stdout
    return json.loads(out.strip().splitlines()[-1])


def run() -> dict[str, object]:
    base = measure(False)
    kp = measure(True)
    pct = 100 * kp["cpu_s"] / kp["wall_s"]
    base_pct = 100 * base["cpu_s"] / base["wall_s"]
    print(
        f"keypad idle CPU: {pct:.3f} % of one core over {kp['wall_s']:.1f} s "
        f"(baseline idle loop {base_pct:.3f} %; difference {pct - base_pct:+.3f} points), scans while idle: {kp['scans']}"
    )
    return {
        "name": "keypad_idle",
        "cpu_percent": pct,
        "baseline_cpu_percent": base_pct,
        "scans": kp["scans"],
    }


if __name__ == "__main__":
    if len(sys.argv) == 3 and sys.argv[1] == "--child":
        _child(sys.argv[2] == "1")
    else:
        run()
