"""The alarm path while cameras take their bursts (issue 22): sensor edge -> siren and sensor
edge -> event at a subscriber, measured exactly as bench/latency.py does, in alternating blocks
on one daemon: cameras off (the baseline, same run, same machine) and on, where every alarm
starts a burst of 3 snapshots at once (interval 0 s: the most the fetcher can overlap with the
alarm's own turn) from a simulated camera with digest authentication in another process.
Target: each figure with cameras within 10 % of the one without (p50).
"""

from __future__ import annotations

import asyncio
import subprocess
import sys
from pathlib import Path
from typing import Any

from bench.common import (
    BenchError,
    InProcessSite,
    broker,
    figure,
    percentile,
    print_figures,
    workspace,
)
from bench.latency import _samples, latency_config

TARGET = 1.10
TWIN = """
import sys, time
from controller.camera.twin import CameraTwin
t = CameraTwin("admin", "bench-pass", label="bench").start()
print(t.url, flush=True)
sys.stdin.read()
"""


def _camera_section(url: str, creds: Path) -> str:
    return (
        "cameras:\n"
        "  - id: cam.hall\n"
        f"    url: {url}\n"
        f"    credentials_file: {creds}\n"
        "    zones: [hall]\n"
        "    burst: 3\n"
        "    interval: 0s\n"
        "    timeout: 5s\n"
    )


def run(quick: bool = False) -> dict[str, Any]:
    blocks, per_block = (2, 30) if quick else (4, 60)
    with workspace("camera") as w, broker(w) as b:
        twin = subprocess.Popen([sys.executable, "-c", TWIN], stdin=subprocess.PIPE,
                                stdout=subprocess.PIPE, text=True)  # fmt: skip
        try:
            assert twin.stdout is not None
            url = twin.stdout.readline().strip()
            if not url:
                raise BenchError("the simulated camera did not start")
            creds = w / "camera.secret"
            creds.write_text("admin:bench-pass\n")
            creds.chmod(0o600)
            cfg = latency_config(w / "camera.yaml", b.url)
            cfg.write_text(cfg.read_text() + _camera_section(url, creds))

            async def main() -> dict[str, list[float]]:
                from controller.camera.component import Cameras

                site = InProcessSite(cfg, w / "state")
                await site.start()
                cams = site.daemon.component(Cameras)
                if cams is None:
                    raise BenchError("no cameras component")
                every = dict(cams.cameras)
                out: dict[str, list[float]] = {k: [] for k in ("siren_off", "siren_on", "event_off", "event_on")}
                try:
                    for _ in range(blocks):
                        for mode in ("off", "on"):
                            cams.cameras = every if mode == "on" else {}
                            r = await _samples(site, b.port, per_block, w, topic="officeguard/+/event")
                            out[f"siren_{mode}"] += r["edge_to_siren"]
                            out[f"event_{mode}"] += r["edge_to_event"]
                            await cams.settle()
                    out["snapshots"] = [float(len(cams.store.listing()))]
                finally:
                    await site.stop()
                return out

            r = asyncio.run(main())
        finally:
            if twin.stdin is not None:
                twin.stdin.close()
            twin.wait(10)
    figures = []
    for key, name in (("siren", "edge -> siren"), ("event", "edge -> event at subscriber")):
        on, off = 1000 * percentile(r[f"{key}_on"], 50), 1000 * percentile(r[f"{key}_off"], 50)
        figures.append(figure(f"{name} p50, bursts under way", on, "ms", baseline=off,
                              baseline_name="cameras off, same run", target="<= 1.1x baseline",
                              ok=on <= TARGET * off))  # fmt: skip
        on99, off99 = 1000 * percentile(r[f"{key}_on"], 99), 1000 * percentile(r[f"{key}_off"], 99)
        figures.append(figure(f"{name} p99, bursts under way", on99, "ms", baseline=off99,
                              baseline_name="cameras off, same run"))  # fmt: skip
    figures.append(figure("snapshots kept", r["snapshots"][0], "", ok=r["snapshots"][0] > 0))
    print_figures(f"camera bursts ({len(r['siren_on'])} alarms with, {len(r['siren_off'])} without)", figures)
    return {"name": "camera", "quick": quick, "figures": figures}


if __name__ == "__main__":
    run(quick="--quick" in sys.argv)
