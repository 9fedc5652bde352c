"""Console ingest: QoS 1 events from 100 simulated sites through a local Mosquitto, received by
the security office console (`officeguard monitor`'s subscriber and board), beside a baseline
measured in the same run: a plain paho subscriber (loop_start, a callback that only counts).

Every role runs in its own process (the broker is Mosquitto, started here on a free port):
publishers (a few processes, one MQTT client per site, 100 sites) publish as fast as they can
with a window of unacknowledged messages; the subscriber under test counts from its first to its
last message. Figures: messages/s at the subscriber, messages lost or duplicated, CPU seconds
of the subscriber per 1,000 messages.

    python -m bench.console_ingest [--quick] [--variants bare,monitor,...] [--repeat N]

`run(quick)` returns the figures as a dict for `python -m bench`.
See docs/mqtt-throughput.md for what limits a plain subscriber and what the console does instead.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from pathlib import Path
from typing import Any

from controller.demo.mosquitto import LocalMosquitto

SITES = 100
PUB_PROCS = 4
PREFIX = "officeguard"
TARGET = 5000.0  # events/s the console must ingest (issue 6)
ROOT = Path(__file__).resolve().parent.parent

# variants of the receiving side; "bare" is the baseline the issue measured
VARIANTS = {
    "bare": "plain paho subscriber: loop_start() thread, on_message counts",
    "monitor": "the console: MonitorClient (batched reads, corked PUBACKs) + Console.ingest",
    "monitor_v5": "the console speaking MQTT 5 (as with --share): paho decodes properties",
    "monitor_unbuffered": "the console with paho's own socket reads (a few recv() per message)",
    "monitor_nocork": "the console with PUBACKs written one send() each (no TCP_CORK)",
    "bare_nodelay": "plain paho subscriber with TCP_NODELAY on its socket",
    "bare_busy": "plain paho subscriber while its main thread is busy (a UI drawing, say)",
    "naive_console": "board fed from paho's loop_start() thread, redrawn 4 times/s by the main thread",
    "mosquitto_sub": "Mosquitto's own C client (mosquitto_sub -q 1): the machine's ceiling",
}


# ----------------------------------------------------------------------------- broker


class Mosquitto(LocalMosquitto):
    """A throwaway Mosquitto on a free port (controller/demo/mosquitto.py), started at once.
    `extra` is appended to its config; TCP_NODELAY stays off (Mosquitto's default) unless
    `extra` turns it on, since some variants measure exactly that setting."""

    def __init__(self, extra: str = "") -> None:
        self.dir = Path(tempfile.mkdtemp(prefix="og-bench-mosq-"))
        nodelay = "set_tcp_nodelay true\n" in extra
        super().__init__(self.dir, nodelay=nodelay, extra_conf=extra.replace("set_tcp_nodelay true\n", ""))
        try:
            self.start()
        except BaseException:
            shutil.rmtree(self.dir, ignore_errors=True)
            raise

    def stop(self, timeout: float = 5.0) -> None:
        super().stop(timeout)
        shutil.rmtree(self.dir, ignore_errors=True)


# ----------------------------------------------------------------------------- child: publisher


def _event(site: str, seq: int) -> bytes:
    return json.dumps(
        {
            "id": uuid.uuid4().hex,
            "seq": seq,
            "site": site,
            "ts": "2026-02-17T01:25:00+07:00",
            "kind": "alarm",
            "zone": "leadership",
            "sensor": "door.director",
            "cid": "E134",
            "text": "Alarm: Director's door (entry/exit) in Leadership offices",
            "detail": {"response": "entry"},
        },
        separators=(",", ":"),
    ).encode()


def _varint(n: int) -> bytes:
    out = bytearray()
    while True:
        b, n = n % 128, n // 128
        out.append(b | (0x80 if n else 0))
        if not n:
            return bytes(out)


def _utf8(s: str) -> bytes:
    b = s.encode()
    return len(b).to_bytes(2, "big") + b


def _connect_packet(client_id: str) -> bytes:
    body = _utf8("MQTT") + bytes([4, 0x02]) + (60).to_bytes(2, "big") + _utf8(client_id)
    return b"\x10" + _varint(len(body)) + body


def _publish_packet(topic: str, mid: int, payload: bytes) -> bytes:
    body = _utf8(topic) + mid.to_bytes(2, "big") + payload
    return b"\x32" + _varint(len(body)) + body  # PUBLISH, QoS 1


def child_publish(port: int, first_site: int, sites: int, per_site: int, window: int) -> None:
    """One MQTT 3.1.1 client per site, written on raw sockets so that the load generator costs
    the machine little: every site publishes its events QoS 1 in seq order with at most `window`
    unacknowledged, and counts the PUBACKs."""
    import selectors

    sel = selectors.DefaultSelector()
    conns = []
    for k in range(first_site, first_site + sites):
        s = socket.create_connection(("127.0.0.1", port))
        s.sendall(_connect_packet(f"bench-site-{k:03d}"))
        ack = s.recv(4)
        if len(ack) < 4 or ack[0] != 0x20 or ack[3] != 0:
            raise RuntimeError(f"broker refused bench site {k}: {ack!r}")
        s.setblocking(False)
        site = f"site-{k:03d}"
        topic = f"{PREFIX}/{site}/event"
        packets = [
            _publish_packet(topic, (q - 1) % 65535 + 1, _event(site, q))
            for q in range(1, per_site + 1)
        ]
        st = {"site": site, "sent": 0, "acked": 0, "buf": b"", "packets": packets}
        sel.register(s, selectors.EVENT_READ, st)
        conns.append((s, st))
    print("ready", flush=True)
    sys.stdin.readline()  # go

    def top_up(s: socket.socket, st: dict[str, Any]) -> None:
        n = min(per_site - st["sent"], window - (st["sent"] - st["acked"]))
        if n <= 0:
            return
        pkts = st["packets"][st["sent"] : st["sent"] + n]
        st["sent"] += n
        s.setblocking(True)
        s.sendall(b"".join(pkts))
        s.setblocking(False)

    for s, st in conns:
        top_up(s, st)
    remaining = len(conns)
    while remaining:
        for key, _ in sel.select(5):
            sock, st = key.fileobj, key.data
            assert isinstance(sock, socket.socket)
            chunk = sock.recv(65536)
            if not chunk:
                raise RuntimeError(f"broker closed the connection of {st['site']}")
            data = st["buf"] + chunk
            whole = len(data) - len(data) % 4  # PUBACK (3.1.1) is 4 bytes: 40 02 mid mid
            st["acked"] += whole // 4
            st["buf"] = data[whole:]
            if st["acked"] >= per_site:
                sel.unregister(sock)
                remaining -= 1
            else:
                top_up(sock, st)
    for s, _ in conns:
        s.sendall(b"\xe0\x00")  # DISCONNECT
        s.close()
    print("done", flush=True)


def child_publish_paho(port: int, first_site: int, sites: int, per_site: int, mode: str) -> None:
    """The same load through paho clients, one per site, as a daemon would publish:
    `paho`: publish() without waiting, paho's default window (max_inflight_messages 20);
    `paho1000`: the same with a window of 1000 (what controller.reporting.mqtt uses);
    `paho_wait`: every publish followed by wait_for_publish() (one message in flight per site),
    one thread per site;
    `paho_serial`: one client for all the sites of this process, waiting for each PUBACK."""
    import paho.mqtt.client as paho
    from paho.mqtt.enums import CallbackAPIVersion

    clients = []
    shared = None
    for k in range(first_site, first_site + sites):
        if mode == "paho_serial" and shared is not None:
            clients.append((f"site-{k:03d}", shared))  # one client publishing for every site
            continue
        c = paho.Client(CallbackAPIVersion.VERSION2, client_id=f"bench-site-{k:03d}")
        shared = c
        if mode == "paho1000":
            c.max_inflight_messages_set(1000)
        c.max_queued_messages_set(0)
        c.connect("127.0.0.1", port, keepalive=60)
        c.loop_start()
        clients.append((f"site-{k:03d}", c))
    payloads = {site: [_event(site, q) for q in range(1, per_site + 1)] for site, _ in clients}
    print("ready", flush=True)
    sys.stdin.readline()  # go

    def one_site(site: str, c: paho.Client) -> None:
        for body in payloads[site]:
            c.publish(f"{PREFIX}/{site}/event", body, qos=1).wait_for_publish(120)

    if mode == "paho_serial":
        for i in range(per_site):
            for site, c in clients:
                c.publish(f"{PREFIX}/{site}/event", payloads[site][i], qos=1).wait_for_publish(120)
    elif mode == "paho_wait":
        threads = [threading.Thread(target=one_site, args=sc) for sc in clients]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    else:
        infos = []
        for i in range(per_site):
            for site, c in clients:
                infos.append(c.publish(f"{PREFIX}/{site}/event", payloads[site][i], qos=1))
        for info in infos:
            info.wait_for_publish(120)
    for c in {id(c): c for _, c in clients}.values():
        c.disconnect()
        c.loop_stop()
    print("done", flush=True)


# ----------------------------------------------------------------------------- child: subscriber


def child_subscribe(port: int, variant: str, expect: int, idle: float, drain: bool = False) -> None:
    """Count what arrives. With `drain`, stay subscribed without reading until told "go" (the
    broker queues everything meanwhile), then read the backlog as fast as this subscriber can:
    its capacity, without publishers competing for the CPU."""
    import paho.mqtt.client as paho
    from paho.mqtt.enums import CallbackAPIVersion

    times = {"first": 0.0, "last": 0.0}
    count = [0]
    done = threading.Event()

    def seen(payload: bytes) -> None:
        now = time.perf_counter()
        if count[0] == 0:
            times["first"] = now
        times["last"] = now
        count[0] += 1
        if count[0] >= expect:
            done.set()

    if variant == "mosquitto_sub":
        _child_mosquitto_sub(port, expect, idle)
        return
    if variant == "naive_console":
        _child_naive_console(port, expect, idle)
        return
    if variant.startswith("monitor"):
        from controller.config import Mqtt
        from controller.console.model import Console
        from controller.console.net import BrokerSettings, MonitorClient

        board = Console(PREFIX, seen_ids=200_000)
        clock = time.monotonic

        def on_message(topic: str, payload: bytes) -> None:
            board.ingest(topic, payload, clock())
            seen(payload)

        mc = MonitorClient(
            BrokerSettings.from_config(Mqtt(url=f"mqtt://127.0.0.1:{port}")),
            PREFIX,
            on_message,
            cork=variant != "monitor_nocork",
            buffered=variant != "monitor_unbuffered",
            mqtt5=variant == "monitor_v5",
        )
        mc.connect()
        while not mc.subscribed:
            mc.step(0.1)
        print("ready", flush=True)
        if drain:
            sys.stdin.readline()
        r_ready = resource.getrusage(resource.RUSAGE_SELF)
        deadline = [time.monotonic() + 120]

        def until() -> bool:
            if done.is_set() or time.monotonic() > deadline[0]:
                return True
            return count[0] > 0 and time.perf_counter() - times["last"] > idle

        if os.environ.get("BENCH_PROFILE"):  # where the console's time goes (for the docs)
            import cProfile

            cProfile.runctx(
                "mc.run(until, tick=draw(board), tick_every=0.5)",
                globals(),
                locals(),
                os.environ["BENCH_PROFILE"],
            )
        else:
            # redrawn as often as the live view (BENCH_NO_DRAW=1: the ingest alone)
            tick = None if os.environ.get("BENCH_NO_DRAW") else draw(board)
            mc.run(until, tick=tick, tick_every=0.5)
        distinct = board.events
        r0 = resource.getrusage(resource.RUSAGE_SELF)
        mc.disconnect()
    else:
        sub = paho.Client(CallbackAPIVersion.VERSION2, client_id=f"bench-{variant}")
        subscribed = threading.Event()

        payloads: list[bytes] = []

        def on_msg(c: paho.Client, u: Any, m: paho.MQTTMessage) -> None:
            payloads.append(bytes(m.payload))  # nothing else: ids are counted after the measurement
            seen(m.payload)  # type: ignore[arg-type]

        def on_connect(c: paho.Client, *a: Any) -> None:
            if variant == "bare_nodelay":
                s = c.socket()
                if isinstance(s, socket.socket):
                    s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            c.subscribe(f"{PREFIX}/+/event", qos=1)

        sub.on_connect = on_connect
        sub.on_message = on_msg
        sub.on_subscribe = lambda *a: subscribed.set()
        sub.connect("127.0.0.1", port, keepalive=60)
        if drain:
            while not subscribed.is_set():
                sub.loop(0.1)
            print("ready", flush=True)
            sys.stdin.readline()
            sub.loop_start()
        else:
            sub.loop_start()
            subscribed.wait(10)
            print("ready", flush=True)
        r_ready = resource.getrusage(resource.RUSAGE_SELF)
        end = time.monotonic() + 120
        while not done.is_set() and time.monotonic() < end:
            if count[0] > 0 and time.perf_counter() - times["last"] > idle:
                break
            if variant == "bare_busy":
                t = time.perf_counter() + 0.05
                while time.perf_counter() < t:  # a main thread with work of its own
                    sum(range(100))
            else:
                done.wait(0.05)
        r0 = resource.getrusage(resource.RUSAGE_SELF)
        sub.disconnect()
        sub.loop_stop()
        distinct = len({json.loads(p)["id"] for p in payloads})
    cpu = (r0.ru_utime + r0.ru_stime) - (r_ready.ru_utime + r_ready.ru_stime)
    span = times["last"] - times["first"]
    print(
        json.dumps(
            {
                "received": count[0],
                "distinct": distinct,
                "span_s": span,
                "rate": (count[0] - 1) / span if span > 0 else 0.0,
                "cpu_s": cpu,
            }
        ),
        flush=True,
    )


def draw(board: Any) -> Any:
    """The live view's drawing, into a string: the console pays for it during ingest."""
    import io

    from rich.console import Console as RichConsole

    from controller.console.view import render

    sink = RichConsole(file=io.StringIO(), width=160, height=50, force_terminal=True)

    def tick() -> None:
        sink.file = io.StringIO()
        sink.print(render(board, time.monotonic(), "bench", feed_rows=12, max_sites=24))

    return tick


def _child_naive_console(port: int, expect: int, idle: float) -> None:
    """A console built the obvious way: paho's loop_start() thread feeds the board, the main
    thread redraws it 4 times a second (rich Live's default), both under one interpreter lock."""
    import paho.mqtt.client as paho
    from paho.mqtt.enums import CallbackAPIVersion

    from controller.console.model import Console

    board = Console(PREFIX, seen_ids=200_000)
    lock = threading.Lock()
    t = {"first": 0.0, "last": 0.0, "n": 0}
    subscribed = threading.Event()

    def on_msg(c: paho.Client, u: Any, m: paho.MQTTMessage) -> None:
        now = time.perf_counter()
        with lock:
            board.ingest(m.topic, bytes(m.payload), time.monotonic())
        if t["n"] == 0:
            t["first"] = now
        t["last"] = now
        t["n"] += 1

    sub = paho.Client(CallbackAPIVersion.VERSION2, client_id="bench-naive-console")
    sub.on_connect = lambda c, *a: c.subscribe(f"{PREFIX}/+/event", qos=1)
    sub.on_message = on_msg
    sub.on_subscribe = lambda *a: subscribed.set()
    sub.connect("127.0.0.1", port, keepalive=60)
    sub.loop_start()
    subscribed.wait(10)
    print("ready", flush=True)
    r_ready = resource.getrusage(resource.RUSAGE_SELF)
    tick = draw(board)
    end = time.monotonic() + 120
    while t["n"] < expect and time.monotonic() < end:
        if t["n"] > 0 and time.perf_counter() - t["last"] > idle:
            break
        with lock:
            tick()
        time.sleep(0.25)
    r0 = resource.getrusage(resource.RUSAGE_SELF)
    sub.disconnect()
    sub.loop_stop()
    span = t["last"] - t["first"]
    print(
        json.dumps(
            {
                "received": t["n"],
                "distinct": board.events,
                "span_s": span,
                "rate": (t["n"] - 1) / span if span > 0 else 0.0,
                "cpu_s": (r0.ru_utime + r0.ru_stime) - (r_ready.ru_utime + r_ready.ru_stime),
            }
        ),
        flush=True,
    )


def _child_mosquitto_sub(port: int, expect: int, idle: float) -> None:
    """Mosquitto's C subscriber as the reference: its output lines are timed as they arrive."""
    binary = shutil.which("mosquitto_sub")
    if binary is None:
        raise RuntimeError("no mosquitto_sub")
    p = subprocess.Popen(
        [
            binary,
            "-p",
            str(port),
            "-h",
            "127.0.0.1",
            "-q",
            "1",
            "-t",
            f"{PREFIX}/+/event",
            "-C",
            str(expect),
            "-W",
            "120",
        ],
        stdout=subprocess.PIPE,
    )
    time.sleep(0.5)  # no "subscribed" signal from mosquitto_sub
    print("ready", flush=True)
    assert p.stdout is not None
    ids: set[str] = set()
    first = last = 0.0
    n = 0
    for line in p.stdout:
        last = time.perf_counter()
        if n == 0:
            first = last
        n += 1
        ids.add(json.loads(line)["id"])
    p.wait()
    r = resource.getrusage(resource.RUSAGE_CHILDREN)
    span = last - first
    print(
        json.dumps(
            {
                "received": n,
                "distinct": len(ids),
                "span_s": span,
                "rate": (n - 1) / span if span > 0 else 0.0,
                "cpu_s": r.ru_utime + r.ru_stime,
            }
        ),
        flush=True,
    )


# ----------------------------------------------------------------------------- orchestration


def _spawn(*args: str) -> subprocess.Popen[str]:
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    return subprocess.Popen(
        [sys.executable, "-m", "bench.console_ingest", *args],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
        cwd=ROOT,
        env=env,
    )


def _expect_line(p: subprocess.Popen[str], word: str) -> None:
    assert p.stdout is not None
    line = p.stdout.readline().strip()
    if line != word:
        p.kill()
        raise RuntimeError(f"bench child said {line!r}, expected {word!r}")


def measure(
    variant: str,
    per_site: int,
    *,
    broker_conf: str = "max_queued_messages 0\n",
    publisher: str = "raw",
    idle: float = 3.0,
    drain: bool = False,
) -> dict[str, Any]:
    """One run: a fresh broker, the subscriber `variant`, 100 sites publishing `per_site` each.

    `broker_conf` is added to Mosquitto's config (the default lifts its 1,000-message queue per
    client, so a slow subscriber is measured as slow instead of losing messages); `publisher` is
    "raw" (cheap load generator, window 1000) or a paho mode, see child_publish_paho."""
    broker = Mosquitto(broker_conf)
    total = per_site * SITES
    procs: list[subprocess.Popen[str]] = []
    try:
        sub = _spawn(
            "--child-sub", str(broker.port), variant, str(total), str(idle), "1" if drain else "0"
        )
        procs.append(sub)
        _expect_line(sub, "ready")
        nprocs = 1 if publisher == "paho_serial" else PUB_PROCS
        per_proc = SITES // nprocs
        pubs = [
            _spawn(
                "--child-pub",
                str(broker.port),
                str(i * per_proc),
                str(per_proc),
                str(per_site),
                publisher,
            )
            for i in range(nprocs)
        ]
        procs.extend(pubs)
        for p in pubs:
            _expect_line(p, "ready")
        t0 = time.perf_counter()
        for p in pubs:
            assert p.stdin is not None
            p.stdin.write("go\n")
            p.stdin.flush()
        for p in pubs:
            _expect_line(p, "done")
        pub_s = time.perf_counter() - t0
        if drain:  # everything is queued at the broker now
            assert sub.stdin is not None
            sub.stdin.write("go\n")
            sub.stdin.flush()
        assert sub.stdout is not None
        res: dict[str, Any] = json.loads(sub.stdout.readline())
        res.update(
            variant=variant,
            publisher=publisher,
            broker_conf=broker_conf.strip().replace("\n", "; ") or "mosquitto defaults",
            sent=total,
            lost=total - res["distinct"],
            duplicates=res["received"] - res["distinct"],
            publish_s=pub_s,
            cpu_ms_per_1000=1000 * 1000 * res["cpu_s"] / max(1, res["received"]),
        )
        return res
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
            p.wait()
        broker.stop()


def _summary(rs: list[dict[str, Any]]) -> dict[str, Any]:
    return {
        "rate_median": statistics.median(r["rate"] for r in rs),
        "rates": [round(r["rate"]) for r in rs],
        "lost": sum(r["lost"] for r in rs),
        "duplicates": sum(r["duplicates"] for r in rs),
        "cpu_ms_per_1000": statistics.median(r["cpu_ms_per_1000"] for r in rs),
    }


def run(
    quick: bool = False, variants: list[str] | None = None, repeat: int | None = None
) -> dict[str, Any]:
    """Figures for the console against the plain-paho baseline, measured in the same run.

    live: 100 sites publish while the subscriber receives (everything competes for the CPU);
    drain: the same events queued at the broker first, then read (the subscriber's capacity).
    """
    variants = variants or ["bare", "monitor"]
    per_site = 100 if quick else 300
    repeat = repeat or (1 if quick else 3)
    modes = {"live": False, "drain": True}
    runs: dict[tuple[str, str], list[dict[str, Any]]] = {}
    for _ in range(repeat):  # interleaved, so a busy moment on the machine hits every variant
        for mode, drain in modes.items():
            for v in variants:
                if drain and v in ("mosquitto_sub", "naive_console"):
                    continue
                runs.setdefault((mode, v), []).append(measure(v, per_site, drain=drain))
    summary: dict[str, dict[str, Any]] = {m: {} for m in modes}
    for (mode, v), rs in runs.items():
        summary[mode][v] = {**_summary(rs), "description": VARIANTS[v]}
    base = summary["live"].get("bare", {}).get("rate_median")
    mon = summary["live"].get("monitor", {}).get("rate_median")
    dbase = summary["drain"].get("bare", {}).get("rate_median")
    dmon = summary["drain"].get("monitor", {}).get("rate_median")
    result: dict[str, Any] = {
        "name": "console_ingest",
        "sites": SITES,
        "events_per_run": per_site * SITES,
        "repeat": repeat,
        "unit": "QoS 1 events/s received",
        "modes": summary,
        "baseline": base,
        "value": mon,
        "ratio": (mon / base) if (mon and base) else None,
        "capacity": dmon,
        "capacity_baseline": dbase,
        "capacity_ratio": (dmon / dbase) if (dmon and dbase) else None,
        "target": TARGET,
        "meets_target": bool(mon and mon >= TARGET),
    }
    for mode in modes:
        for v, x in summary[mode].items():
            print(
                f"console ingest {mode:5} [{v:>18}]: {x['rate_median']:8.0f} events/s "
                f"(runs {x['rates']}), lost {x['lost']}, dup {x['duplicates']}, "
                f"{x['cpu_ms_per_1000']:.0f} ms CPU/1000"
            )
    if mon and base:
        print(
            f"console ingest: {mon:.0f} events/s from {SITES} sites vs {base:.0f} for a plain paho "
            f"subscriber (x{mon / base:.2f}); target {TARGET:.0f}: "
            f"{'met' if mon >= TARGET else 'NOT met'}"
        )
    if dmon and dbase:
        print(f"console capacity (backlog): {dmon:.0f} events/s vs {dbase:.0f} (x{dmon / dbase:.2f})")
    return result


# (label, subscriber variant, publisher, broker config) for docs/mqtt-throughput.md
DEFAULTS = ""  # Mosquitto as installed: max_inflight_messages 20, max_queued_messages 1000
UNLIMITED_QUEUE = "max_queued_messages 0\n"
DRAIN = "# drain\n"  # marker: read a backlog instead of receiving live
INVESTIGATION = [
    ("one publisher waiting for each PUBACK", "bare", "paho_serial", UNLIMITED_QUEUE),
    ("100 publishers, each waits per PUBACK", "bare", "paho_wait", UNLIMITED_QUEUE),
    ("paho publisher, default window 20", "bare", "paho", UNLIMITED_QUEUE),
    ("paho publisher, window 1000", "bare", "paho1000", UNLIMITED_QUEUE),
    ("cheap publisher (raw, window 1000)", "bare", "raw", UNLIMITED_QUEUE),
    ("... Mosquitto defaults (queue 1000)", "bare", "raw", DEFAULTS),
    ("... broker inflight unlimited", "bare", "raw", UNLIMITED_QUEUE + "max_inflight_messages 0\n"),
    ("... broker TCP_NODELAY", "bare", "raw", UNLIMITED_QUEUE + "set_tcp_nodelay true\n"),
    ("subscriber TCP_NODELAY", "bare_nodelay", "raw", UNLIMITED_QUEUE),
    ("subscriber's main thread busy", "bare_busy", "raw", UNLIMITED_QUEUE),
    ("console the obvious way (2 threads)", "naive_console", "raw", UNLIMITED_QUEUE),
    ("console, paho's own reads", "monitor_unbuffered", "raw", UNLIMITED_QUEUE),
    ("console, PUBACKs not corked", "monitor_nocork", "raw", UNLIMITED_QUEUE),
    ("console (MQTT 3.1.1)", "monitor", "raw", UNLIMITED_QUEUE),
    ("console over MQTT 5", "monitor_v5", "raw", UNLIMITED_QUEUE),
    ("mosquitto_sub (C)", "mosquitto_sub", "raw", UNLIMITED_QUEUE),
    ("backlog: plain paho subscriber", "bare", "raw", UNLIMITED_QUEUE + DRAIN),
    ("backlog: ... main thread busy", "bare_busy", "raw", UNLIMITED_QUEUE + DRAIN),
    ("backlog: console, paho's own reads", "monitor_unbuffered", "raw", UNLIMITED_QUEUE + DRAIN),
    ("backlog: console, PUBACKs not corked", "monitor_nocork", "raw", UNLIMITED_QUEUE + DRAIN),
    ("backlog: console (MQTT 3.1.1)", "monitor", "raw", UNLIMITED_QUEUE + DRAIN),
    ("backlog: console over MQTT 5", "monitor_v5", "raw", UNLIMITED_QUEUE + DRAIN),
]


def investigate(per_site: int = 100, repeat: int = 2) -> list[dict[str, Any]]:
    """Every hypothesis of docs/mqtt-throughput.md, interleaved `repeat` times; medians."""
    runs: dict[str, list[dict[str, Any]]] = {label: [] for label, *_ in INVESTIGATION}
    for _ in range(repeat):
        for label, variant, publisher, conf in INVESTIGATION:
            try:
                runs[label].append(
                    measure(variant, per_site, broker_conf=conf, publisher=publisher)
                )
            except Exception as e:  # noqa: BLE001 - one failed row must not lose the others
                print(f"{label}: failed: {e}", file=sys.stderr)
    rows = []
    print(f"{'case':40} {'events/s':>9} {'runs':>16} {'lost':>6} {'CPU ms/1000':>11}")
    for label, variant, publisher, conf in INVESTIGATION:
        rs = runs[label]
        if not rs:
            continue
        row = {
            "case": label,
            "variant": variant,
            "publisher": publisher,
            "broker": conf.replace(DRAIN, "").strip().replace("\n", "; ") or "mosquitto defaults",
            "drain": DRAIN in conf,
            "rate_median": statistics.median(r["rate"] for r in rs),
            "rates": [round(r["rate"]) for r in rs],
            "lost": [r["lost"] for r in rs],
            "cpu_ms_per_1000": statistics.median(r["cpu_ms_per_1000"] for r in rs),
        }
        rows.append(row)
        print(
            f"{label:40} {row['rate_median']:9.0f} {str(row['rates']):>16} "
            f"{max(row['lost']):6d} {row['cpu_ms_per_1000']:11.0f}"
        )
    return rows


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv and argv[0] == "--child-pub":
        port, first, n, per_site = (int(a) for a in argv[1:5])
        if argv[5] == "raw":
            child_publish(port, first, n, per_site, window=1000)
        else:
            child_publish_paho(port, first, n, per_site, argv[5])
        return 0
    if argv and argv[0] == "--child-sub":
        child_subscribe(int(argv[1]), argv[2], int(argv[3]), float(argv[4]), argv[5:6] == ["1"])
        return 0
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--variants", help=f"comma-separated, from {', '.join(VARIANTS)}")
    ap.add_argument("--repeat", type=int)
    ap.add_argument("--json", action="store_true", help="print the result dict as JSON")
    ap.add_argument(
        "--investigate", action="store_true", help="run every hypothesis of docs/mqtt-throughput.md"
    )
    args = ap.parse_args(argv)
    if args.investigate:
        rows = investigate(100 if args.quick else 200, args.repeat or 2)
        if args.json:
            print(json.dumps(rows, indent=2))
        return 0
    variants = args.variants.split(",") if args.variants else None
    if variants and any(v not in VARIANTS for v in variants):
        ap.error(f"unknown variant; choose from {', '.join(VARIANTS)}")
    res = run(args.quick, variants, args.repeat)
    if args.json:
        print(json.dumps(res, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
