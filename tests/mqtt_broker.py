"""Test helper: Mosquitto on a free local port, plus a small recording subscriber.

Used by the MQTT integration tests. The broker keeps sessions and retained messages across a
stop/start, so it can be stopped and started again on the same port to simulate an outage of the
security office's server (see controller/demo/mosquitto.py, which the demo uses too).
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import paho.mqtt.client as paho
from paho.mqtt.enums import CallbackAPIVersion

from controller.demo.mosquitto import LocalMosquitto, free_port

__all__ = ["Broker", "Recorder", "free_port", "until", "wait_for"]


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


class Broker(LocalMosquitto):
    """The tests' Mosquitto: persistent (sessions and retained messages survive `stop()` and
    `start()`), with no limit on messages in flight or queued per client, so a test that
    queues thousands of events during an outage gets every one of them."""

    kind = "mosquitto"

    def __init__(self, workdir: Path) -> None:
        super().__init__(
            workdir,
            persistent=True,
            extra_conf="max_inflight_messages 0\nmax_queued_messages 0\n",
        )

    def _accepting(self) -> bool:
        return self.accepting()


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
