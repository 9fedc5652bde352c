"""The alarm path while a hostile client floods the site's command topic, beside the same path
on a quiet broker, measured in the same run (issue 16; docs/security.md).

Both phases run bench/latency.py's samples on the real daemon (in process, simulated pins,
SQLite journal, outbox, MQTT link) through one local Mosquitto: sensor edge -> siren pin, and
sensor edge -> alarm event at a subscriber in its own process. In the flood phase a real MQTT
client in a process of its own (tests/flood.py) publishes junk on `P/cmd` at FLOOD_RATE
messages a second (the rate measured against a running daemon in the issue) for the whole
phase. The quiet phase is the baseline; the target is the flood figure at most 2x the quiet
one at p50, for both paths.
"""

from __future__ import annotations

import asyncio
from typing import Any

from bench import latency
from bench.common import (
    EVENT_TOPIC,
    InProcessSite,
    broker,
    figure,
    print_figures,
    workspace,
)
from bench.latency import _ms, _samples, latency_config
from tests.flood import Flooder

FLOOD_RATE = 26_000.0
TARGET_RATIO = 2.0
CMD_TOPIC = "officeguard/bench-site/cmd"


def run(quick: bool = False) -> dict[str, Any]:
    samples = 40 if quick else 150
    with workspace("flood") as w, broker(w) as b:
        cfg = latency_config(w / "flood.yaml", b.url)

        async def main() -> dict[str, Any]:
            site = InProcessSite(cfg, w / "state")
            await site.start()
            try:
                # the subscriber takes the site's events and the baseline's, not the flood
                topic = "officeguard/+/event"
                assert EVENT_TOPIC.startswith("officeguard/") and EVENT_TOPIC.endswith("/event")
                latency.BarePublishCommit.TOPIC = "officeguard/bench-baseline/event"
                quiet = await _samples(site, b.port, samples, w / "q", topic)
                (w / "f").mkdir(exist_ok=True)
                flooder = Flooder(b.port, CMD_TOPIC, FLOOD_RATE, 3600)
                try:
                    await asyncio.sleep(2.0)  # in full swing before the first sample
                    flooded = await _samples(site, b.port, samples, w / "f", topic)
                    running = flooder.running()
                finally:
                    flooder.stop()
                commands = site.daemon.reporting.commands.status() if site.daemon.reporting else {}
                return {"quiet": quiet, "flood": flooded, "running": running, "commands": commands}
            finally:
                await site.stop()

        (w / "q").mkdir(exist_ok=True)
        r = asyncio.run(main())
    q, f = r["quiet"], r["flood"]
    figures = []
    for path, key in (("edge -> siren", "edge_to_siren"), ("edge -> event at subscriber", "edge_to_event")):
        for p in (50, 99):
            ok = None
            if p == 50:
                ok = _ms(f[key], 50) <= TARGET_RATIO * _ms(q[key], 50)
            figures.append(
                figure(
                    f"{path} p{p} during a {FLOOD_RATE / 1000:g}k msgs/s flood",
                    _ms(f[key], p),
                    "ms",
                    baseline=_ms(q[key], p),
                    baseline_name="the same, quiet broker",
                    target=f"<= {TARGET_RATIO:.0f}x baseline" if p == 50 else "",
                    ok=ok,
                )
            )
    missing = f["missing"] + q["missing"]
    figures.append(figure("alarm events not received", missing, "", ok=missing == 0))
    figures.append(figure("flood still running at the end", int(r["running"]), "", ok=r["running"]))
    print_figures(f"flood ({len(f['edge_to_siren'])} samples each phase)", figures)
    print(f"  the daemon's command counters after the flood: {r['commands']}")
    return {"name": "flood", "quick": quick, "figures": figures,
            "detail": {"samples": len(f["edge_to_siren"]), "rate": FLOOD_RATE,
                       "commands": {k: v for k, v in r["commands"].items() if k != "not_listening"}}}


if __name__ == "__main__":
    run()
