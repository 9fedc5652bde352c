"""Reporting to the central broker: the MQTT link, the journal outbox (every event, QoS 1, in
seq order, marked delivered only on PUBACK), the retained state the security office and Home
Assistant read (zones, sensors, troubles, drone detectors and the drones they track), a
heartbeat, and remote commands. Retained state is published again after every reconnect. The
alarm path never waits on any of it."""

from __future__ import annotations

import asyncio
import json
import logging
from datetime import timedelta
from typing import TYPE_CHECKING, Any

from controller.clock import TimerHandle
from controller.discovery import Discovery
from controller.events import Event
from controller.mqtt import MqttLink
from controller.outbox import Outbox
from controller.remote import RemoteCommands

if TYPE_CHECKING:
    from controller.daemon import Daemon

log = logging.getLogger(__name__)


class Reporting:
    def __init__(self, daemon: Daemon):
        assert daemon.journal is not None
        self.daemon = daemon
        self.link = MqttLink(daemon.cfg.mqtt, daemon.cfg.site.id, now=daemon.clock.now)
        self.prefix = self.link.prefix
        self.outbox = Outbox(
            daemon.journal,
            self.link,
            f"{self.prefix}/event",
            limit=daemon.cfg.mqtt.outbox_limit,
            on_capacity=self._on_outbox_capacity,
            record=daemon.record_external,
            now=daemon.clock.now,
            language=daemon.cfg.site.language,
        )
        self._state_due = False
        self.commands = RemoteCommands(daemon, self.link)
        self.discovery = Discovery(self.link, daemon.cfg, daemon.journal)
        self.started_at = daemon.clock.now()
        self._retained: dict[str, str] = {}
        self._drones: dict[str, dict[str, Any]] = {}  # active track → retained payload
        self._heartbeat: TimerHandle | None = None
        self.link.connect_listeners.append(self._on_connect)
        self.link.disconnect_listeners.append(self._on_disconnect)
        # retained drone topics left by an earlier run (tracks it never saw lost) are cleared
        self.link.subscribe(f"{self.prefix}/drone/+", self._on_retained_drone)

    def start(self) -> None:
        self.commands.start()
        self.discovery.start()
        self.link.start()
        self._schedule_heartbeat()

    def reload(self) -> None:
        """The configuration was reloaded: command rules, retained state for new zones/sensors."""
        self.commands.reload()
        self.outbox.limit = self.daemon.cfg.mqtt.outbox_limit
        self._retained.clear()
        self.publish_state()
        self.discovery.update(self.daemon.cfg)

    def on_events(self, events: list[Event]) -> None:
        self.outbox.wake()
        for ev in events:
            track = str(ev.detail.get("track") or "")
            if ev.kind == "drone" and track:
                self._drones[track] = {**ev.detail, "ts": ev.ts}
                self._publish_drone(track)
            elif ev.kind == "drone_lost" and track:
                self._drones.pop(track, None)
                self._publish_drone(track)
        self.publish_state_soon()

    def _publish_drone(self, track: str) -> None:
        """`P/drone/<track>`: the drone's last report, retained; empty once it is lost."""
        body = self._drones.get(track)
        payload = json.dumps(body, ensure_ascii=False) if body is not None else ""
        self._put_raw(f"{self.prefix}/drone/{track}", payload)

    def publish_state_soon(self) -> None:
        """Retained state once per loop turn, after the outbox has sent this turn's events
        (its tick was scheduled first): a burst of changes costs one pass, not one each."""
        if self._state_due:
            return
        self._state_due = True
        asyncio.get_running_loop().call_soon(self._publish_state_due)

    def _publish_state_due(self) -> None:
        self._state_due = False
        self.publish_state()

    def _on_outbox_capacity(self, trouble: dict[str, Any] | None) -> None:
        """The outbox's long-outage policy raised, changed or cleared its trouble (E350)."""
        if trouble is None:
            self.daemon.extra_troubles.pop("outbox", None)
        else:
            self.daemon.extra_troubles["outbox"] = trouble
        self.publish_state_soon()

    def _on_connect(self) -> None:
        self.daemon.broker_connected = True
        self._retained.clear()  # publish everything again after a reconnect
        self.publish_state()
        self.discovery.announce()
        for track in self._drones:
            self._publish_drone(track)

    def _on_disconnect(self) -> None:
        self.daemon.broker_connected = False

    def _on_retained_drone(self, topic: str, payload: bytes) -> None:
        track = topic.rsplit("/", 1)[-1]
        if payload and track not in self._drones:
            self._put_raw(topic, "")

    # ------------------------------------------------------------------ retained state

    def publish_state(self) -> None:
        """Retained zone, sensor, trouble and detector state; only what changed."""
        if not self.link.connected:
            return
        st = self.daemon.status()
        ts = st["time"]
        p = self.prefix
        for zid, z in st["zones"].items():
            self._put(f"{p}/zone/{zid}/state", {"state": z["state"], "alarm": z["alarm"]}, ts)
        for sid, s in st["sensors"].items():
            self._put(
                f"{p}/sensor/{sid}/state", {"active": s["active"], "bypassed": s["bypassed"]}, ts
            )
        self._put(f"{p}/trouble/state", {"troubles": st["troubles"]}, ts)
        for did, det in st["detectors"].items():
            tracks = sum(1 for body in self._drones.values() if body.get("detector") == did)
            self._put(
                f"{p}/detector/{did}/state",
                {"online": det.get("link") == "ok", "link": det.get("link"), "tracks": tracks},
                ts,
            )

    def _put(self, topic: str, body: dict[str, Any], ts: str) -> None:
        key = json.dumps(body, sort_keys=True)
        if self._retained.get(topic) == key:
            return
        self._retained[topic] = key
        self.link.publish(
            topic, json.dumps({**body, "ts": ts}, ensure_ascii=False), qos=1, retain=True
        )

    def _put_raw(self, topic: str, payload: str) -> None:
        if self.link.connected:
            self.link.publish(topic, payload, qos=1, retain=True)

    # ------------------------------------------------------------------ heartbeat

    def _schedule_heartbeat(self) -> None:
        every = self.daemon.cfg.mqtt.heartbeat
        if every > timedelta(0):
            self._heartbeat = self.daemon.clock.call_at(self.daemon.clock.now() + every, self._beat)

    def heartbeat_payload(self) -> dict[str, Any]:
        d = self.daemon
        now = d.clock.now()
        return {
            "ts": now.astimezone(d.cfg.tz).isoformat(timespec="seconds"),
            "seq": d.journal.last_seq() if d.journal else None,
            "outbox": d.journal.outbox_depth() if d.journal else None,
            "uptime_s": int((now - self.started_at).total_seconds()),
            "troubles": len(d.engine.troubles()) + len(d.extra_troubles),
            "interval_s": int(d.cfg.mqtt.heartbeat.total_seconds()),
        }

    def _beat(self) -> None:
        self._heartbeat = None
        if self.link.connected:
            self.link.publish(
                f"{self.prefix}/heartbeat", json.dumps(self.heartbeat_payload()), qos=0
            )
        self._schedule_heartbeat()

    async def close(self, reason: str = "stopped") -> None:
        if self._heartbeat is not None:
            self._heartbeat.cancel()
            self._heartbeat = None
        await self.commands.close()
        await self.discovery.close()
        self.outbox.close()
        ts = self.daemon.clock.now().astimezone(self.daemon.cfg.tz).isoformat(timespec="seconds")
        await self.link.close({"online": False, "ts": ts, "reason": reason})
