"""The DC-09 channel beside MQTT, in the same run of the latency bench's alarm path: the real
daemon (in this process, simulated pins) with a `dc09` section reports every event both to a
local Mosquitto and, over TCP, to a loopback DC-09 receiver in a thread of its own that ACKs
each frame and notes when (`time.perf_counter()`).

Figures: sensor edge -> the receiver's ACK of the alarm (E131), against the edge -> event at
the MQTT subscriber of the same samples. Target: p50 <= 2x the MQTT figure.

Then the storm bench (bench/storm.py) twice in the same run, without and with the DC-09
channel: the MQTT channel's events/s with DC-09 beside it, against its rate without. Target:
>= 90 % (what this machine's run-to-run noise allows calling "nothing measurable").
"""

from __future__ import annotations

import asyncio
import re
import threading
import time
from pathlib import Path
from typing import Any

import yaml

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
from bench.storm import _storm, storm_config
from controller.dc09.frame import crc16

TARGET_RATIO = 2.0
TARGET_STORM_SHARE = 0.9
_MSG = re.compile(rb'"ADM-CID"(\d{4})R0L0#1234\[#1234\|(\d{4}) ')


class AckingReceiver:
    """ACKs every frame at once; keeps (time, QEEE) of each ADM-CID message."""

    def __init__(self) -> None:
        self.arrivals: list[tuple[float, str]] = []
        self.loop = asyncio.new_event_loop()
        threading.Thread(target=self.loop.run_forever, daemon=True).start()
        self.server = asyncio.run_coroutine_threadsafe(self._start(), self.loop).result(10)
        self.port = self.server.sockets[0].getsockname()[1]

    async def _start(self) -> asyncio.Server:
        return await asyncio.start_server(self._serve, "127.0.0.1", 0)

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        import socket

        writer.get_extra_info("socket").setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        try:
            while True:
                raw = await reader.readuntil(b"\r")
                m = _MSG.search(raw)
                seq = m.group(1).decode() if m else raw.split(b'"')[2][:4].decode()
                body = f'"ACK"{seq}R0L0#1234[]'.encode()
                writer.write(b"\n" + f"{crc16(body):04X}{len(body):04X}".encode() + body + b"\r")
                if m:
                    self.arrivals.append((time.perf_counter(), m.group(2).decode()))
        except (asyncio.IncompleteReadError, ConnectionError):
            writer.close()

    def close(self) -> None:
        self.loop.call_soon_threadsafe(self.server.close)
        self.loop.call_soon_threadsafe(self.loop.stop)


def with_dc09(cfg: Path, port: int) -> None:
    data = yaml.safe_load(cfg.read_text(encoding="utf-8"))
    data["dc09"] = {"account": "1234", "primary": {"host": "127.0.0.1", "port": port, "poll": "0s"}}
    cfg.write_text(yaml.safe_dump(data), encoding="utf-8")


def storm_rates(changes: int) -> tuple[float, float, int]:
    """The storm's MQTT events/s without, then with, the DC-09 channel; and how many events the
    DC-09 receiver had when the MQTT subscriber had them all."""
    rates = []
    at_centre = 0
    for dc09 in (False, True):
        rx = AckingReceiver() if dc09 else None
        with workspace("dc09-storm") as w, broker(w) as b:
            cfg = storm_config(w / "storm.yaml", b.url)
            if rx is not None:
                with_dc09(cfg, rx.port)

            async def main(cfg: Path = cfg, w: Path = w, port: int = b.port) -> dict[str, Any]:
                site = InProcessSite(cfg, w / "state")
                await site.start()
                try:
                    return await _storm(site, port, changes)
                finally:
                    await site.stop()

            r = asyncio.run(main())
        if r["lost"]:
            raise BenchError(f"the storm lost {r['lost']} events")
        rates.append(float(r["rate"]))
        if rx is not None:
            at_centre = len(rx.arrivals)
            rx.close()
    return rates[0], rates[1], at_centre


def run(quick: bool = False) -> dict[str, Any]:
    samples = 60 if quick else 300
    rx = AckingReceiver()
    with workspace("dc09") as w, broker(w) as b:
        cfg = latency_config(w / "dc09.yaml", b.url)
        with_dc09(cfg, rx.port)

        async def main() -> dict[str, Any]:
            site = InProcessSite(Path(cfg), w / "state")
            await site.start()
            try:
                return await _samples(site, b.port, samples, w)
            finally:
                await site.stop()

        r = asyncio.run(main())
    rx.close()
    alarms = [t for t, q in rx.arrivals if q == "1131"]
    starts = r["starts"]
    if len(alarms) < len(starts):
        raise BenchError(f"{len(starts)} alarms, {len(alarms)} reached the DC-09 receiver")
    dc09 = [a - s for a, s in zip(alarms[-len(starts) :], starts, strict=True)]
    mqtt = r["edge_to_event"]
    if any(x < 0 for x in dc09):
        raise BenchError("a DC-09 alarm arrived before its edge: samples out of step")
    figures = []
    for p in (50, 99):
        value, base = 1000 * percentile(dc09, p), 1000 * percentile(mqtt, p)
        figures.append(
            figure(
                f"edge -> DC-09 ACK p{p}",
                value,
                "ms",
                baseline=base,
                baseline_name="edge -> MQTT event at subscriber, same samples",
                target=f"<= {TARGET_RATIO:.0f}x baseline" if p == 50 else "",
                ok=value <= TARGET_RATIO * base if p == 50 else None,
            )
        )
    changes = 2500 if quick else 10_000
    without, with_, at_centre = storm_rates(changes)
    figures.append(
        figure(
            f"storm: {changes} changes -> MQTT events/s with DC-09 beside",
            with_,
            "ev/s",
            baseline=without,
            baseline_name="the same storm without DC-09",
            target=f">= {TARGET_STORM_SHARE:.0%} of baseline",
            ok=with_ >= TARGET_STORM_SHARE * without,
        )
    )
    figures.append(figure("storm: events at the DC-09 receiver by the end", at_centre, ""))
    print_figures(f"dc09 ({len(dc09)} samples)", figures)
    return {"name": "dc09", "quick": quick, "figures": figures, "detail": {"samples": len(dc09)}}


if __name__ == "__main__":
    run(quick=True)
