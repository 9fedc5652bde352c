"""The DC-09 channel beside MQTT, in the same run of the latency bench's alarm path: the real
daemon (in this process, simulated pins) with a `dc09` section reports every event both to a
local Mosquitto and, over TCP, to a loopback DC-09 receiver in a thread of its own that ACKs
each frame and notes when (`time.perf_counter()`).

Figures: sensor edge -> the receiver's ACK of the alarm (E131), against the edge -> event at
the MQTT subscriber of the same samples. Target: p50 <= 2x the MQTT figure.

Then the storm bench (bench/storm.py) without and with the DC-09 channel, alternated three
times in the same run: the MQTT channel's events/s with DC-09 beside it (median), against its
rate without. Target: >= 90 % (what this shared machine's run-to-run noise allows calling
"nothing measurable"); the daemon's CPU per event in both is printed beside.
"""

from __future__ import annotations

import asyncio
import re
import threading
import time
from collections.abc import Awaitable, Callable
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


def on_site(
    cfg: Path, state: Path, work: Callable[[InProcessSite], Awaitable[dict[str, Any]]]
) -> dict[str, Any]:
    """`work` on the real daemon of `cfg`, in this process, started and stopped around it."""

    async def main() -> dict[str, Any]:
        site = InProcessSite(cfg, state)
        await site.start()
        try:
            return await work(site)
        finally:
            await site.stop()

    return asyncio.run(main())


def with_dc09(cfg: Path, port: int) -> None:
    data = yaml.safe_load(cfg.read_text(encoding="utf-8"))
    data["dc09"] = {"account": "1234", "primary": {"host": "127.0.0.1", "port": port, "poll": "0s"}}
    cfg.write_text(yaml.safe_dump(data), encoding="utf-8")


def storm_rates(changes: int, rounds: int) -> dict[str, Any]:
    """The storm's MQTT events/s without and with the DC-09 channel, alternated `rounds` times
    (this machine is shared: alternating lets both see the same load), and the daemon's CPU
    per event in each."""
    rates: dict[bool, list[float]] = {False: [], True: []}
    cpu: dict[bool, list[float]] = {False: [], True: []}
    at_centre: list[int] = []
    for _ in range(rounds):
        for dc09 in (False, True):
            rx = AckingReceiver() if dc09 else None
            with workspace("dc09-storm") as w, broker(w) as b:
                cfg = storm_config(w / "storm.yaml", b.url)
                if rx is not None:
                    with_dc09(cfg, rx.port)
                port = b.port
                r = on_site(cfg, w / "state", lambda site, port=port: _storm(site, port, changes))
            if r["lost"]:
                raise BenchError(f"the storm lost {r['lost']} events")
            rates[dc09].append(float(r["rate"]))
            cpu[dc09].append(float(r["cpu_us_per_event"]))
            if rx is not None:
                at_centre.append(len(rx.arrivals))
                rx.close()
    return {
        "without": percentile(rates[False], 50),
        "with": percentile(rates[True], 50),
        "cpu_without": percentile(cpu[False], 50),
        "cpu_with": percentile(cpu[True], 50),
        "at_centre": percentile([float(n) for n in at_centre], 50),
        "rates": {"without": rates[False], "with": rates[True]},
    }


def run(quick: bool = False) -> dict[str, Any]:
    samples = 60 if quick else 300
    rx = AckingReceiver()
    with workspace("dc09") as w, broker(w) as b:
        cfg = latency_config(w / "dc09.yaml", b.url)
        with_dc09(cfg, rx.port)

        r = on_site(cfg, w / "state", lambda site: _samples(site, b.port, samples, w))
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
    st = storm_rates(changes, rounds=3)
    figures.append(
        figure(
            f"storm: {changes} changes -> MQTT events/s with DC-09 beside (median of 3)",
            st["with"],
            "ev/s",
            baseline=st["without"],
            baseline_name="the same storm without DC-09, alternated",
            target=f">= {TARGET_STORM_SHARE:.0%} of baseline",
            ok=st["with"] >= TARGET_STORM_SHARE * st["without"],
        )
    )
    figures.append(
        figure(
            "storm: daemon CPU per event with DC-09 beside",
            st["cpu_with"],
            "us",
            baseline=st["cpu_without"],
            baseline_name="without DC-09",
        )
    )
    figures.append(
        figure("storm: events at the DC-09 receiver when MQTT had all", st["at_centre"], "")
    )
    print_figures(f"dc09 ({len(dc09)} samples)", figures)
    detail = {"samples": len(dc09), "storm_rates": st["rates"]}
    return {"name": "dc09", "quick": quick, "figures": figures, "detail": detail}


if __name__ == "__main__":
    run(quick=True)
