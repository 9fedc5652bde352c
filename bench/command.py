"""MQTT command -> retained zone state, through the real daemon (in this process, on simulated
pins and a virtual clock) and a local Mosquitto with `set_tcp_nodelay true`.

The security office's client (a paho client with TCP_NODELAY, in its own process) publishes
`P/cmd` (arm away / disarm of one zone, with the guard's code) and times, from the publish,
the arrival of the three messages the command causes: `P/cmd/result`, the `P/event`, and the
retained `P/zone/<zone>/state`. Baseline, interleaved sample by sample with the daemon: a bare
paho echo service (its own process) that answers the same command on its own prefix with the
same three messages (QoS 1; the state retained), doing nothing else. Target: the daemon's
command -> retained state p50 <= 4x the echo's.

    python -m bench.command [--quick] [--defaults]

`--defaults` runs both on Mosquitto's defaults (no `set_tcp_nodelay`) with clients that leave
Nagle on: then both measure ~88 ms, Nagle and delayed ACK rather than any work (docs/mqtt.md).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import secrets
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

from bench.common import (
    ROOT,
    BenchBroker,
    BenchError,
    InProcessSite,
    figure,
    percentile,
    print_figures,
    workspace,
)
from bench.latency import latency_config
from controller.remote.guard import TOPIC_RATE

TARGET_RATIO = 4.0
ZONE = "hall"
SITE_PREFIX = "officeguard/bench-site"
ECHO_PREFIX = "officeguard/bench-echo"
CODE = "2468"


def _client(client_id: str, nodelay: bool) -> Any:
    """A paho-mqtt 2 client (MQTT 3.1.1) that sets TCP_NODELAY on its socket when asked."""
    import paho.mqtt.client as paho
    from paho.mqtt.enums import CallbackAPIVersion

    c = paho.Client(CallbackAPIVersion.VERSION2, client_id=client_id, protocol=paho.MQTTv311)
    c.max_inflight_messages_set(0)

    def on_socket_open(client: Any, userdata: Any, sock: Any) -> None:
        if nodelay and isinstance(sock, socket.socket):
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    c.on_socket_open = on_socket_open
    return c


# ------------------------------------------------------------------------- the baseline


def echo_main(port: int, nodelay: bool) -> None:
    """The bare paho echo service: each command on ECHO_PREFIX/cmd is answered at once with a
    result, an event and the zone's retained state, shaped like the daemon's."""
    c = _client(f"bench-echo-{os.getpid()}", nodelay)
    seq = 0

    def on_message(client: Any, userdata: Any, msg: Any) -> None:
        nonlocal seq
        cmd = json.loads(msg.payload)
        state = "armed_away" if cmd["action"] == "arm" else "disarmed"
        # Contact ID 401: closing (R, armed) or opening (E, disarmed) by a user
        kind, cid = ("arm", "R401") if cmd["action"] == "arm" else ("disarm", "E401")
        seq += 1
        ts = "2026-02-17T01:20:00+07:00"
        result = {"id": cmd["id"], "ok": True, "action": cmd["action"], "zones": {ZONE: state}}
        event = {"id": f"echo-{seq}", "seq": seq, "site": "bench-echo", "ts": ts, "kind": kind,
                 "zone": ZONE, "user": "guard", "cid": cid,
                 "text": f"{kind.title()}: Hall by guard (mqtt)", "detail": {"source": "mqtt"}}  # fmt: skip
        client.publish(f"{ECHO_PREFIX}/cmd/result", json.dumps(result), qos=1)
        client.publish(f"{ECHO_PREFIX}/event", json.dumps(event), qos=1)
        client.publish(
            f"{ECHO_PREFIX}/zone/{ZONE}/state",
            json.dumps({"state": state, "ts": ts}),
            qos=1,
            retain=True,
        )

    c.on_message = on_message
    c.on_connect = lambda client, *a: client.subscribe(f"{ECHO_PREFIX}/cmd", qos=1)
    c.on_subscribe = lambda *a: print("READY", flush=True)
    c.connect("127.0.0.1", port, keepalive=30)
    threading.Thread(target=lambda: (sys.stdin.read(), c.disconnect()), daemon=True).start()
    c.loop_forever()


# ------------------------------------------------------------------------- the office


class _Waiter:
    """The three answers to one command, with the perf_counter time each arrived."""

    def __init__(self) -> None:
        self.cond = threading.Condition()
        self.prefix = ""
        self.cmd_id = ""
        self.want_state = ""
        self.got: dict[str, float] = {}
        self.refused: str | None = None

    def expect(self, prefix: str, cmd_id: str, state: str) -> None:
        with self.cond:
            self.prefix, self.cmd_id, self.want_state, self.got = prefix, cmd_id, state, {}

    def on_message(self, client: Any, userdata: Any, msg: Any) -> None:
        t = time.perf_counter()
        with self.cond:
            if not self.prefix or not msg.topic.startswith(self.prefix + "/"):
                return
            what = msg.topic[len(self.prefix) + 1 :]
            body = json.loads(msg.payload) if msg.payload else {}
            if what == "cmd/result" and body.get("id") == self.cmd_id:
                if not body.get("ok"):
                    self.refused = str(body.get("error"))
                    self.cond.notify_all()
                self.got.setdefault("result", t)
            elif what == "event":
                self.got.setdefault("event", t)
            elif what == f"zone/{ZONE}/state" and body.get("state") == self.want_state:
                self.got.setdefault("state", t)
            if len(self.got) == 3:
                self.cond.notify_all()

    def wait(self, timeout: float) -> dict[str, float]:
        with self.cond:
            done = self.cond.wait_for(lambda: len(self.got) == 3 or self.refused, timeout)
            if self.refused:
                raise SystemExit(f"{self.prefix} refused the command: {self.refused}")
            if not done:
                raise SystemExit(f"no answer from {self.prefix}: got {sorted(self.got)}")
            got, self.prefix = dict(self.got), ""
            return got


def office_main(port: int, samples: int, nodelay: bool, key_file: str, site_time: str) -> None:
    """Send `samples` commands to the daemon and to the echo service, interleaved, and print
    for each side the times from publish to result, event, retained state (JSON). Every
    command is signed with the site's key, as the office must sign a disarm (docs/security.md);
    the echo gets the same payload, so both sides parse what a real command carries. The
    commands carry `site_time`: the bench's daemon runs on a virtual clock that stands still."""
    from controller.remote.commands import sign

    key = Path(key_file).read_text(encoding="utf-8").strip().encode()
    c = _client(f"bench-office-{os.getpid()}", nodelay)
    w = _Waiter()
    ready = threading.Event()
    c.on_message = w.on_message
    c.on_connect = lambda client, *a: client.subscribe(
        [(f"{p}/{t}", 1) for p in (SITE_PREFIX, ECHO_PREFIX)
         for t in ("cmd/result", "event", f"zone/{ZONE}/state")]
    )  # fmt: skip
    c.on_subscribe = lambda *a: ready.set()
    c.connect("127.0.0.1", port, keepalive=30)
    c.loop_start()
    if not ready.wait(10):
        raise SystemExit("the office client did not subscribe")
    time.sleep(0.2)  # the retained states the subscription brings are in
    out: dict[str, list[dict[str, float]]] = {"site": [], "echo": []}
    gap = 1.0 / TOPIC_RATE  # the site's rate limit on P/cmd: an office sends no faster
    for i in range(samples):
        started = time.monotonic()
        arm = i % 2 == 0
        sides = [("site", SITE_PREFIX), ("echo", ECHO_PREFIX)]
        for side, prefix in sides if i % 4 < 2 else sides[::-1]:
            cmd: dict[str, Any] = {"id": f"{side}-{i}", "action": "arm" if arm else "disarm",
                   "zone": ZONE, "code": CODE, **({"mode": "away"} if arm else {}),
                   "ts": site_time, "nonce": f"{side}-{i}-{os.getpid()}"}  # fmt: skip
            cmd["sig"] = sign(key, f"{SITE_PREFIX}/cmd", cmd)
            w.expect(prefix, cmd["id"], "armed_away" if arm else "disarmed")
            t0 = time.perf_counter()
            c.publish(f"{prefix}/cmd", json.dumps(cmd), qos=1)
            got = w.wait(10)
            out[side].append({k: v - t0 for k, v in got.items()})
            time.sleep(0.005)  # anything else the command caused has arrived
        time.sleep(max(0.0, gap - (time.monotonic() - started)))
    c.disconnect()
    c.loop_stop()
    print(json.dumps(out), flush=True)


