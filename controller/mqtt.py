"""The controller's link to the central MQTT broker (the security office's server).

It keeps one connection open, reconnects by itself after a network or broker outage (waiting a
little longer each time, up to a cap, with some randomness so that a whole building does not
reconnect in the same second), and tells the office whether this controller is online: a retained
`<prefix>/<site>/status` message says `{"online": true, ...}` while connected, and the broker itself
publishes `{"online": false}` (the "last will") if the controller dies or loses its network.

The network work runs in paho-mqtt's own thread; everything this module hands back (publish
results, received messages, connect/disconnect notices) is delivered on the daemon's asyncio loop,
so the alarm logic never waits on the network.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import random
import ssl
import threading
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Literal
from urllib.parse import urlsplit

import paho.mqtt.client as paho
from paho.mqtt.enums import CallbackAPIVersion, MQTTErrorCode
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties
from paho.mqtt.reasoncodes import ReasonCode

from controller import __version__
from controller.config import Mqtt

log = logging.getLogger(__name__)

MessageHandler = Callable[[str, bytes], None]
Listener = Callable[[], None]

# no cap in paho: with one, paho walks every message in flight on each PUBACK, holding the lock
# publish() needs; the outbox's window bounds what is in flight
MAX_INFLIGHT = 0


class MqttConfigError(ValueError):
    """The MQTT part of the configuration cannot be used (bad URL, unreadable password file...)."""


@dataclass(frozen=True)
class BrokerAddress:
    """Where the broker is, from `mqtt://host:1883`, `mqtts://host:8883`, `ws://`, `wss://`."""

    url: str
    host: str
    port: int
    tls: bool
    transport: Literal["tcp", "websockets"]

    @classmethod
    def parse(cls, url: str) -> BrokerAddress:
        u = urlsplit(url)
        if not u.hostname:
            raise MqttConfigError(f"broker URL {url!r} has no host")
        tls = u.scheme in ("mqtts", "ssl", "wss")
        try:
            port = u.port or (8883 if tls else 1883)
        except ValueError:
            raise MqttConfigError(f"broker URL {url!r} has a bad port") from None
        transport: Literal["tcp", "websockets"] = (
            "websockets" if u.scheme in ("ws", "wss") else "tcp"
        )
        return cls(url, u.hostname, port, tls, transport)


def secure_client(client: paho.Client, cfg: Mqtt, addr: BrokerAddress) -> None:
    """Username and password (from `password_file`) and TLS (`ca_file`, client certificate)
    onto a paho client, as the site's configuration says. The password is never logged."""
    if cfg.username is not None or cfg.password_file is not None:
        client.username_pw_set(cfg.username or "", read_secret(cfg.password_file))
    if addr.tls:
        try:
            client.tls_set(
                ca_certs=cfg.ca_file,
                certfile=cfg.cert_file,
                keyfile=cfg.key_file,
                cert_reqs=ssl.CERT_REQUIRED,
            )
        except (OSError, ssl.SSLError) as e:
            raise MqttConfigError(f"cannot load TLS files for the broker: {e}") from e
    elif cfg.cert_file or cfg.ca_file:
        log.warning("mqtt: TLS files are configured but the URL is not mqtts://; ignored")


def _now_utc() -> datetime:
    return datetime.now(UTC)


