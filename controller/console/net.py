"""The console's MQTT subscriber: paho-mqtt 2 driven by its own small loop, built for ingest rate.

Why not paho's `loop_start()` thread (see docs/mqtt-throughput.md for the measurements): with
QoS 1 every message received costs a PUBACK, and paho's own loop writes each PUBACK with its own
`send()` the moment the message is handled (after waking its select through a socket pair when
it runs in a thread). On loopback, a `send()` is the whole TCP path plus waking the broker: most
of a plain subscriber's time per message goes there. This loop uses paho's public
"external event loop" interface instead: it reads every packet already waiting on the socket,
then writes all their PUBACKs with the socket corked (TCP_CORK), so the kernel sends one segment
for the whole batch. Messages are handed to `on_message` on the same thread, so nothing waits
on a lock or on the GIL between receiving and ingesting.

Subscriptions: the retained state topics of every site normally; the events either normally or
through an MQTT 5 shared subscription (`$share/<group>/<prefix>/+/event`) so several consoles
split the event load while each still sees all the retained state.
"""

from __future__ import annotations

import contextlib
import logging
import random
import select
import socket
import ssl
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import paho.mqtt.client as paho
from paho.mqtt.enums import CallbackAPIVersion, MQTTErrorCode
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties
from paho.mqtt.reasoncodes import ReasonCode
from paho.mqtt.subscribeoptions import SubscribeOptions

from controller.config import Mqtt
from controller.errors import OfficeGuardError
from controller.reporting.mqtt import (
    BUFFERED,
    BrokerAddress,
    MqttConfigError,
    connect_error_text,
    read_secret,
    secure_client,
)
from controller.reporting.mqtt import BufferedClient as _BufferedClient

log = logging.getLogger(__name__)

READ_BATCH = 2000  # packets read before the PUBACKs are flushed
RECONNECT_MIN = 0.5
RECONNECT_MAX = 10.0
STATE_TOPICS = (
    "+/status",
    "+/heartbeat",
    "+/zone/+/state",
    "+/sensor/+/state",
    "+/trouble/state",
    "+/detector/+/state",
    "+/power/state",
    "+/drone/+",
    "+/patrol/+",
)


class MonitorError(OfficeGuardError, RuntimeError):
    """The console cannot reach or use the broker (the message says why, for the operator)."""


@dataclass(frozen=True)
class BrokerSettings:
    """The broker the console talks to: its address and the site-style MQTT settings
    (credentials, TLS files, protocol, keepalive), read once at start."""

    address: BrokerAddress
    mqtt: Mqtt

    @property
    def url(self) -> str:
        return self.address.url

    @property
    def keepalive(self) -> int:
        return max(5, int(self.mqtt.keepalive.total_seconds()))

    @classmethod
    def from_config(cls, cfg: Mqtt) -> BrokerSettings:
        settings = cls(BrokerAddress.parse(cfg.url), cfg)
        read_secret(cfg.password_file)  # an unreadable password file is refused at start
        return settings


def subscriptions(prefix: str, share: str | None, images: bool = False) -> list[str]:
    flts = [f"{prefix}/{t}" for t in STATE_TOPICS]
    flts.append(f"$share/{share}/{prefix}/+/event" if share else f"{prefix}/+/event")
    if images:  # the cameras' pictures (the station keeps them; the terminal monitor does not)
        flts.append(f"$share/{share}/{prefix}/+/snapshot/#" if share else f"{prefix}/+/snapshot/#")
    return flts




