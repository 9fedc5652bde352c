"""What the benchmarks share: a Mosquitto on a free port started by the bench, a subscriber in
its own process that timestamps what it receives, simulated site configs, the daemon run in
process on a virtual clock, percentiles, and one way to report a figure beside its baseline.

Timestamps are `time.perf_counter()`, which on Linux is CLOCK_MONOTONIC: the same clock in every
process of the machine, so a time taken in the subscriber's process can be compared with one
taken in the bench's.
"""

from __future__ import annotations

import asyncio
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

from controller.demo.mosquitto import LocalMosquitto

ROOT = Path(__file__).resolve().parent.parent
SIM_START = "2026-02-17T01:20:00+07:00"  # Tết night, 01:20: the hour break-ins happen


class BenchError(RuntimeError):
    """The bench could not run (no broker binary, a child that did not start...)."""


# ------------------------------------------------------------------------- figures


async def cpu_while_idle(window: float) -> tuple[float, float]:
    """CPU seconds (user + system) this process spent while its asyncio loop ran `window`
    seconds with nothing but what was set up on it, and the wall time that took."""
    import resource

    r0 = resource.getrusage(resource.RUSAGE_SELF)
    t0 = time.monotonic()
    await asyncio.sleep(window)
    r1 = resource.getrusage(resource.RUSAGE_SELF)
    wall = time.monotonic() - t0
    return (r1.ru_utime - r0.ru_utime) + (r1.ru_stime - r0.ru_stime), wall


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
    """Mosquitto on a free local port (controller/demo/mosquitto.py), configured as the
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
        """Stop and return {"unique", "received", "first", "last", "cpu", "times"?}."""
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
    """The measuring end: a plain paho-mqtt 2 QoS 1 subscriber (MQTT 3.1.1, so paho decodes no
    MQTT 5 properties) with TCP_NODELAY on its socket, run by paho's own loop on this process's
    main thread. It is the instrument, not what is measured: `python -m bench.common capacity`
    measures what it takes through Mosquitto from a bare paho publisher (bench/README.md)."""
    import paho.mqtt.client as paho
    from paho.mqtt.enums import CallbackAPIVersion

    times: dict[str, float] = {}
    state = {"received": 0, "first": 0.0, "last": 0.0, "cpu0": 0.0, "cpu1": 0.0, "done": False}
    perf, cpu = time.perf_counter, time.process_time

    def on_connect(c: paho.Client, userdata: Any, flags: Any, rc: Any, props: Any) -> None:
        if rc.is_failure:
            sys.exit(2)
        sock = c.socket()
        if isinstance(sock, socket.socket):
            # else Nagle holds each PUBACK back behind the broker's delayed ACK
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        c.subscribe(topic, qos=1)

    def on_subscribe(*args: Any) -> None:
        print("READY", flush=True)

    def on_message(c: paho.Client, userdata: Any, msg: paho.MQTTMessage) -> None:
        t = perf()
        key = _event_key(msg.payload)
        state["received"] += 1
        if key not in times:
            times[key] = t
            if not state["first"]:
                state["first"], state["cpu0"] = t, cpu()
            state["last"], state["cpu1"] = t, cpu()
            if expect and not state["done"] and len(times) >= expect:
                state["done"] = True
                print("DONE", flush=True)

    c = paho.Client(
        CallbackAPIVersion.VERSION2,
        client_id=f"bench-sub-{os.getpid()}",
        protocol=paho.MQTTv311,
        clean_session=True,
    )
    c.on_connect = on_connect
    c.on_subscribe = on_subscribe
    c.on_message = on_message

    def read_stdin() -> None:
        for line in sys.stdin:
            if line.strip() == "quit":
                break
        c.disconnect()  # ends loop_forever() below

    c.connect("127.0.0.1", port, keepalive=30)
    threading.Thread(target=read_stdin, daemon=True).start()
    c.loop_forever()
    out: dict[str, Any] = {
        "unique": len(times),
        "received": state["received"],
        "first": state["first"],
        "last": state["last"],
        "cpu": state["cpu1"] - state["cpu0"],  # CPU seconds from the first message to the last
    }
    if keep_times:
        out["times"] = times
    print(json.dumps(out), flush=True)


def paho_pipeline(port: int, n: int, payload_size: int, topic: str = "bench/baseline") -> float:
    """Baseline: a bare paho client publishing n QoS 1 messages of this size as fast as it can
    to a subscriber in another process. Returns messages/s end to end. No paho inflight cap:
    with one, paho scans every message in flight on each PUBACK (see docs/capacity.md)."""
    return float(paho_pipeline_run(port, n, payload_size, topic)["rate"])


def paho_pipeline_run(
    port: int, n: int, payload_size: int, topic: str = "bench/baseline"
) -> dict[str, Any]:
    """`paho_pipeline`, with what the subscriber reported: {"rate", "sub_cpu_per_msg", ...}."""
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
        res["rate"] = n / (float(res["last"]) - t0)
        res["sub_cpu_per_msg"] = float(res["cpu"]) / max(1, int(res["unique"]) - 1)
        return res
    finally:
        sub.close()
        c.disconnect()
        c.loop_stop()


def instrument_capacity(n: int = 20_000, rounds: int = 3, payload_size: int = 330) -> None:
    """What the measuring subscriber takes: a bare paho publisher pushes n QoS 1 messages
    through a bench Mosquitto (TCP_NODELAY) to it, `rounds` times; prints the rates and the
    subscriber's CPU per message (the ceiling it implies on one core)."""
    with workspace("capacity") as w, broker(w) as b:
        for r in range(rounds):
            res = paho_pipeline_run(b.port, n, payload_size, topic=f"bench/capacity/{r}")
            per = res["sub_cpu_per_msg"]
            print(
                f"round {r + 1}: {res['rate']:,.0f} msgs/s through Mosquitto; subscriber "
                f"{per * 1e6:.0f} us CPU/msg (ceiling {1 / per if per else 0:,.0f} msgs/s on one core)",
                flush=True,
            )


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
    elif len(sys.argv) in (2, 3) and sys.argv[1] == "capacity":
        instrument_capacity(int(sys.argv[2]) if len(sys.argv) == 3 else 20_000)
    else:
        print(
            "usage: python -m bench.common subscribe PORT TOPIC EXPECT TIMES(0|1)\n"
            "       python -m bench.common capacity [N]"
        )
        sys.exit(64)
