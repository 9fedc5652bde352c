"""Test helper: a real Mosquitto broker on a free local port, plus a small recording subscriber.

Used by the MQTT integration tests. The broker can be stopped and started again on the same
port to simulate an outage of the security office's server.
"""

from __future__ import annotations

import asyncio
import getpass
import shutil
import socket
import subprocess
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import paho.mqtt.client as paho
import pytest
from paho.mqtt.enums import CallbackAPIVersion

MOSQUITTO = shutil.which("mosquitto") or (
    "/usr/sbin/mosquitto" if Path("/usr/sbin/mosquitto").exists() else None
)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


async def until(cond: Callable[[], bool], timeout: float = 5.0) -> bool:
    """Like wait_for, but lets the asyncio loop run while it waits."""
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if cond():
            return True
        await asyncio.sleep(0.005)
    return cond()


def wait_for(cond: Callable[[], bool], timeout: float = 5.0, step: float = 0.005) -> bool:
    """Poll `cond` until it is true or `timeout` seconds pass."""
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if cond():
            return True
        time.sleep(step)
    return cond()


class Broker:
    def __init__(self, workdir: Path) -> None:
        if MOSQUITTO is None:
            pytest.skip("no mosquitto binary installed (apt-get install mosquitto)")
        self.port = free_port()
        self.conf = workdir / "mosquitto.conf"
        self.conf.write_text(
            f"listener {self.port} 127.0.0.1\nallow_anonymous true\n"
            # persistence so that a subscriber's session survives a broker restart
            f"persistence true\npersistence_location {workdir}/\n"
            # run as ourselves (as root, mosquitto would switch to a user who cannot write here)
            f"user {getpass.getuser()}\n"
            "max_inflight_messages 0\nmax_queued_messages 0\n"
        )
        self.log = workdir / "mosquitto.log"
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        with open(self.log, "ab") as out:
            self.proc = subprocess.Popen(
                [str(MOSQUITTO), "-c", str(self.conf)], stdout=out, stderr=subprocess.STDOUT
            )
        if not wait_for(self._accepting, 5.0):
            self.stop()
            raise RuntimeError(f"mosquitto did not start: {self.log.read_text()[-2000:]}")

    def _accepting(self) -> bool:
        try:
            with socket.create_connection(("127.0.0.1", self.port), timeout=0.2):
                return True
        except OSError:
            return False

    def stop(self) -> None:
        if self.proc is not None:
            self.proc.terminate()
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
            self.proc = None

    @property
    def url(self) -> str:
        return f"mqtt://127.0.0.1:{self.port}"


class Recorder:
    """A plain paho subscriber that records (topic, payload, retain) for every message."""

    def __init__(self, port: int, topic: str, client_id: str = "test-recorder") -> None:
        self.messages: list[tuple[str, bytes, bool]] = []
        self._lock = threading.Lock()
        self._subscribed = threading.Event()
        self.topic = topic
        # a persistent session: messages published while it reconnects are kept for it
        c = paho.Client(CallbackAPIVersion.VERSION2, client_id=client_id, clean_session=False)
        c.max_inflight_messages_set(1000)
        c.reconnect_delay_set(0.05, 0.2)  # type: ignore[arg-type]
        c.on_connect = self._on_connect
        c.on_message = self._on_message
        c.on_subscribe = lambda *a: self._subscribed.set()
        c.connect("127.0.0.1", port, keepalive=10)
        c.loop_start()
        self.client = c
        if not self._subscribed.wait(5):
            raise RuntimeError("recorder could not subscribe")

    def _on_connect(self, client: paho.Client, *args: Any) -> None:
        client.subscribe(self.topic, qos=1)

    def _on_message(self, client: paho.Client, userdata: Any, msg: paho.MQTTMessage) -> None:
        with self._lock:
            self.messages.append((msg.topic, bytes(msg.payload), bool(msg.retain)))

    def snapshot(self) -> list[tuple[str, bytes, bool]]:
        with self._lock:
            return list(self.messages)

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()
