"""Reporting to the central broker: the MQTT link, the journal outbox (every event, QoS 1, in
seq order, marked delivered only on PUBACK), the retained state the security office and Home
Assistant read (zones, sensors, troubles, drone detectors and the drones they track), a
heartbeat, and remote commands. Retained state is published again after every reconnect. The
alarm path never waits on any of it."""

from __future__ import annotations

import asyncio
import json
import logging
from datetime import datetime, timedelta, tzinfo
from functools import partial
from typing import TYPE_CHECKING, Any

from controller.clock import TimerHandle
from controller.component import Component
from controller.events import Event
from controller.preflight import unreadable_files
from controller.remote.component import RemoteCommands
from controller.reporting.discovery import Discovery
from controller.reporting.mqtt import MqttConfigError, MqttLink
from controller.reporting.outbox import Outbox
from controller.supervision.ha import supervision_state

if TYPE_CHECKING:
    from controller.config import SiteConfig
    from controller.site import Site

log = logging.getLogger(__name__)

# A sensor's retained state (`P/sensor/<id>/state`) goes out at once when its topic was last
# published at least this long ago (on the daemon's clock), otherwise once at the end of this
# window with the sensor's latest state: a chattering input costs a few publishes a second,
# not one per change, and its final state always goes out.
SENSOR_STATE_INTERVAL = timedelta(milliseconds=250)


