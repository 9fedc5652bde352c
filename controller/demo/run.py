"""`make demo`: a whole simulated site, end to end, that exits by itself.

1. starts Mosquitto on a free local port (controller/demo/mosquitto.py; `make demo` installs
   it first where it is missing);
2. starts the security office's console (`officeguard monitor`) on that broker, and the
   monitoring station (`officeguard station`, SQLite in the demo's directory) whose address and
   demo login it prints; `--station-wait S` keeps the station up S seconds after the night;
3. starts the real daemon on simulated hardware and a virtual clock, and plays a short scripted
   night through the real CLI: Tết night intrusion, an attack on the safe, a drone over the roof,
   the guard disarming, the security office re-arming the wing remotely over MQTT, a patrol
   round nobody walked reaching the console as missed;
4. prints the logbook, what the console saw, and checks that every event reached the broker.

    python -m controller.demo [--keep DIR]
"""

from __future__ import annotations

import argparse
import json
import os
import secrets
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import paho.mqtt.client as paho
from paho.mqtt.enums import CallbackAPIVersion

from controller.demo.mosquitto import LocalMosquitto, MosquittoMissing, mosquitto_binary
from controller.drone import geo, odid
from controller.drone.protocol import encode_line
from controller.station.demo import DEMO_LOGIN, DemoStation

ROOT = Path(__file__).resolve().parents[2]  # the checkout: controller/demo/run.py
CONFIG = ROOT / "config" / "demo.yaml"
CAMERA = """
cameras:
  - id: cam.hall
    name: "Camera hành lang"
    url: {url}
    credentials_file: {creds}
    zones: [leadership, finance]
    burst: 3
    interval: 1s
"""
START = "2026-02-17T01:20:00+07:00"  # Tết night, 01:20: the hour break-ins happen
PREFIX = "officeguard/office-a"
# the guards' patrol (docs/patrol.md), added to the demo site: a round every hour on holidays
PATROL = """
checkpoints:
  - {id: cp.gate, name: "Cổng chính", kind: badge, d0: 7, d1: 8, zone: perimeter}
  - {id: cp.kho, name: "Kho", kind: button, pin: 18}

patrols:
  - id: night
    name: "ca đêm"
    checkpoints: [cp.gate, cp.kho]
    buzzer: keypad.hall
    runs:
      - {days: workdays, start: "22:00", end: "06:00", every: 2h}
      - {days: holidays, start: "00:00", end: "00:00", every: 1h}
"""


def drone_lines(site: tuple[float, float]) -> list[str]:
    """What the roof detector's firmware sends when a drone with Remote ID flies 180 m away."""
    lat, lon = geo.destination(site[0], site[1], 120.0, 180.0)
    pack = odid.encode_message_pack(
        [
            odid.encode_basic_id("1596F350457000000001"),
            odid.encode_location(lat, lon, alt_geo=95.0, height=60.0),
            odid.encode_operator_id("VNM-OP-0042"),
        ]
    )
    msgs: list[dict[str, Any]] = [
        {"v": 1, "t": "hb", "seq": 1, "up": 5, "adv": 0, "drop": 0},
        {"v": 1, "t": "rid", "seq": 2, "tr": "ble4", "mac": "aa:bb:cc:dd:ee:ff", "rssi": -74,
         "hex": pack.hex()},
    ]  # fmt: skip
    return [encode_line(m).decode().rstrip("\n") for m in msgs]


class Office:
    """The security office's script client: sends a remote command and reads the result."""

    def __init__(self, port: int) -> None:
        self.results: list[dict[str, Any]] = []
        self.events: dict[str, dict[str, Any]] = {}
        c = paho.Client(CallbackAPIVersion.VERSION2, client_id="demo-office")
        c.on_message = self._on_message
        c.connect("127.0.0.1", port)
        c.subscribe([(f"{PREFIX}/cmd/result", 1), (f"{PREFIX}/event", 1)])
        c.loop_start()
        self.client = c

    def _on_message(self, client: paho.Client, userdata: Any, msg: paho.MQTTMessage) -> None:
        body = json.loads(msg.payload)
        if msg.topic.endswith("/cmd/result"):
            self.results.append(body)
        else:
            self.events[body["id"]] = body

    def command(self, cmd: dict[str, Any], timeout: float = 10.0) -> dict[str, Any]:
        n = len(self.results)
        self.client.publish(f"{PREFIX}/cmd", json.dumps(cmd), qos=1)
        end = time.monotonic() + timeout
        while time.monotonic() < end and len(self.results) == n:
            time.sleep(0.02)
        return self.results[n] if len(self.results) > n else {"ok": False, "error": "no answer"}

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


