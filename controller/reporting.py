"""Reporting to the central broker: the MQTT link, the journal outbox (every event, QoS 1, in
seq order, marked delivered only on PUBACK) and the retained zone and sensor state, published
again after every reconnect. The alarm path never waits on any of it."""

from __future__ import annotations

import json
import logging
from typing import TYPE_CHECKING, Any

from controller.events import Event
from controller.mqtt import MqttLink
from controller.outbox import Outbox

if TYPE_CHECKING:
    from controller.daemon import Daemon

log = logging.getLogger(__name__)


class Reporting:
    def __init__(self, daemon: Daemon):
        assert daemon.journal is not None
        self.daemon = daemon
        self.link = MqttLink(daemon.cfg.mqtt, daemon.cfg.site.id, now=daemon.clock.now)
        self.outbox = Outbox(daemon.journal, self.link, f"{self.link.prefix}/event")
        self._retained: dict[str, str] = {}
        self.link.connect_listeners.append(self._on_connect)
        self.link.disconnect_listeners.append(self._on_disconnect)

    def start(self) -> None:
        self.link.start()

    def on_events(self, events: list[Event]) -> None:
        self.outbox.wake()

    def _on_connect(self) -> None:
        self.daemon.broker_connected = True
        self._retained.clear()  # publish everything again after a reconnect
        self.publish_state()

    def _on_disconnect(self) -> None:
        self.daemon.broker_connected = False

    def publish_state(self) -> None:
        """Retained zone and sensor state; only what changed since the last publish."""
        if not self.link.connected:
            return
        st = self.daemon.engine.status()
        ts = self.daemon.clock.now().astimezone(self.daemon.cfg.tz).isoformat(timespec="seconds")
        p = self.link.prefix
        for zid, z in st["zones"].items():
            self._put(f"{p}/zone/{zid}/state", {"state": z["state"], "alarm": z["alarm"]}, ts)
        for sid, s in st["sensors"].items():
            self._put(
                f"{p}/sensor/{sid}/state", {"active": s["active"], "bypassed": s["bypassed"]}, ts
            )

    def _put(self, topic: str, body: dict[str, Any], ts: str) -> None:
        key = json.dumps(body, sort_keys=True)
        if self._retained.get(topic) == key:
            return
        self._retained[topic] = key
        self.link.publish(topic, json.dumps({**body, "ts": ts}), qos=1, retain=True)

    async def close(self) -> None:
        self.outbox.close()
        await self.link.close()
