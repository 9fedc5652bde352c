"""What the benchmarks share: a Mosquitto on a free port started by the bench, a subscriber in
its own process that timestamps what it receives, simulated site configs, the daemon run in
process on a virtual clock, percentiles, and one way to report a figure beside its baseline.

Timestamps are `time.perf_counter()`, which on Linux is CLOCK_MONOTONIC: the same clock in every
process of the machine, so a time taken in the subscriber's process can be compared with one
taken in the bench's.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import queue
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import yaml

from controller.local_mosquitto import LocalMosquitto

ROOT = Path(__file__).resolve().parent.parent
SIM_START = "2026-02-17T01:20:00+07:00"  # Tết night, 01:20: the hour break-ins happen


class BenchError(RuntimeError):
    """The bench could not run (no broker binary, a child that did not start...)."""


# ------------------------------------------------------------------------- figures


def percentile(values: list[float], p: float) -> float:
    """The p-th percentile (0-100), nearest rank; values need not be sorted."""
    if not values:
        raise ValueError("no samples")
    xs = sorted(values)
    k = max(0, min(len(xs) - 1, round(p / 100 * (len(xs) - 1))))
    return xs[k]


def figure(
    name: str,
    value: float,
    unit: str,
    *,
    baseline: float | None = None,
    baseline_name: str = "",
    target: str = "",
    ok: bool | None = None,
) -> dict[str, Any]:
    """One measured figure: its value, the baseline measured in the same run and their ratio,
    and the target with PASS/FAIL (ok=None: reported, no target)."""
    ratio = value / baseline if baseline else None
    return {
        "name": name,
        "value": value,
        "unit": unit,
        "baseline": baseline,
        "baseline_name": baseline_name,
        "ratio": ratio,
        "target": target,
        "pass": ok,
    }


def fmt(v: float | None, unit: str = "") -> str:
    if v is None:
        return "-"
    if unit == "ms":
        return f"{v:.3f} ms" if v < 10 else f"{v:.1f} ms"
    if abs(v) >= 100:
        return f"{v:,.0f} {unit}".strip()
    return f"{v:.3g} {unit}".strip()


def print_figures(title: str, figures: list[dict[str, Any]]) -> None:
    print(f"\n== {title}")
    for f in figures:
        verdict = "" if f["pass"] is None else ("PASS" if f["pass"] else "FAIL")
        base = ""
        if f["baseline"] is not None:
            base = f"  baseline {fmt(f['baseline'], f['unit'])} ({f['baseline_name']})"
            if f["ratio"] is not None:
                base += f"  ratio {f['ratio']:.2f}x"
        target = f"  target {f['target']}" if f["target"] else ""
        print(f"  {f['name']:<34} {fmt(f['value'], f['unit']):>14}{base}{target}  {verdict}")


# ------------------------------------------------------------------------- broker


class BenchBroker(LocalMosquitto):
    """Mosquitto on a free local port (controller/local_mosquitto.py), configured as the
    security office's broker would be for throughput: no per-client inflight or queue cap,
    TCP_NODELAY on (`nodelay=False` gives Mosquitto's default, for the figures that show it)."""

    def __init__(self, workdir: Path, *, nodelay: bool = True) -> None:
        super().__init__(
            workdir,
            nodelay=nodelay,
            extra_conf="max_inflight_messages 0\nmax_queued_messages 0\n",
        )


@contextmanager
def workspace(name: str) -> Iterator[Path]:
    d = Path(tempfile.mkdtemp(prefix=f"og-bench-{name}-"))
    try:
        yield d
    finally:
        shutil.rmtree(d, ignore_errors=True)


@contextmanager
def broker(workdir: Path) -> Iterator[BenchBroker]:
    b = BenchBroker(workdir)
    b.start()
    try:
        yield b
    finally:
        b.stop()


# ------------------------------------------------------------------------- subscriber


class Subscriber:
    """A plain paho QoS 1 subscriber in its own process (so it does not share the GIL with
    what is measured). It notes the perf_counter time of the first arrival of every message,
    keyed by the event's `id` (or the payload itself when it is not an event)."""

    def __init__(self, port: int, topic: str, *, expect: int = 0, times: bool = False) -> None:
        self.proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "bench.common",
                "subscribe",
                str(port),
                topic,
                str(expect),
                "1" if times else "0",
            ],
            cwd=ROOT,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        self._lines: queue.Queue[str] = queue.Queue()
        threading.Thread(target=self._read, daemon=True).start()
        if self._next(10) != "READY":
            self.close()
            raise BenchError("the subscriber did not subscribe")

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self._lines.put(line.strip())
        self._lines.put("EOF")

    def _next(self, timeout: float) -> str | None:
        try:
            return self._lines.get(timeout=timeout)
        except queue.Empty:
            return None

    def wait_done(self, timeout: float) -> bool:
        """True once `expect` distinct messages have arrived."""
        return self._next(timeout) == "DONE"

    def finish(self, timeout: float = 30) -> dict[str, Any]:
        """Stop and return {"unique", "received", "first", "last", "times"?}."""
        assert self.proc.stdin is not None
        self.proc.stdin.write("quit\n")
        self.proc.stdin.flush()
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            line = self._next(max(0.01, end - time.monotonic()))
            if line is None or line == "EOF":
                break
            if line.startswith("{"):
                self.proc.wait(5)
                result: dict[str, Any] = json.loads(line)
                return result
        self.close()
        raise BenchError("the subscriber did not report")

    def close(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(5)


def _event_key(payload: bytes) -> str:
    """An event's `id` (found without parsing the whole JSON), else the payload itself."""
    i = payload.find(b'"id"')
    if i >= 0:
        q = payload.find(b'"', payload.find(b":", i + 4) + 1)
        end = payload.find(b'"', q + 1)
        if q > 0 and end > q:
            return payload[q + 1 : end].decode("utf-8", "replace")
    return payload.decode("utf-8", "replace")


def _subscriber_main(port: int, topic: str, expect: int, keep_times: bool) -> None:
    """The measuring end: a plain MQTT 3.1.1 QoS 1 subscriber on a raw socket, reading 64 KiB at
    a time and acknowledging all of a read at once. It is the instrument, not what is measured,
    so it costs as little as it can (~15 us per message against ~150 us for a paho subscriber):
    on a 2-core machine that also runs the broker and the publisher, a heavier subscriber would
    be what the figure measured."""
    from controller.mqtt_wire import (
        CONNACK,
        CONNECT,
        PINGREQ,
        PUBLISH,
        PUBREL,
        SUBACK,
        SUBSCRIBE,
        encode_str,
        next_packet,
        packet,
    )

    times: dict[str, float] = {}
    state = {"received": 0, "first": 0.0, "last": 0.0}
    quit_asked = threading.Event()

    def read_stdin() -> None:
        for line in sys.stdin:
            if line.strip() == "quit":
                break
        quit_asked.set()

    sock = socket.create_connection(("127.0.0.1", port), timeout=10)
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    hello = encode_str("MQTT") + bytes([4, 0x02]) + (30).to_bytes(2, "big")
    sock.sendall(packet(CONNECT, 0, hello + encode_str(f"bench-sub-{os.getpid()}")))
    sock.sendall(packet(SUBSCRIBE, 2, b"\x00\x01" + encode_str(topic) + b"\x01"))
    sock.settimeout(0.2)
    buf = bytearray()
    ready = done = False
    last_ping = time.monotonic()
    threading.Thread(target=read_stdin, daemon=True).start()
    while not quit_asked.is_set():
        try:
            data = sock.recv(65536)
        except TimeoutError:
            data = b"-"
        if not data:
            break
        t = time.perf_counter()
        if time.monotonic() - last_ping > 20:
            sock.sendall(packet(PINGREQ, 0, b""))
            last_ping = time.monotonic()
        if data == b"-":
            continue
        buf += data
        acks: list[bytes] = []
        pos = 0
        while (got := next_packet(buf, pos, 1 << 28)) is not None:
            ptype, flags, body, pos = got
            if ptype == PUBLISH:
                tlen = (body[0] << 8) | body[1]
                off = 2 + tlen
                qos = (flags >> 1) & 3
                if qos:
                    acks.append(bytes([0x40 if qos == 1 else 0x50, 2]) + body[off : off + 2])
                    off += 2
                key = _event_key(body[off:])
                state["received"] += 1
                if key not in times:
                    times[key] = t
                    if not state["first"]:
                        state["first"] = t
                    state["last"] = t
            elif ptype == PUBREL:
                acks.append(b"\x70\x02" + body[:2])
            elif ptype == SUBACK and not ready:
                ready = True
                print("READY", flush=True)
            elif ptype == CONNACK and body[1] != 0:
                sys.exit(2)
        del buf[:pos]
        if acks:
            sock.sendall(b"".join(acks))
        if expect and not done and len(times) >= expect:
            done = True
            print("DONE", flush=True)
    out: dict[str, Any] = {
        "unique": len(times),
        "received": state["received"],
        "first": state["first"],
        "last": state["last"],
    }
    if keep_times:
        out["times"] = times
    print(json.dumps(out), flush=True)
    with contextlib.suppress(OSError):
        sock.sendall(b"\xe0\x00")  # DISCONNECT
        sock.close()


def paho_pipeline(port: int, n: int, payload_size: int, topic: str = "bench/baseline") -> float:
    """Baseline: a bare paho client publishing n QoS 1 messages of this size as fast as it can
    to a subscriber in another process. Returns messages/s end to end. No paho inflight cap:
    with one, paho scans every message in flight on each PUBACK (see docs/capacity.md)."""
    import paho.mqtt.client as paho
    from paho.mqtt.enums import CallbackAPIVersion

    sub = Subscriber(port, topic, expect=n)
    c = paho.Client(CallbackAPIVersion.VERSION2, client_id=f"bench-pub-{os.getpid()}")
    c.max_inflight_messages_set(0)
    c.max_queued_messages_set(0)
    c.connect("127.0.0.1", port, keepalive=30)
    c.loop_start()
    try:
        filler = "x" * max(0, payload_size - 40)
        t0 = time.perf_counter()
        for i in range(n):
            c.publish(topic, f'{{"id":"b{i}","seq":{i},"pad":"{filler}"}}', qos=1)
        if not sub.wait_done(120):
            raise BenchError("baseline subscriber did not get every message")
        res = sub.finish()
        return n / (float(res["last"]) - t0)
    finally:
        sub.close()
        c.disconnect()
        c.loop_stop()


# ------------------------------------------------------------------------- site configs


def site_config(
    path: Path,
    broker_url: str,
    *,
    sensors: list[dict[str, Any]],
    zones: list[dict[str, Any]],
    sirens: list[dict[str, Any]] | None = None,
    keypads: list[dict[str, Any]] | None = None,
    detectors: list[dict[str, Any]] | None = None,
    users: list[dict[str, Any]] | None = None,
    mqtt: dict[str, Any] | None = None,
) -> Path:
    """Write a simulated site's config (validated when loaded, like any other)."""
    data: dict[str, Any] = {
        "site": {
            "id": "bench-site",
            "name": "Bench site",
            "timezone": "Asia/Ho_Chi_Minh",
            "location": {"lat": 22.4856, "lon": 103.9707},
            "language": "en",
        },
        "hardware": {"backend": "simulated"},
        "mqtt": {
            "url": broker_url,
            "topic_prefix": "officeguard",
            "homeassistant_discovery": False,
            **(mqtt or {}),
        },
        "zones": zones,
        "sensors": sensors,
        "sirens": sirens or [],
        "keypads": keypads or [],
        "drone_detectors": detectors or [],
        "users": users or [{"name": "guard", "code": "2468", "zones": [z["id"] for z in zones]}],
        "schedules": [],
    }
    path.write_text(yaml.safe_dump(data, allow_unicode=True, sort_keys=False))
    return path


EVENT_TOPIC = "officeguard/bench-site/event"


class InProcessSite:
    """The real daemon (engine, devices on simulated pins, journal, outbox, MQTT link, control
    socket) on this process's event loop, with a virtual clock the bench moves itself."""

    def __init__(self, config: Path, state_dir: Path) -> None:
        from controller.clock import VirtualClock
        from controller.config import load_config
        from controller.daemon import Daemon

        os.environ.pop("NOTIFY_SOCKET", None)
        self.clock = VirtualClock(datetime.fromisoformat(SIM_START).astimezone(UTC))
        self.daemon = Daemon(load_config(config), state_dir, simulate=True, clock=self.clock)

    async def start(self, connected_timeout: float = 10.0) -> None:
        await self.daemon.start()
        end = time.monotonic() + connected_timeout
        while not self.daemon.broker_connected:
            if time.monotonic() > end:
                raise BenchError("the daemon did not connect to the bench broker")
            await asyncio.sleep(0.01)

    @property
    def sim(self) -> Any:
        assert self.daemon.hw is not None and self.daemon.hw.sim is not None
        return self.daemon.hw.sim

    def outbox_depth(self) -> int:
        assert self.daemon.journal is not None
        return self.daemon.journal.outbox_depth()

    async def drained(self, timeout: float) -> bool:
        end = time.monotonic() + timeout
        while self.outbox_depth() > 0:
            if time.monotonic() > end:
                return False
            await asyncio.sleep(0.005)
        return True

    async def stop(self) -> None:
        await self.daemon.stop("bench over")


if __name__ == "__main__":
    if len(sys.argv) == 6 and sys.argv[1] == "subscribe":
        _subscriber_main(int(sys.argv[2]), sys.argv[3], int(sys.argv[4]), sys.argv[5] == "1")
    else:
        print("usage: python -m bench.common subscribe PORT TOPIC EXPECT TIMES(0|1)")
        sys.exit(64)