class MonitorClient:
    """One connection to the broker, run by `run()` on the caller's thread.

    `on_message(topic, payload)` is called for every message, on that same thread. The console
    speaks MQTT 5 with `share` (or `mqtt5=True`) and MQTT 3.1.1 otherwise: it only subscribes
    and uses nothing else of MQTT 5.
    """

    def __init__(
        self,
        settings: BrokerSettings,
        prefix: str,
        on_message: Callable[[str, bytes], None],
        *,
        share: str | None = None,
        images: bool = False,
        client_id: str | None = None,
        cork: bool = True,
        buffered: bool = True,
        mqtt5: bool | None = None,
    ) -> None:
        if share is not None and (not share or any(c in share for c in "/+#")):
            raise MqttConfigError("a shared-subscription group name has no /, + or #")
        self.settings = settings
        self.prefix = prefix
        self.filters = subscriptions(prefix, share, images)
        self._on_message = on_message
        self._cork = cork and hasattr(socket, "TCP_CORK")
        # MQTT 5 only where it is needed: shared subscriptions are an MQTT 5 feature, and paho
        # decodes the (empty) MQTT 5 properties of every message it receives, about a quarter
        # of a plain subscriber's cost per message (docs/mqtt-throughput.md)
        self.v5 = mqtt5 if mqtt5 is not None else share is not None
        self.connected = False
        self.subscribed = False
        self.connects = 0
        self.last_error: str | None = None
        self.refused: str | None = None  # the broker refused our CONNECT (bad credentials...)
        self._delay = RECONNECT_MIN
        self._next_try = 0.0

        self._buffered = buffered and BUFFERED
        cls = _BufferedClient if self._buffered else paho.Client
        c = cls(
            CallbackAPIVersion.VERSION2,
            client_id=client_id or f"officeguard-monitor-{uuid.uuid4().hex[:12]}",
            protocol=paho.MQTTv5 if self.v5 else paho.MQTTv311,
            clean_session=None if self.v5 else True,
            transport=settings.address.transport,
        )
        secure_client(c, settings.mqtt, settings.address)
        c.max_queued_messages_set(0)
        c.on_connect = self._handle_connect
        c.on_disconnect = self._handle_disconnect
        c.on_subscribe = self._handle_subscribe
        c.on_message = self._handle_message
        # the external-loop interface: paho queues what it has to write and we flush it in
        # batches (setting this callback stops paho from writing each packet at once)
        c.on_socket_register_write = _noop
        c.on_socket_unregister_write = _noop
        if isinstance(c, _BufferedClient):
            # bytes of one connection are never parsed as the start of the next one
            c.on_socket_open = lambda client, userdata, sock: c.reset_buffer()
            c.on_socket_close = lambda client, userdata, sock: c.reset_buffer()
        self._client = c

    # ------------------------------------------------------------------ paho callbacks

    def _handle_connect(
        self, client: paho.Client, userdata: Any, flags: Any, rc: ReasonCode, props: Any
    ) -> None:
        if rc.is_failure:
            self.refused = self.last_error = f"the broker refused the connection: {rc}"
            return
        self.connected = True
        self.connects += 1
        self.last_error = None
        self.refused = None
        self._delay = RECONNECT_MIN
        if self.v5:
            client.subscribe([(f, SubscribeOptions(qos=1)) for f in self.filters])
        else:
            client.subscribe([(f, 1) for f in self.filters])

    def _handle_disconnect(
        self, client: paho.Client, userdata: Any, flags: Any, rc: ReasonCode, props: Any
    ) -> None:
        if self.connected:
            self.last_error = f"disconnected: {rc}"
        self.connected = False
        self.subscribed = False

    def _handle_subscribe(
        self, client: paho.Client, userdata: Any, mid: int, rcs: list[ReasonCode], props: Any
    ) -> None:
        bad = [f for f, rc in zip(self.filters, rcs, strict=False) if rc.is_failure]
        if bad:
            self.last_error = f"the broker refused the subscription to {', '.join(bad)}"
            log.warning("monitor: %s", self.last_error)
        self.subscribed = True
        log.info("monitor: connected to %s, subscribed under %s/", self.settings.url, self.prefix)

    def _handle_message(self, client: paho.Client, userdata: Any, msg: paho.MQTTMessage) -> None:
        self._on_message(msg.topic, bytes(msg.payload))

    # ------------------------------------------------------------------ connection

    def connect(self) -> None:
        """First connection (TCP and TLS); raises MonitorError with the reason if it fails."""
        s = self.settings
        props = None
        if self.v5:
            props = Properties(PacketTypes.CONNECT)  # type: ignore[no-untyped-call]
            props.SessionExpiryInterval = 0
        try:
            self._client.connect(
                s.address.host,
                s.address.port,
                keepalive=s.keepalive,
                clean_start=True if self.v5 else paho.MQTT_CLEAN_START_FIRST_ONLY,
                properties=props,
            )
        except (OSError, ssl.SSLError, ValueError) as e:
            raise MonitorError(f"cannot reach the broker at {s.url}: {_reason(e)}") from e

    def _reconnect(self) -> None:
        now = time.monotonic()
        if now < self._next_try:
            time.sleep(min(0.2, self._next_try - now))
            return
        try:
            self._client.reconnect()
        except (OSError, ssl.SSLError) as e:
            self.last_error = f"cannot reach the broker at {self.settings.url}: {_reason(e)}"
            self._delay = min(RECONNECT_MAX, self._delay * 2)
            self._next_try = time.monotonic() + self._delay * random.uniform(0.5, 1.0)

    def publish(self, topic: str, payload: bytes) -> None:
        """QoS 1, from any thread: the loop writes it on its next step (within 0.25 s)."""
        self._client.publish(topic, payload, qos=1)

    def disconnect(self) -> None:
        c = self._client
        if c.socket() is not None:
            c.disconnect()
            self._flush()
            c.loop_read()  # lets paho close the socket cleanly

    # ------------------------------------------------------------------ the loop

    def run(
        self,
        until: Callable[[], bool],
        tick: Callable[[], None] | None = None,
        tick_every: float = 0.5,
    ) -> None:
        """Receive until `until()` is true; call `tick()` about every `tick_every` seconds, or
        less often if it is slow (it never takes more than a tenth of the time)."""
        next_tick = time.monotonic() + tick_every
        while not until():
            now = time.monotonic()
            if tick is None:
                next_tick = now + tick_every  # nothing to call: wait on the socket alone
            elif now >= next_tick:
                tick()
                took = time.monotonic() - now
                next_tick = now + max(tick_every, 10 * took)
            self.step(max(0.0, min(tick_every, next_tick - now, 0.25)))
            if self.refused is not None:
                return

    def step(self, timeout: float) -> None:
        c = self._client
        sock = c.socket()
        if sock is None:
            self.connected = self.subscribed = False
            self._reconnect()
            return
        wlist = [sock] if c.want_write() else []
        if self._has_buffered():
            timeout = 0.0
        try:
            readable, _, _ = select.select([sock], wlist, [], timeout)
        except (OSError, ValueError):
            readable = []
        if readable or _pending(sock) or self._has_buffered():
            self._read_batch()
        self._flush()
        if c.socket() is not None:
            c.loop_misc()

    def _read_batch(self) -> None:
        c = self._client
        if isinstance(c, _BufferedClient):
            # packets come out of the buffer without a system call; stop when the buffer is
            # empty and the socket has nothing more (the next recv would block)
            for _ in range(READ_BATCH):
                c.would_block = False
                if c.loop_read() != MQTTErrorCode.MQTT_ERR_SUCCESS or c.socket() is None:
                    return
                if c.would_block and not c.buffered:
                    return
            return
        for _ in range(READ_BATCH):
            if c.loop_read() != MQTTErrorCode.MQTT_ERR_SUCCESS:
                return
            s = c.socket()
            if s is None:
                return
            if not _pending(s):
                try:
                    if not select.select([s], [], [], 0)[0]:
                        return
                except (OSError, ValueError):
                    return

    def _has_buffered(self) -> bool:
        c = self._client
        return isinstance(c, _BufferedClient) and c.buffered > 0

    def _flush(self) -> None:
        """Write everything paho has queued (PUBACKs, SUBSCRIBE, PINGREQ) as one segment."""
        c = self._client
        sock = c.socket()
        if sock is None or not c.want_write():
            return
        raw = sock if self._cork and isinstance(sock, socket.socket) else None
        if raw is not None:
            _set_cork(raw, True)
        try:
            c.loop_write()
        finally:
            if raw is not None and raw.fileno() != -1:  # still open
                _set_cork(raw, False)


def _noop(*args: Any) -> None:
    return None


def _pending(sock: Any) -> bool:
    """Bytes already decrypted and buffered inside a TLS socket (select cannot see those)."""
    return isinstance(sock, ssl.SSLSocket) and sock.pending() > 0


def _set_cork(sock: socket.socket, on: bool) -> None:
    with contextlib.suppress(OSError):
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_CORK, 1 if on else 0)


_reason = connect_error_text