class MqttLink:
    """One connection to the broker, owned by the daemon's asyncio loop.

    - `start()` returns at once; connecting (and every reconnect) happens in the background.
    - `publish()` returns a future resolved True on the broker's acknowledgement (PUBACK for
      QoS 1; "written to the socket" for QoS 0) and False on refusal or when the connection drops
      first. It never raises for network reasons and never blocks.
    - `subscribe(filter, handler)`: `handler(topic, payload)` is called on the asyncio loop; the
      subscriptions are renewed after every reconnect.
    - `connect_listeners` / `disconnect_listeners`: plain callables run on the asyncio loop after
      each (re)connect (the status message is already out) and after each loss of connection.
    """

    def __init__(
        self,
        cfg: Mqtt,
        site_id: str,
        *,
        loop: asyncio.AbstractEventLoop | None = None,
        now: Callable[[], datetime] = _now_utc,
        version: str = __version__,
        reconnect_min: float = 1.0,
        reconnect_max: float = 60.0,
        max_inflight: int = MAX_INFLIGHT,
    ) -> None:
        self.cfg = cfg
        self.site_id = site_id
        self.prefix = f"{cfg.topic_prefix}/{site_id}"
        self.status_topic = f"{self.prefix}/status"
        self._loop = loop
        self._now = now
        self._version = version
        self._reconnect_min = reconnect_min
        self._reconnect_max = reconnect_max
        self._connected = False
        self._closing = False
        self._started = False
        self._futures: dict[int, asyncio.Future[bool]] = {}
        self._acks: list[tuple[int, bool]] = []
        self._acks_lock = threading.Lock()
        self._subs: dict[str, tuple[int, list[MessageHandler]]] = {}
        self.connect_listeners: list[Listener] = []
        self.disconnect_listeners: list[Listener] = []
        self.connects = 0
        self.last_error: str | None = None

        addr = BrokerAddress.parse(cfg.url)
        self.host = addr.host
        self.port = addr.port
        self.client_id = cfg.client_id or f"officeguard-{site_id}"
        self.v5 = cfg.protocol == "5"

        c = paho.Client(
            CallbackAPIVersion.VERSION2,
            client_id=self.client_id,
            protocol=paho.MQTTv5 if self.v5 else paho.MQTTv311,
            clean_session=None if self.v5 else True,
            transport=addr.transport,
        )
        secure_client(c, cfg, addr)
        c.will_set(self.status_topic, json.dumps({"online": False}), qos=1, retain=True)
        c.max_inflight_messages_set(max_inflight)
        c.max_queued_messages_set(0)
        c.reconnect_delay_set(min_delay=reconnect_min, max_delay=reconnect_max)  # type: ignore[arg-type]
        c.on_connect = self._on_connect
        c.on_disconnect = self._on_disconnect
        c.on_publish = self._on_publish
        c.on_message = self._on_message
        self._client = c

    # ------------------------------------------------------------------ lifecycle

    @property
    def connected(self) -> bool:
        return self._connected

    def start(self) -> None:
        """Begin connecting in the background (never blocks; retries until it succeeds)."""
        if self._started:
            return
        if self._loop is None:
            self._loop = asyncio.get_running_loop()
        self._started = True
        props = None
        if self.v5:
            props = Properties(PacketTypes.CONNECT)  # type: ignore[no-untyped-call]
            props.SessionExpiryInterval = 0
        self._client.connect_async(
            self.host,
            self.port,
            keepalive=max(5, int(self.cfg.keepalive.total_seconds())),
            clean_start=True if self.v5 else paho.MQTT_CLEAN_START_FIRST_ONLY,
            properties=props,
        )
        self._client.loop_start()

    async def close(
        self, offline_payload: dict[str, Any] | None = None, timeout: float = 2.0
    ) -> None:
        """Say goodbye cleanly: a retained `{"online": false}` (or `offline_payload`) on the status
        topic, acknowledged if the broker answers within `timeout`, then disconnect."""
        if not self._started:
            return
        self._closing = True
        if self._connected:
            payload = offline_payload if offline_payload is not None else {"online": False}
            fut = self.publish(self.status_topic, json.dumps(payload), qos=1, retain=True)
            try:
                await asyncio.wait_for(asyncio.shield(fut), timeout)
            except TimeoutError:
                log.warning("mqtt: broker did not acknowledge the offline status in time")
        self._client.disconnect()
        await asyncio.to_thread(self._client.loop_stop)
        self._started = False
        self._set_disconnected()

    # ------------------------------------------------------------------ publish / subscribe

    def publish(
        self, topic: str, payload: str | bytes, qos: int = 1, retain: bool = False
    ) -> asyncio.Future[bool]:
        """Hand one message to the network thread. Call from the asyncio loop."""
        loop = self._loop or asyncio.get_running_loop()
        fut: asyncio.Future[bool] = loop.create_future()
        if not self._connected:
            fut.set_result(False)
            return fut
        try:
            info = self._client.publish(topic, payload, qos=qos, retain=retain)
        except (ValueError, TypeError) as e:
            log.warning("mqtt: refused to publish on %r: %s", topic, e)
            fut.set_result(False)
            return fut
        if info.rc not in (MQTTErrorCode.MQTT_ERR_SUCCESS,):
            fut.set_result(False)
            return fut
        # the PUBACK callback is handed to this loop with call_soon_threadsafe, so it always runs
        # after this registration even if the broker answered already
        self._futures[info.mid] = fut
        return fut

    def subscribe(self, topic_filter: str, handler: MessageHandler, qos: int = 1) -> None:
        """Call `handler(topic, payload)` on the asyncio loop for each message matching the filter."""
        entry = self._subs.get(topic_filter)
        if entry is None:
            self._subs[topic_filter] = (qos, [handler])
            if self._connected:
                self._client.subscribe(topic_filter, qos)
        else:
            entry[1].append(handler)

    def status_payload(self) -> str:
        return json.dumps(
            {"online": True, "version": self._version, "ts": self._now().isoformat()},
            separators=(",", ":"),
        )

    # ------------------------------------------------------------------ paho thread → loop

    def _to_loop(self, fn: Callable[..., None], *args: Any) -> None:
        loop = self._loop
        if loop is None or loop.is_closed():
            return
        with contextlib.suppress(RuntimeError):  # the loop closed meanwhile
            loop.call_soon_threadsafe(fn, *args)

    def _on_connect(
        self,
        client: paho.Client,
        userdata: Any,
        flags: Any,
        reason_code: ReasonCode,
        properties: Properties | None,
    ) -> None:
        if reason_code.is_failure:
            self.last_error = f"broker refused the connection: {reason_code}"
            log.warning("mqtt: %s", self.last_error)
            return
        # subscribe and announce from the network thread right away, before anything queued
        client.publish(self.status_topic, self.status_payload(), qos=1, retain=True)
        for flt, (qos, _) in list(self._subs.items()):
            client.subscribe(flt, qos)
        self._to_loop(self._handle_connect)

    def _on_disconnect(
        self,
        client: paho.Client,
        userdata: Any,
        flags: Any,
        reason_code: ReasonCode,
        properties: Properties | None,
    ) -> None:
        # jitter the first retry and the cap so a building's controllers do not reconnect in step
        lo = self._reconnect_min * random.uniform(0.5, 1.5)
        hi = max(lo, self._reconnect_max * random.uniform(0.8, 1.0))
        client.reconnect_delay_set(min_delay=lo, max_delay=hi)  # type: ignore[arg-type]
        self._to_loop(self._handle_disconnect, str(reason_code))

    def _on_publish(
        self,
        client: paho.Client,
        userdata: Any,
        mid: int,
        reason_code: ReasonCode,
        properties: Properties | None,
    ) -> None:
        # hand acknowledgements over in bursts: one loop wake-up for all that came meanwhile
        with self._acks_lock:
            first = not self._acks
            self._acks.append((mid, not reason_code.is_failure))
        if first:
            self._to_loop(self._handle_acks)

    def _handle_acks(self) -> None:
        with self._acks_lock:
            acks, self._acks = self._acks, []
        for mid, ok in acks:
            self._handle_publish(mid, ok)

    def _on_message(self, client: paho.Client, userdata: Any, msg: paho.MQTTMessage) -> None:
        self._to_loop(self._handle_message, msg.topic, bytes(msg.payload))

    # ------------------------------------------------------------------ on the asyncio loop

    def _handle_connect(self) -> None:
        if self._connected:
            return
        self._connected = True
        self.connects += 1
        self.last_error = None
        log.info("mqtt: connected to %s:%d", self.host, self.port)
        for cb in list(self.connect_listeners):
            try:
                cb()
            except Exception:
                log.exception("mqtt: connect listener failed")

    def _handle_disconnect(self, reason: str) -> None:
        if not self._closing:
            self.last_error = f"disconnected: {reason}"
            log.warning("mqtt: %s", self.last_error)
        self._set_disconnected()

    def _set_disconnected(self) -> None:
        was = self._connected
        self._connected = False
        futures, self._futures = self._futures, {}
        for fut in futures.values():
            if not fut.done():
                fut.set_result(False)
        if was:
            for cb in list(self.disconnect_listeners):
                try:
                    cb()
                except Exception:
                    log.exception("mqtt: disconnect listener failed")

    def _handle_publish(self, mid: int, ok: bool) -> None:
        fut = self._futures.pop(mid, None)
        if fut is not None and not fut.done():
            fut.set_result(ok)

    def _handle_message(self, topic: str, payload: bytes) -> None:
        for flt, (_, handlers) in list(self._subs.items()):
            if paho.topic_matches_sub(flt, topic):
                for h in list(handlers):
                    try:
                        h(topic, payload)
                    except Exception:
                        log.exception("mqtt: handler for %r failed", flt)


def read_secret(path: str | None, what: str = "MQTT password file") -> str | None:
    """The contents of a secret file (password, command key), stripped; never logged."""
    if path is None:
        return None
    try:
        with open(path, encoding="utf-8") as f:
            return f.read().strip()
    except (OSError, UnicodeDecodeError) as e:
        why = getattr(e, "strerror", None) or "not UTF-8 text"
        raise MqttConfigError(f"cannot read the {what} {path}: {why}") from e
