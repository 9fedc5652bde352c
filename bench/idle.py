"""Idle: the real daemon process (`officeguard run --simulate`, real clock) for a site with 20
sensors, a keypad with its buzzer and a drone detector (every one of the Pi's 28 GPIOs in use),
connected to a local Mosquitto, with nothing happening.

- start to READY: from spawning the process to the sd_notify READY=1 datagram on a
  NOTIFY_SOCKET the bench listens on (as systemd would). Baseline: a bare Python process that
  imports the same third-party libraries, connects to the same broker and sends READY=1.
  Target: <= 3x the baseline.
- CPU over the idle window (60 s; --quick 10 s), from /proc/PID/stat: <= 0.5 % of one core.
  Baseline: the bare process over the same window.
- resident memory (VmRSS) at the end of the window, from /proc/PID/status: <= 60 MB.
"""

from __future__ import annotations

import os
import socket
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from bench.common import ROOT, BenchError, broker, figure, print_figures, site_config, workspace

TARGET_CPU = 0.5  # % of one core
TARGET_RSS_MB = 60.0
TARGET_READY_RATIO = 3.0
CLK_TCK = os.sysconf("SC_CLK_TCK")
STARTS = 3


def idle_config(path: Path, url: str) -> Path:
    kinds = ["door", "window", "motion", "vibration"]
    sensors = []
    for i in range(20):
        kind = kinds[i % len(kinds)]
        s: dict[str, Any] = {
            "id": f"{kind}.{i:02d}",
            "name": f"{kind} {i}",
            "type": kind,
            "zone": "office" if i < 10 else "finance",
            "pin": 2 + i,  # GPIO2-21
        }
        if kind == "motion":
            s["interior"] = True
        sensors.append(s)
    return site_config(
        path,
        url,
        zones=[
            {"id": "office", "name": "Office", "entry_delay": "30s", "exit_delay": "60s"},
            {"id": "finance", "name": "Finance", "entry_delay": "20s", "exit_delay": "45s"},
        ],
        sensors=sensors,
        keypads=[
            {"id": "keypad.hall", "name": "Hall keypad", "zones": ["office", "finance"],
             "rows": [22, 23, 24, 25], "cols": [26, 27, 0], "buzzer": 1}
        ],
        detectors=[
            {"id": "rf.roof", "name": "Roof RF detector", "zone": "office",
             "port": "/dev/serial0", "heartbeat_timeout": "15s", "track_timeout": "60s"}
        ],
        mqtt={"heartbeat": "60s"},
    )


def daemon_libraries() -> list[str]:
    """The third-party top-level modules the daemon imports (for the baseline to import)."""
    code = """
import importlib.util, sys
import controller.cli, controller.daemon
std = set(sys.stdlib_module_names) | {"controller", "hardware", "bench"}
out = []
for top in sorted({m.split(".")[0] for m in list(sys.modules)}):
    if top in std or top.startswith("_"):
        continue
    try:
        spec = importlib.util.find_spec(top)
    except (ValueError, ImportError):
        continue
    if spec is not None and spec.origin not in (None, "built-in"):
        out.append(top)
print(" ".join(out))
"""
    out = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True
    ).stdout
    return out.split()


BASELINE = """
import json, os, socket, sys, threading
for name in sys.argv[2:]:
    __import__(name)
import paho.mqtt.client as paho
from paho.mqtt.enums import CallbackAPIVersion
up = threading.Event()
c = paho.Client(CallbackAPIVersion.VERSION2, client_id="bench-bare")
c.on_connect = lambda *a: up.set()
c.connect("127.0.0.1", int(sys.argv[1]), keepalive=60)
c.loop_start()
up.wait(10)
s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
s.connect(os.environ["NOTIFY_SOCKET"])
s.sendall(b"READY=1")
threading.Event().wait()
"""


class Notify:
    def __init__(self, path: Path) -> None:
        self.path = path
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.bind(str(path))

    def wait_ready(self, timeout: float) -> float:
        end = time.monotonic() + timeout
        while True:
            left = end - time.monotonic()
            if left <= 0:
                raise BenchError("no READY=1 in time")
            self.sock.settimeout(left)
            try:
                msg = self.sock.recv(4096)
            except TimeoutError:
                continue
            if b"READY=1" in msg.split(b"\n"):
                return time.perf_counter()

    def close(self) -> None:
        self.sock.close()


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLK_TCK  # utime, stime