def _terminated(signum: int, frame: object) -> None:
    """SIGTERM (a test's timeout, a service manager): unwind, so that the broker, the site,
    the station and the console this demo started stop with it instead of running on."""
    raise SystemExit(128 + signum)


def main(argv: list[str] | None = None) -> int:
    signal.signal(signal.SIGTERM, _terminated)
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--keep", help="keep the state directory here instead of a temporary one")
    ap.add_argument(
        "--station-wait", type=float, default=0.0, metavar="S",
        help="keep the monitoring station's web console up S seconds after the night",
    )  # fmt: skip
    args = ap.parse_args(argv)
    try:
        mosquitto_binary()
    except MosquittoMissing as e:
        print(f"demo: {e}", file=sys.stderr)
        return 1
    state = Path(args.keep) if args.keep else Path(tempfile.mkdtemp(prefix="officeguard-demo-"))
    state.mkdir(parents=True, exist_ok=True)
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    og = [sys.executable, "-m", "controller"]

    def cli(*a: str, code: str | None = None, show: bool = True) -> str:
        argv = [*og, *a]
        if a[0] not in ("monitor", "camera"):
            argv += ["--state-dir", str(state)]
        r = subprocess.run(
            argv, capture_output=True, text=True, input=code, env=env, cwd=ROOT, timeout=60
        )
        if show:
            print(f"$ officeguard {' '.join(a)}" + ("   (code typed on stdin)" if code else ""))
            out = (r.stdout + r.stderr).rstrip()
            if out:
                print("  " + out.replace("\n", "\n  "))
        return r.stdout

    def say(text: str) -> None:
        print(f"\n== {text}", flush=True)

    broker = LocalMosquitto(state / "broker")
    broker.start()
    url = broker.url
    port = broker.port
    # the simulated IP camera over the leadership and finance rooms (docs/cameras.md)
    from controller.camera.twin import CameraTwin

    camera = CameraTwin("admin", secrets.token_urlsafe(12), label="cam.hall").start()
    creds = state / "camera.secret"
    creds.write_text(f"admin:{camera.password}\n", encoding="utf-8")
    creds.chmod(0o600)
    config = state / "site.yaml"
    config.write_text(
        CONFIG.read_text(encoding="utf-8").replace("mqtt://127.0.0.1:1883", url) + PATROL
        + CAMERA.format(url=camera.url, creds=creds),
        encoding="utf-8",
    )
    say(f"broker: mosquitto on {url}")
    office = Office(port)  # subscribed before the site starts: it must receive every event
    console_log = open(state / "console.log", "w")  # noqa: SIM115 - closed below
    console = subprocess.Popen(
        [*og, "monitor", "--broker", url, "--duration", "120"],
        stdout=console_log,
        stderr=subprocess.STDOUT,
        env={**env, "COLUMNS": "110"},
        cwd=ROOT,
    )
    station = DemoStation(state / "station", url, ROOT)
    station.start()
    say(f"monitoring station: {station.url}  login {DEMO_LOGIN} / {station.password}")
    log = open(state / "daemon.log", "w")  # noqa: SIM115 - closed below
    daemon = subprocess.Popen(
        [*og, "run", "-c", str(config), "--simulate", "--state-dir", str(state), "--clock", START],
        stdout=log,
        stderr=subprocess.STDOUT,
        env=env,
        cwd=ROOT,
    )
    delivered = False
    try:
        deadline = time.monotonic() + 30
        while not (state / "control.sock").exists():
            if daemon.poll() is not None or time.monotonic() > deadline:
                print((state / "daemon.log").read_text(), file=sys.stderr)
                return 1
            time.sleep(0.05)
        say(f"Tết night, {START}: by the schedule and the holiday calendar every zone is armed")
        cli("status")
        say("the camera over the hall answers (simulated, digest authentication)")
        cli("camera", "test", "-c", str(config), "cam.hall")
        cli("sim", "advance", "10m")
        say("ten minutes later the director's door opens: entry delay, then the alarm")
        cli("sim", "set", "door.director", "active")
        cli("sim", "advance", "31s")
        cli("sim", "outputs")
        say("someone knocks on the safe in the finance room, three times")
        cli("sim", "pulse", "vib.safe1", "--count", "3", "--interval", "0.5")
        say("a drone hovers 180 m south-east of the building (Remote ID, seen by the roof detector)")
        for line in drone_lines((22.4856, 103.9707)):
            cli("sim", "serial", "rf.roof", line, show=False)
        print("  (two lines from the detector's UART, through a real pty)")
        say("the guard arrives and disarms; the siren stops")
        cli("disarm", "leadership", "finance", code="2468\n")
        cli("sim", "outputs")
        cli("sim", "set", "door.director", "inactive", show=False)
        say("the security office re-arms the wing remotely (MQTT P/cmd with the guard's code)")
        cmd = {"id": "office-1", "action": "arm", "zones": ["leadership", "finance"],
               "mode": "away", "code": "2468"}  # fmt: skip
        print(f"  -> {PREFIX}/cmd  {json.dumps({**cmd, 'code': '****'})}")
        print(f"  <- {PREFIX}/cmd/result  {json.dumps(office.command(cmd))}")
        cli("sim", "advance", "2m")
        say("nobody walked the 01:00 patrol round (hourly on Tết): at 01:35 it is missed (E102)")
        cli("sim", "advance", "3m")
        cli("patrol", "log", "-c", str(config), "--night", "2026-02-17")
        say("the logbook")
        cli("log")
        deadline = time.monotonic() + 20
        st: dict[str, Any] = {}
        while time.monotonic() < deadline:
            st = json.loads(cli("status", "--json", show=False) or "{}")
            if st.get("outbox") == 0:
                break
            time.sleep(0.1)
        journal_ids = {
            json.loads(line)["id"]
            for line in cli("log", "--json", show=False).splitlines()
            if line.strip()
        }
        while time.monotonic() < deadline and not journal_ids <= set(office.events):
            time.sleep(0.1)
        delivered = st.get("outbox") == 0 and journal_ids <= set(office.events)
        say("what the security office sees (officeguard monitor --once)")
        cli("monitor", "--broker", url, "--once", "--wait", "1")
        time.sleep(0.5)  # the station writes every 0.2 s
        queue = station.open_incidents()
        say(f"the monitoring station's queue at {station.url}: {len(queue)} open incident(s)")
        for line in queue:
            print(f"  {line}")
        if args.station_wait > 0:
            print(f"  (up for {args.station_wait:.0f} s: log in as {DEMO_LOGIN} / {station.password})")
            time.sleep(args.station_wait)
        print(
            f"\noutbox: {st.get('outbox')} event(s) waiting; the office received "
            f"{len(journal_ids & set(office.events))} of the {len(journal_ids)} logbook events"
        )
    finally:
        office.close()
        daemon.send_signal(signal.SIGTERM)
        try:
            daemon.wait(15)
        except subprocess.TimeoutExpired:
            daemon.kill()
        console.send_signal(signal.SIGTERM)
        try:
            console.wait(10)
        except subprocess.TimeoutExpired:
            console.kill()
        station.stop()
        broker.stop()
        camera.close()
        log.close()
        console_log.close()
        feed = (state / "console.log").read_text(encoding="utf-8", errors="replace")
        if feed.strip():
            say("the live console's output (officeguard monitor, ran through the whole night)")
            print(feed.rstrip()[-20000:])  # the whole night; bounded if it ran long
        if not args.keep:
            shutil.rmtree(state, ignore_errors=True)
    ok = daemon.returncode == 0 and delivered
    print(f"\ndemo {'finished: every event delivered' if ok else 'FAILED'}")
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