# ------------------------------------------------------------------------- the run


def _child(*args: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "bench.command", *args],
        cwd=ROOT,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )


async def _measure(
    cfg: Path, state: Path, port: int, samples: int, nodelay: bool, key: Path
) -> Any:
    site = InProcessSite(cfg, state)
    await site.start()
    echo = _child("echo", str(port), "1" if nodelay else "0")
    try:
        assert echo.stdout is not None
        line = await asyncio.to_thread(echo.stdout.readline)
        if line.strip() != "READY":
            raise BenchError("the echo service did not subscribe")
        if not await site.drained(10):
            raise BenchError("the start-up events were not delivered")
        office = _child(
            "office", str(port), str(samples), "1" if nodelay else "0", str(key),
            site.clock.now().isoformat(),
        )  # fmt: skip
        out, _ = await asyncio.to_thread(office.communicate, None, 600)
        if office.returncode != 0:
            raise BenchError(f"the office client failed (status {office.returncode})")
        return json.loads(out.strip().splitlines()[-1])
    finally:
        if echo.poll() is None:
            echo.communicate("", 10)
        await site.stop()


def run(quick: bool = False, defaults: bool = False) -> dict[str, Any]:
    samples = 40 if quick else 200
    warm = 4
    nodelay = not defaults
    with workspace("command") as w:
        b = BenchBroker(w / "broker", nodelay=nodelay)
        b.start()
        try:
            key = w / "command.key"  # the site's key, as the installer makes it
            key.write_text(secrets.token_hex(32) + "\n", encoding="utf-8")
            key.chmod(0o600)
            cfg = latency_config(w / "command.yaml", b.url, mqtt={"command_key_file": str(key)})
            r = asyncio.run(_measure(cfg, w / "state", b.port, samples + warm, nodelay, key))
        finally:
            b.stop()
    site, echo = r["site"][warm:], r["echo"][warm:]

    def ms(xs: list[dict[str, float]], key: str, p: float) -> float:
        return 1000 * percentile([x[key] for x in xs], p)

    label = " (Mosquitto defaults)" if defaults else ""
    figures = []
    for p in (50, 99):
        ok = None
        if p == 50 and not defaults:
            ok = ms(site, "state", 50) <= TARGET_RATIO * ms(echo, "state", 50)
        figures.append(
            figure(
                f"command -> retained state p{p}{label}",
                ms(site, "state", p),
                "ms",
                baseline=ms(echo, "state", p),
                baseline_name="bare paho echo service",
                target=f"<= {TARGET_RATIO:.0f}x baseline" if ok is not None else "",
                ok=ok,
            )
        )
    figures.append(
        figure(
            f"command -> result p50{label}",
            ms(site, "result", 50),
            "ms",
            baseline=ms(echo, "result", 50),
            baseline_name="bare paho echo service",
        )
    )
    print_figures(f"command ({len(site)} commands each side)", figures)
    return {"name": "command", "quick": quick, "defaults": defaults, "figures": figures,
            "detail": {"samples": len(site)}}  # fmt: skip


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["echo"]:
        echo_main(int(argv[1]), argv[2] == "1")
        return 0
    if argv[:1] == ["office"]:
        office_main(int(argv[1]), int(argv[2]), argv[3] == "1", argv[4], argv[5])
        return 0
    ap = argparse.ArgumentParser(prog="python -m bench.command", description=__doc__)
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--defaults", action="store_true", help="Mosquitto's defaults, Nagle on")
    args = ap.parse_args(argv)
    res = run(quick=args.quick, defaults=args.defaults)
    return 1 if any(f["pass"] is False for f in res["figures"]) else 0


if __name__ == "__main__":
    raise SystemExit(main())