def rss_mb(pid: int) -> tuple[float, float]:
    vals: dict[str, float] = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        key, _, rest = line.partition(":")
        if key in ("VmRSS", "VmHWM"):
            vals[key] = int(rest.split()[0]) / 1024
    return vals["VmRSS"], vals["VmHWM"]


def _launch(argv: list[str], env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
    with open(log, "ab") as out:
        return subprocess.Popen(argv, cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT)


def measure(argv: list[str], workdir: Path, name: str, window: float) -> dict[str, float]:
    notify = Notify(workdir / f"{name}.notify")
    env = {**os.environ, "NOTIFY_SOCKET": str(notify.path)}
    # as installed: byte-code compiled once, not at every start (this sandbox sets the variable)
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    env.pop("WATCHDOG_USEC", None)
    t0 = time.perf_counter()
    proc = _launch(argv, env, workdir / f"{name}.log")
    try:
        ready = notify.wait_ready(60) - t0
        if window > 0:
            time.sleep(1.0)  # let start-up work (first publishes, retained state) finish
        c0, w0 = cpu_seconds(proc.pid), time.monotonic()
        time.sleep(window)
        c1, w1 = cpu_seconds(proc.pid), time.monotonic()
        rss, hwm = rss_mb(proc.pid)
        if proc.poll() is not None:
            raise BenchError(f"{name} exited during the idle window")
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(5)
        notify.close()
    return {
        "ready_s": ready,
        "cpu_percent": 100 * (c1 - c0) / max(w1 - w0, 1e-9),
        "rss_mb": rss,
        "peak_rss_mb": hwm,
    }


def run(quick: bool = False) -> dict[str, Any]:
    window = 10.0 if quick else 60.0
    libs = daemon_libraries()
    with workspace("idle") as w, broker(w) as b:
        cfg = idle_config(w / "idle.yaml", b.url)
        daemon = [sys.executable, "-m", "controller", "run", "-c", str(cfg), "--simulate",
                  "--state-dir", str(w / "state")]
        bare = [sys.executable, "-c", BASELINE, str(b.port), *libs]
        # one unmeasured start of each writes the byte-code caches (an installed package has
        # them) and warms the file cache; then starts alternate, bare and daemon, so both see
        # the same machine; the median of each counts
        measure(bare, w, "warm-bare", 0.0)
        measure(daemon, w, "warm-daemon", 0.0)
        bare_ready, daemon_ready = [], []
        for i in range(STARTS):
            bare_ready.append(measure(bare, w, f"bare{i}", 0.0)["ready_s"])
            daemon_ready.append(measure(daemon, w, f"daemon{i}", 0.0)["ready_s"])
        d = measure(daemon, w, "daemon", window)
        base = measure(bare, w, "bare", window)
    base_ready = statistics.median(bare_ready)
    d_ready = statistics.median(daemon_ready)
    base_cpu, base_rss = base["cpu_percent"], base["rss_mb"]
    figures = [
        figure("start to READY (median)", 1000 * d_ready, "ms", baseline=1000 * base_ready,
               baseline_name="bare Python: same imports + broker connect",
               target=f"<= {TARGET_READY_RATIO:.0f}x baseline",
               ok=d_ready <= TARGET_READY_RATIO * base_ready),
        figure(f"idle CPU over {window:.0f} s", d["cpu_percent"], "% core", baseline=base_cpu,
               baseline_name="bare Python process", target=f"<= {TARGET_CPU} %",
               ok=d["cpu_percent"] <= TARGET_CPU),
        figure("resident memory", d["rss_mb"], "MB", baseline=base_rss,
               baseline_name="bare Python process", target=f"<= {TARGET_RSS_MB:.0f} MB",
               ok=d["rss_mb"] <= TARGET_RSS_MB),
    ]
    print_figures("idle (20 sensors, a keypad, a drone detector; real process)", figures)
    print(f"  peak resident memory {d['peak_rss_mb']:.1f} MB; baseline imports: {' '.join(libs)}")
    return {"name": "idle", "quick": quick, "figures": figures,
            "detail": {"daemon": d, "bare": base, "daemon_ready_s": daemon_ready,
                       "bare_ready_s": bare_ready, "libraries": libs}}


if __name__ == "__main__":
    run()
