"""A hostile client on the site's broker: floods a command topic with junk as fast as asked.

It is a real MQTT 3.1.1 client in a process of its own (CONNECT, then PUBLISH packets written
straight to the socket, QoS 0, as a careless or malicious client would), so that the daemon and
the broker meet the flood as they would on a shared broker. Used by tests/remote/test_e2e_flood.py
and bench/flood.py:

    python -m tests.flood --port 1883 --topic officeguard/office-a/cmd --rate 26000 --seconds 20

prints one JSON line at the end: {"sent": N, "seconds": S}.
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

# what a flood carries: not JSON, a wrong code, an unknown action, a huge id, a retained-looking
# disarm without a code; every kind of junk the daemon must drop cheaply
JUNK = (
    b"junk",
    b'{"action":"disarm","zone":"finance","code":"0000"}',
    b'{"id":"x","action":"explode"}',
    b'{"id":"' + b"y" * 100 + b'","action":"arm","zone":"finance"}',
    b'{"action":"disarm","zone":"finance"}',
)


def _varint(n: int) -> bytes:
    out = bytearray()
    while True:
        byte, n = n % 128, n // 128
        out.append(byte | (0x80 if n else 0))
        if not n:
            return bytes(out)


def _string(s: bytes) -> bytes:
    return len(s).to_bytes(2, "big") + s


def connect_packet(client_id: str) -> bytes:
    body = _string(b"MQTT") + bytes([4, 0x02]) + (60).to_bytes(2, "big") + _string(client_id.encode())
    return b"\x10" + _varint(len(body)) + body


def publish_packet(topic: str, payload: bytes) -> bytes:
    body = _string(topic.encode()) + payload
    return b"\x30" + _varint(len(body)) + body


def flood(host: str, port: int, topic: str, rate: float, seconds: float) -> int:
    sock = socket.create_connection((host, port), timeout=10)
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    sock.sendall(connect_packet(f"flood-{os.getpid()}"))
    connack = sock.recv(4)
    if len(connack) < 4 or connack[0] != 0x20 or connack[3] != 0:
        raise SystemExit(f"flood: the broker refused the connection: {connack!r}")
    sock.setblocking(True)
    packets = [publish_packet(topic, j) for j in JUNK]
    tick = 0.005  # a burst every 5 ms
    per_tick = max(1, int(rate * tick))
    burst = b"".join(packets[i % len(packets)] for i in range(per_tick))
    sent = 0
    start = time.monotonic()
    next_at = start
    while True:
        now = time.monotonic()
        if now - start >= seconds:
            break
        if now < next_at:
            time.sleep(next_at - now)
        sock.sendall(burst)
        sent += per_tick
        next_at += tick
        # behind (the broker is slower than the rate): no catching up in one go
        next_at = max(next_at, time.monotonic() - 4 * tick)
    sock.sendall(b"\xe0\x00")  # DISCONNECT
    sock.close()
    return sent


class Flooder:
    """The flooding client as a subprocess; `result()` waits for it and says what it sent."""

    def __init__(self, port: int, topic: str, rate: float, seconds: float) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "tests.flood", "--port", str(port), "--topic", topic,
             "--rate", str(rate), "--seconds", str(seconds)],
            cwd=ROOT,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )

    def running(self) -> bool:
        return self.proc.poll() is None

    def result(self, timeout: float = 120.0) -> dict[str, float]:
        out, err = self.proc.communicate(timeout=timeout)
        if self.proc.returncode != 0:
            raise RuntimeError(f"flooder failed ({self.proc.returncode}): {err}")
        got: dict[str, float] = json.loads(out.strip().splitlines()[-1])
        return got

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--topic", required=True)
    ap.add_argument("--rate", type=float, default=26000.0)
    ap.add_argument("--seconds", type=float, default=20.0)
    a = ap.parse_args()
    t0 = time.monotonic()
    sent = flood(a.host, a.port, a.topic, a.rate, a.seconds)
    print(json.dumps({"sent": sent, "seconds": round(time.monotonic() - t0, 3)}))


if __name__ == "__main__":
    main()
