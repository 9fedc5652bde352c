"""Patrol checkpoint latency: a badge read -> the "visited" event at a subscriber, against a
sensor edge -> its event on the same daemon in the same run, sample by sample (issue 18).

Both go through the real daemon in this process (virtual clock, simulated pins), its journal
(WAL, synchronous=FULL), outbox and MQTT link, a local Mosquitto and a subscriber in its own
process. The badge: the simulated Wiegand reader sends the 26 bits of a guard's badge on the
mock pins from another thread (as lgpio's callback thread would), the driver decodes them at the
last bit, the patrol component identifies the badge and records the visit. The edge: a tamper
loop opens (a `tamper` event, no arming needed). Target: badge -> event <= 2x edge -> event at
p50.
"""

from __future__ import annotations

import asyncio
import time
from datetime import timedelta
from pathlib import Path
from typing import Any

import yaml

from bench.common import (
    BenchError,
    InProcessSite,
    Subscriber,
    broker,
    figure,
    percentile,
    print_figures,
    site_config,
    workspace,
)

TAMPER_PIN = 17
D0, D1 = 7, 8
BADGE = 188 * 65536 + 12345
TARGET_RATIO = 2.0


def patrol_config(path: Path, url: str) -> Path:
    site_config(
        path,
        url,
        zones=[{"id": "hall", "name": "Hall"}],
        sensors=[
            {
                "id": "tamper.box",
                "name": "Cabinet",
                "type": "tamper",
                "zone": "hall",
                "pin": TAMPER_PIN,
            }
        ],
        users=[{"name": "guard", "code": "2468", "badge": str(BADGE)}],
    )
    data = yaml.safe_load(path.read_text(encoding="utf-8"))
    data["checkpoints"] = [{"id": "cp.gate", "kind": "badge", "d0": D0, "d1": D1}]
    path.write_text(yaml.safe_dump(data, allow_unicode=True), encoding="utf-8")
    return path


async def _samples(site: InProcessSite, port: int, samples: int) -> dict[str, Any]:
    from controller.patrol.component import Patrols

    d = site.daemon
    assert d.journal is not None
    patrols = d.component(Patrols)
    if patrols is None or "cp.gate" not in patrols.twins:
        raise BenchError("the patrol component has no simulated reader")
    twin = patrols.twins["cp.gate"]
    step = d.cfg.hardware.debounce + timedelta(milliseconds=1)
    if not await site.drained(10):
        raise BenchError("the start-up events were not delivered")
    sub = await asyncio.to_thread(Subscriber, port, "#", times=True)
    badge_starts: dict[str, float] = {}
    edge_starts: dict[str, float] = {}

    def in_thread(action: Any) -> float:
        t0 = time.perf_counter()
        action()
        return t0

    async def newest(kind: str, seq0: int, what: str | None = None) -> Any:
        for _ in range(2000):
            evs = [e for e in d.journal.events(kind=kind) if e.seq > seq0]  # type: ignore[union-attr]
            evs = [e for e in evs if what is None or e.detail.get("patrol") == what]
            if evs:
                return evs[0]
            await asyncio.sleep(0.0005)
        raise BenchError(f"no {kind} event")

    try:
        for i in range(samples + 5):
            warm = i < 5
            # a badge
            seq0 = d.journal.last_seq()
            t0 = await asyncio.to_thread(in_thread, lambda: twin.present(BADGE))
            ev = await newest("patrol", seq0, "visited")
            if not warm:
                badge_starts[ev.id] = t0
            await site.drained(10)
            await asyncio.sleep(0.02)  # the reader's line falls silent between two reads
            # a sensor edge
            seq0 = d.journal.last_seq()
            t0 = await asyncio.to_thread(in_thread, lambda: site.sim.set("tamper.box", True))
            ev = await newest("tamper", seq0)
            if not warm:
                edge_starts[ev.id] = t0
            await site.drained(10)
            site.sim.set("tamper.box", False)
            for _ in range(2):
                await asyncio.sleep(0)
                site.clock.advance(step)
            await site.drained(10)
            await asyncio.sleep(0.002)
        await asyncio.sleep(0.2)
        res = await asyncio.to_thread(sub.finish)
    finally:
        sub.close()
    times: dict[str, float] = res["times"]
    return {
        "badge": [times[k] - t for k, t in badge_starts.items() if k in times],
        "edge": [times[k] - t for k, t in edge_starts.items() if k in times],
        "missing": sum(1 for k in (*badge_starts, *edge_starts) if k not in times),
    }


def run(quick: bool = False) -> dict[str, Any]:
    samples = 40 if quick else 200
    with workspace("patrol") as w, broker(w) as b:
        cfg = patrol_config(w / "patrol.yaml", b.url)

        async def main() -> dict[str, Any]:
            site = InProcessSite(cfg, w / "state")
            await site.start()
            try:
                return await _samples(site, b.port, samples)
            finally:
                await site.stop()

        r = asyncio.run(main())
    badge, edge = r["badge"], r["edge"]
    figures = []
    for p in (50, 99):
        value, base = 1000 * percentile(badge, p), 1000 * percentile(edge, p)
        figures.append(
            figure(
                f"badge read -> visited event at subscriber p{p}",
                value,
                "ms",
                baseline=base,
                baseline_name="sensor edge -> event, same run",
                target=f"<= {TARGET_RATIO:.0f}x baseline" if p == 50 else "",
                ok=(value <= TARGET_RATIO * base) if p == 50 else None,
            )
        )
    figures.append(
        figure("patrol/edge events not received", r["missing"], "", ok=r["missing"] == 0)
    )
    print_figures(f"patrol ({len(badge)} samples each)", figures)
    return {"name": "patrol", "quick": quick, "figures": figures, "detail": {"samples": len(badge)}}


if __name__ == "__main__":
    run()