class Reporting(Component):
    """The reporting component: one broker link for the site's whole life (a reload keeps
    it), the outbox on the logbook, the retained state, the heartbeat and remote commands."""

    name = "reporting"
    keeps_on_reload = True

    def __init__(self, site: Site):
        super().__init__(site)
        journal = site.logbook
        self.connected = False  # the broker link is up (the daemon's status shows it)
        self.link_error: str | None = None  # why the link is not even tried (see _make_link)
        self.link = self._make_link()
        self.prefix = self.link.prefix
        self.outbox = Outbox(
            journal,
            self.link,
            f"{self.prefix}/event",
            limit=site.config.mqtt.outbox_limit,
            on_capacity=partial(self._on_outbox_trouble, "outbox"),
            on_refused=partial(self._on_outbox_trouble, "outbox_refused"),
            record=site.record,
            now=site.clock.now,
            language=site.config.site.language,
            clock=site.clock,
        )
        self._state_due = False
        # after the outbox's own listener: the turn's events go out before the retained state
        journal.flush_listeners.append(self._on_journal_flushed)
        self.commands = RemoteCommands(site, self.link, on_trouble=self.publish_state_soon)
        self.discovery = Discovery(self.link, site.config, journal)
        self.started_at = site.clock.now()
        self._retained: dict[str, Any] = {}  # topic -> body last published (without "ts")
        self._sensor_published: dict[str, datetime] = {}  # sensor -> when its topic last went out
        self._sensor_window: dict[str, TimerHandle] = {}  # sensor -> the end of its window
        self._last_ts: tuple[datetime | None, tzinfo | None, str] = (None, None, "")  # _ts()
        self._drones: dict[str, dict[str, Any]] = {}  # active track → retained payload
        self._heartbeat: TimerHandle | None = None
        self.link.connect_listeners.append(self._on_connect)
        self.link.disconnect_listeners.append(self._on_disconnect)
        # retained drone topics left by an earlier run (tracks it never saw lost) are cleared
        self.link.subscribe(f"{self.prefix}/drone/+", self._on_retained_drone)

    def _make_link(self) -> MqttLink:
        """The broker link. One whose files cannot be read (a missing password file, an
        unreadable CA) cannot connect, but the alarm runs without it: the link is built without
        those files and never started, events wait in the outbox, and the broker link is a
        trouble (E350) with one log line naming the file and the fix."""
        site = self.site
        cfg = site.config
        unreadable = unreadable_files(cfg.mqtt)
        if not unreadable:
            try:
                return MqttLink(cfg.mqtt, cfg.site.id, now=site.clock.now)
            except MqttConfigError as e:
                self.link_error = str(e)
        else:
            self.link_error = str(unreadable[0])
        log.error(
            "running WITHOUT the broker link: %s, then restart the daemon", self.link_error
        )
        site.trouble_board.raise_(
            "mqtt", {"source": "mqtt", "cid": "E350", "what": f"no broker link: {self.link_error}"}
        )
        inert = cfg.mqtt.model_copy(
            update={"password_file": None, "ca_file": None, "cert_file": None, "key_file": None}
        )
        return MqttLink(inert, cfg.site.id, now=site.clock.now)

    def start(self) -> None:
        self.commands.start()
        self.discovery.start()
        if self.link_error is None:
            self.link.start()
        self._schedule_heartbeat()

    def reload(self, config: SiteConfig) -> None:
        """The configuration was reloaded: command rules, retained state for new zones/sensors;
        the link stays up."""
        self.commands.reload()
        self.outbox.limit = config.mqtt.outbox_limit
        self._republish_state()
        self.discovery.update(config)

    def status(self) -> dict[str, Any]:
        return {"commands": self.commands.status()}

    def events(self, events: list[Event]) -> None:
        self.on_events(events)

    def state_changed(self) -> None:
        self.publish_state_soon()

    def on_events(self, events: list[Event]) -> None:
        self.outbox.wake()
        for ev in events:
            if ev.kind != "drone" and ev.kind != "drone_lost":
                continue
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
        """Retained state once per loop turn: a burst of changes costs one pass, not one each.
        While this turn's events wait for their commit and fsync, it waits for them too: the
        alarm reaches the office first, and the loop goes idle sooner, so the logbook's worker
        thread starts its fsync sooner (it needs the interpreter lock to begin)."""
        if self._state_due:
            return
        self._state_due = True
        if self.site.logbook.writing():
            return  # _on_journal_flushed publishes it
        asyncio.get_running_loop().call_soon(self._publish_state_due)

    def _publish_state_due(self) -> None:
        if not self._state_due:
            return  # published meanwhile (the journal's listener came first)
        self._state_due = False
        self.publish_state()

    def _on_journal_flushed(self, ok: bool) -> None:
        if self._state_due:
            self._publish_state_due()

    def _on_outbox_trouble(self, key: str, trouble: dict[str, Any] | None) -> None:
        """The outbox raised, changed or cleared a trouble (E350): its long-outage policy
        ("outbox") or an event the broker refused ("outbox_refused")."""
        if trouble is None:
            self.site.trouble_board.clear(key)
        else:
            self.site.trouble_board.raise_(key, trouble)
        self.publish_state_soon()

    def _on_connect(self) -> None:
        self.connected = True
        self._republish_state()  # everything again after a reconnect
        self.discovery.announce()
        for track in self._drones:
            self._publish_drone(track)

    def _on_disconnect(self) -> None:
        self.connected = False

    def _on_retained_drone(self, topic: str, payload: bytes) -> None:
        track = topic.rsplit("/", 1)[-1]
        if payload and track not in self._drones:
            self._put_raw(topic, "")

    # ------------------------------------------------------------------ retained state

    def publish_state(self) -> None:
        """Retained zone, sensor, trouble and detector state; only what changed. Read straight
        from the engine (not a whole status()); sensor topics are throttled (see
        SENSOR_STATE_INTERVAL), the others go out at once."""
        if not self.link.connected:
            return
        site = self.site
        engine = site.engine
        p = self.prefix
        now = site.clock.now()
        ts = self._ts(now)
        for zid in engine.zones:
            self._put(f"{p}/zone/{zid}/state", engine.zone_report(zid), ts)
        for sid in engine.sensors:
            self._put_sensor(sid, now)
        self._put(f"{p}/trouble/state", {"troubles": site.troubles()}, ts)
        for topic, body in supervision_state(site.component_status("supervision"), p):
            self._put(topic, body, ts)
        detectors: dict[str, dict[str, Any]] = site.component_status("detectors") or {}
        for did, det in detectors.items():
            link = det.get("link")
            tracks = sum(1 for body in self._drones.values() if body.get("detector") == did)
            self._put(
                f"{p}/detector/{did}/state",
                {"online": link == "ok", "link": link, "tracks": tracks},
                ts,
            )
        patrols: dict[str, dict[str, Any]] = site.component_status("patrols") or {}
        for pid, state in patrols.items():  # P/patrol/<plan>: the plan's state (docs/patrol.md)
            self._put(f"{p}/patrol/{pid}", state, ts)

    def _ts(self, now: datetime) -> str:
        """The "ts" of a retained state; the sensors whose windows end together share it."""
        tz = self.site.config.tz
        if self._last_ts[0] != now or self._last_ts[1] is not tz:
            self._last_ts = (now, tz, now.astimezone(tz).isoformat(timespec="seconds"))
        return self._last_ts[2]

    def _put(self, topic: str, body: dict[str, Any], ts: str | None) -> bool:
        """Publish a retained body (with its "ts") unless it is what the topic last got."""
        if self._retained.get(topic) == body:
            return False
        self._retained[topic] = body
        if ts is None:
            ts = self._ts(self.site.clock.now())
        self.link.publish(
            topic, json.dumps({**body, "ts": ts}, ensure_ascii=False), qos=1, retain=True
        )
        return True

    def _put_sensor(self, sid: str, now: datetime) -> None:
        """A sensor's state: at once if its topic has been quiet for SENSOR_STATE_INTERVAL,
        else at the end of that window (with whatever the state is by then)."""
        if sid in self._sensor_window:
            return  # the window's end publishes the latest state
        topic = f"{self.prefix}/sensor/{sid}/state"
        body = self.site.engine.sensor_report(sid)
        if self._retained.get(topic) == body:
            return
        last = self._sensor_published.get(sid)
        if last is not None and last <= now < last + SENSOR_STATE_INTERVAL:
            self._sensor_window[sid] = self.site.clock.call_at(
                last + SENSOR_STATE_INTERVAL, partial(self._sensor_window_end, sid)
            )
            return
        self._put(topic, body, None)
        self._sensor_published[sid] = now

    def _sensor_window_end(self, sid: str) -> None:
        self._sensor_window.pop(sid, None)
        if self.link.connected and sid in self.site.engine.sensors:
            self._put_sensor(sid, self.site.clock.now())

    def _end_sensor_windows(self) -> None:
        for timer in self._sensor_window.values():
            timer.cancel()
        self._sensor_window.clear()
        self._sensor_published.clear()

    def _republish_state(self) -> None:
        """Every retained state topic again, at once (after a reconnect or a reload)."""
        self._retained.clear()
        self._end_sensor_windows()
        self.publish_state()

    def clock_stepped(self, delta: timedelta) -> None:
        """A step of the time of day must not hold a sensor's state back (a step back would
        leave its window's end in the future): whatever waits goes out now."""
        self.outbox.clock_stepped(delta)
        waiting = list(self._sensor_window)
        self._end_sensor_windows()
        if self.link.connected:
            now = self.site.clock.now()
            for sid in waiting:
                if sid in self.site.engine.sensors:
                    self._put_sensor(sid, now)

    def _put_raw(self, topic: str, payload: str) -> None:
        if self.link.connected:
            self.link.publish(topic, payload, qos=1, retain=True)

    # ------------------------------------------------------------------ heartbeat

    def _schedule_heartbeat(self) -> None:
        every = self.site.config.mqtt.heartbeat
        if every > timedelta(0):
            clock = self.site.clock
            self._heartbeat = clock.call_at(clock.now() + every, self._beat)

    def heartbeat_payload(self) -> dict[str, Any]:
        site = self.site
        cfg = site.config
        journal = site.logbook
        now = site.clock.now()
        return {
            "ts": now.astimezone(cfg.tz).isoformat(timespec="seconds"),
            "seq": journal.last_seq(),
            "outbox": journal.outbox_depth(),
            "uptime_s": int((now - self.started_at).total_seconds()),
            "troubles": len(site.engine.troubles()) + len(site.trouble_board),
            "interval_s": int(cfg.mqtt.heartbeat.total_seconds()),
        }

    def _beat(self) -> None:
        self._heartbeat = None
        if self.link.connected:
            self.link.publish(
                f"{self.prefix}/heartbeat", json.dumps(self.heartbeat_payload()), qos=0
            )
        self._schedule_heartbeat()

    async def stop(self, reason: str = "stopped") -> None:
        """Last events out (the outbox is woken), then the link closes with an offline
        status giving `reason`."""
        self.outbox.wake()
        self._end_sensor_windows()
        if self._heartbeat is not None:
            self._heartbeat.cancel()
            self._heartbeat = None
        await self.commands.close()
        await self.discovery.close()
        self.outbox.close()
        journal = self.site.logbook
        if self._on_journal_flushed in journal.flush_listeners:
            journal.flush_listeners.remove(self._on_journal_flushed)
        ts = self.site.clock.now().astimezone(self.site.config.tz).isoformat(timespec="seconds")
        await self.link.close({"online": False, "ts": ts, "reason": reason})
