"""The controller's link to the central MQTT broker (the security office's server).

It keeps one connection open, reconnects by itself after a network or broker outage (waiting a
little longer each time, up to a cap, with some randomness so that a whole building does not
reconnect in the same second), and tells the office whether this controller is online: a retained
`<prefix>/<site>/status` message says `{"online": true, ...}` while connected, and the broker itself
publishes `{"online": false}` (the "last will") if the controller dies or loses its network.

The link speaks MQTT 3.1.1 or 5 over TCP or TLS itself, on the daemon's asyncio loop
(controller/mqtt_wire.py holds the packet codec it shares with the embedded broker): no network
thread, no lock, no hand-over between threads, and a publish is a few bytes appended to the
socket's buffer. What one loop turn publishes leaves in one write. paho-mqtt, which the console
and the tests use, did the same job from its own thread at about four times the CPU per message
(a condition variable, a message object and two property objects per publish and acknowledgement,
and a thread hand-over for every acknowledgement): that was half of the controller's CPU in an
event storm (docs/capacity.md).

Network timing (connect timeout, keepalive, reconnect backoff) follows real time, as the network
does; nothing in the alarm logic waits on it.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import random
import ssl
import struct
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, Literal
from urllib.parse import urlsplit

from controller import __version__
from controller.config import Mqtt
from controller.mqtt_wire import (
    CONNACK,
    CONNECT,
    DISCONNECT,
    P_MAX_PACKET,
    P_REASON,
    P_RECEIVE_MAX,
    P_SESSION_EXPIRY,
    PINGREQ,
    PINGRESP,
    PUBACK,
    PUBCOMP,
    PUBLISH,
    PUBREC,
    PUBREL,
    SUBACK,
    SUBSCRIBE,
    UNSUBACK,
    ProtocolError,
    Reader,
    encode_bin,
    encode_props,
    encode_str,
    encode_varint,
    next_packet,
    packet,
    prop,
    topic_matches,
    valid_filter,
    valid_topic_name,
    with_len,
)

if TYPE_CHECKING:
    import paho.mqtt.client as paho

log = logging.getLogger(__name__)

MessageHandler = Callable[[str, bytes], None]
Listener = Callable[[], None]

CONNECT_TIMEOUT = 10.0  # seconds for TCP + TLS + CONNACK
MAX_PACKET = 256 * 1024 * 1024  # the protocol's own limit on what we accept
_PUBACK_OK = 0x80  # MQTT 5 reason codes below this are success


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
    onto a paho client (the console's), as the site's configuration says. The password is never
    logged."""
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


def tls_context(cfg: Mqtt) -> ssl.SSLContext:
    """The TLS settings for `mqtts://`: the broker's certificate must chain to `ca_file` (or
    the system's CAs) and name the host; a client certificate when one is configured."""
    try:
        ctx = ssl.create_default_context(cafile=cfg.ca_file)
        if cfg.cert_file:
            ctx.load_cert_chain(cfg.cert_file, cfg.key_file)
    except (OSError, ssl.SSLError) as e:
        raise MqttConfigError(f"cannot load TLS files for the broker: {e}") from e
    return ctx


def _now_utc() -> datetime:
    return datetime.now(UTC)


class _Wire(asyncio.Protocol):
    """One TCP/TLS connection: splits the byte stream into packets for the link and joins what
    one loop turn writes after its first message into a single send."""

    def __init__(self, link: MqttLink) -> None:
        self.link = link
        self.transport: asyncio.Transport | None = None
        self.buf = bytearray()
        self.out: list[bytes] = []
        self.flush_due = False
        self.closed: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self.connack: asyncio.Future[tuple[int, list[tuple[int, Any]]]] = (
            asyncio.get_running_loop().create_future()
        )
        self.received_at = 0.0  # loop time of the last bytes from the broker
        self.reason: str | None = None  # why this side ended the connection, if it did

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport

    def connection_lost(self, exc: Exception | None) -> None:
        self.transport = None
        if not self.closed.done():
            self.closed.set_result(None)
        if not self.connack.done():
            self.connack.set_exception(ConnectionError(str(exc) if exc else "connection closed"))
            self.connack.exception()  # nobody may be waiting for it any more
        self.link._wire_lost(self, exc)  # noqa: SLF001 - the link owns its wire

    def write(self, data: bytes) -> None:
        if self.flush_due:
            self.out.append(data)  # joined with the rest of this loop turn's writes
            return
        # the first message of a loop turn (an alarm, usually alone) leaves at once; what
        # follows in the same turn (a storm's events) goes out in one send at its end
        self.flush_due = True
        asyncio.get_running_loop().call_soon(self.flush)
        if self.transport is not None and not self.transport.is_closing():
            self.transport.write(data)

    def flush(self) -> None:
        self.flush_due = False
        if self.out and self.transport is not None and not self.transport.is_closing():
            data = self.out[0] if len(self.out) == 1 else b"".join(self.out)
            self.transport.write(data)
        self.out.clear()

    def abort(self) -> None:
        if self.transport is not None:
            self.transport.abort()

    def data_received(self, data: bytes) -> None:
        self.received_at = asyncio.get_running_loop().time()
        buf = self.buf
        buf += data
        pos = 0
        link = self.link
        try:
            while True:
                got = next_packet(buf, pos, MAX_PACKET)
                if got is None:
                    break
                ptype, flags, body, pos = got
                if ptype == PUBACK:
                    # the hot path: one per event delivered
                    ok = len(body) == 2 or body[2] < _PUBACK_OK
                    link._acked((body[0] << 8) | body[1], ok)  # noqa: SLF001
                else:
                    link._packet(self, ptype, flags, body)  # noqa: SLF001
        except (ProtocolError, IndexError, struct.error, UnicodeDecodeError) as e:
            self.reason = f"malformed packet from the broker: {e}"
            log.warning("mqtt: %s; reconnecting", self.reason)
            del buf[:]
            self.abort()
            return
        if pos:
            del buf[:pos]


class MqttLink:
    """One connection to the broker, owned by the daemon's asyncio loop.

    - `start()` returns at once; connecting (and every reconnect) happens in the background.
    - `publish()` returns a future resolved True on the broker's acknowledgement (PUBACK for
      QoS 1; "handed to the socket" for QoS 0) and False on refusal or when the connection drops
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
        self._task: asyncio.Task[None] | None = None
        self._wire: _Wire | None = None
        self._pending: dict[int, Callable[[bool], None]] = {}  # mid -> told of its PUBACK
        self._waiting: deque[tuple[int, bytes]] = deque()  # over the broker's Receive Maximum
        self._next_mid = 0
        self._send_quota = 65535
        self._server_max_packet = 0
        self._qos2_in: set[int] = set()
        self._subs: dict[str, tuple[int, list[MessageHandler]]] = {}
        self._keepalive_timer: asyncio.TimerHandle | None = None
        self._ping_sent_at: float | None = None
        self.connect_listeners: list[Listener] = []
        self.disconnect_listeners: list[Listener] = []
        self.connects = 0
        self.last_error: str | None = None

        addr = BrokerAddress.parse(cfg.url)
        if addr.transport != "tcp":
            raise MqttConfigError(
                f"broker URL {cfg.url!r}: the controller connects over TCP or TLS; use"
                " mqtt://host:1883 or mqtts://host:8883 (websockets are for browsers)"
            )
        self.host = addr.host
        self.port = addr.port
        self.client_id = cfg.client_id or f"officeguard-{site_id}"
        self.v5 = cfg.protocol == "5"
        self.keepalive = max(5, int(cfg.keepalive.total_seconds()))
        self.ping_interval = float(self.keepalive)  # a PINGREQ when due; no answer in one: dead
        self._username = cfg.username
        if cfg.password_file is not None and cfg.username is None:
            self._username = ""
        password = read_secret(cfg.password_file)
        self._password = password.encode("utf-8") if password is not None else None
        self._ssl: ssl.SSLContext | None = None
        if addr.tls:
            self._ssl = tls_context(cfg)
        elif cfg.cert_file or cfg.ca_file:
            log.warning("mqtt: TLS files are configured but the URL is not mqtts://; ignored")

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
        self._closing = False
        self._task = self._loop.create_task(self._run(), name="mqtt-link")

    async def close(
        self, offline_payload: dict[str, Any] | None = None, timeout: float = 2.0
    ) -> None:
        """Say goodbye cleanly: a retained `{"online": false}` (or `offline_payload`) on the status
        topic, acknowledged if the broker answers within `timeout`, then disconnect."""
        if not self._started:
            return
        self._closing = True
        wire = self._wire
        if self._connected and wire is not None:
            payload = offline_payload if offline_payload is not None else {"online": False}
            fut = self.publish(self.status_topic, json.dumps(payload), qos=1, retain=True)
            try:
                await asyncio.wait_for(asyncio.shield(fut), timeout)
            except TimeoutError:
                log.warning("mqtt: broker did not acknowledge the offline status in time")
            if wire.transport is not None:
                # a normal DISCONNECT: the broker drops the last will
                wire.write(packet(DISCONNECT, 0, b"\x00\x00" if self.v5 else b""))
                wire.flush()
                wire.transport.close()
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        if self._wire is not None:
            self._wire.abort()
            self._wire = None
        self._started = False
        self._set_disconnected()

    async def _run(self) -> None:
        delay = self._reconnect_min
        while not self._closing:
            try:
                was_up = await self._session()
            except asyncio.CancelledError:
                raise
            except Exception:  # a bug must not end the link: log it and connect again
                log.exception("mqtt: the connection failed unexpectedly")
                if self._wire is not None:
                    self._wire.abort()
                    self._wire = None
                self._set_disconnected()
                was_up = False
            if self._closing:
                return
            if was_up:
                delay = self._reconnect_min
            # jitter each wait so a building's controllers do not reconnect in step
            wait = min(delay, self._reconnect_max) * random.uniform(0.5, 1.5)
            await asyncio.sleep(wait)
            delay = min(delay * 2, self._reconnect_max)

    async def _session(self) -> bool:
        """One connection, from TCP connect to its loss; True if the broker accepted it."""
        loop = asyncio.get_running_loop()
        wire: _Wire | None = None
        try:
            _, w = await asyncio.wait_for(
                loop.create_connection(
                    lambda: _Wire(self),
                    self.host,
                    self.port,
                    ssl=self._ssl,
                    server_hostname=self.host if self._ssl is not None else None,
                ),
                CONNECT_TIMEOUT,
            )
            self._wire = wire = w
            w.write(self._connect_packet())
            rc, props = await asyncio.wait_for(asyncio.shield(w.connack), CONNECT_TIMEOUT)
        except (OSError, TimeoutError, ssl.SSLError, ConnectionError) as e:
            self.last_error = f"cannot connect to {self.host}:{self.port}: {e or type(e).__name__}"
            log.warning("mqtt: %s", self.last_error)
            if wire is not None:
                wire.abort()
            self._wire = None
            return False
        if rc != 0:
            self.last_error = f"broker refused the connection: {_connack_text(rc, self.v5)}"
            log.warning("mqtt: %s", self.last_error)
            w.abort()
            self._wire = None
            return False
        self._send_quota = int(prop(props, P_RECEIVE_MAX, 65535)) or 65535
        self._server_max_packet = int(prop(props, P_MAX_PACKET, 0))
        self._qos2_in.clear()
        self._on_connected(w)
        await asyncio.shield(w.closed)
        return True

    def _connect_packet(self) -> bytes:
        will = json.dumps({"online": False}).encode()
        flags = 0x02  # clean session / clean start
        flags |= 0x04 | (1 << 3) | 0x20  # will, will QoS 1, will retained
        if self._username is not None:
            flags |= 0x80
        if self._password is not None:
            flags |= 0x40
        body = bytearray(encode_str("MQTT"))
        body += bytes([5 if self.v5 else 4, flags]) + struct.pack("!H", self.keepalive)
        if self.v5:
            body += with_len(encode_props([(P_SESSION_EXPIRY, 0)]))
        body += encode_str(self.client_id)
        if self.v5:
            body += b"\x00"  # will properties
        body += encode_str(self.status_topic) + encode_bin(will)
        if self._username is not None:
            body += encode_str(self._username)
        if self._password is not None:
            body += encode_bin(self._password)
        return packet(CONNECT, 0, bytes(body))

    def _on_connected(self, wire: _Wire) -> None:
        # the status first, then the subscriptions, before anything the listeners send
        self._connected = True
        self.connects += 1
        self.last_error = None
        log.info("mqtt: connected to %s:%d", self.host, self.port)
        self.publish(self.status_topic, self.status_payload(), qos=1, retain=True)
        for flt, (qos, _) in self._subs.items():
            self._send_subscribe(flt, qos)
        self._schedule_keepalive()
        for cb in list(self.connect_listeners):
            try:
                cb()
            except Exception:
                log.exception("mqtt: connect listener failed")

    def _wire_lost(self, wire: _Wire, exc: Exception | None) -> None:
        if wire is not self._wire:
            return
        self._wire = None
        if self._connected and not self._closing:
            self.last_error = wire.reason or f"disconnected: {exc or 'connection closed'}"
            log.warning("mqtt: %s", self.last_error)
        self._set_disconnected()

    def _set_disconnected(self) -> None:
        was = self._connected
        self._connected = False
        if self._keepalive_timer is not None:
            self._keepalive_timer.cancel()
            self._keepalive_timer = None
        self._ping_sent_at = None
        self._waiting.clear()
        pending, self._pending = self._pending, {}
        if was:  # first the listeners (the outbox starts a new round), then each message
            for cb in list(self.disconnect_listeners):
                try:
                    cb()
                except Exception:
                    log.exception("mqtt: disconnect listener failed")
        for done in pending.values():
            try:
                done(False)
            except Exception:
                log.exception("mqtt: publish callback failed")

    # ------------------------------------------------------------------ keepalive

    def _schedule_keepalive(self) -> None:
        loop = asyncio.get_running_loop()
        self._keepalive_timer = loop.call_later(self.ping_interval, self._keepalive_due)

    def _keepalive_due(self) -> None:
        self._keepalive_timer = None
        wire = self._wire
        if wire is None or not self._connected:
            return
        sent = self._ping_sent_at
        if sent is not None and wire.received_at < sent:
            # a whole keepalive without a word from the broker: the connection is dead
            wire.reason = f"no answer from the broker for {self.ping_interval:g} s"
            log.warning("mqtt: %s; reconnecting", wire.reason)
            wire.abort()
            return
        self._ping_sent_at = asyncio.get_running_loop().time()
        wire.write(packet(PINGREQ, 0, b""))
        self._schedule_keepalive()

    # ------------------------------------------------------------------ publish / subscribe

    def publish(
        self, topic: str, payload: str | bytes, qos: int = 1, retain: bool = False
    ) -> asyncio.Future[bool]:
        """Send one message (QoS 0 or 1); the future says whether the broker took it. Call
        from the asyncio loop."""
        loop = self._loop or asyncio.get_running_loop()
        fut: asyncio.Future[bool] = loop.create_future()

        def settle(ok: bool) -> None:
            if not fut.done():
                fut.set_result(ok)

        if not self.send(topic, payload, qos, retain, settle):
            fut.set_result(False)
        return fut

    def send(
        self,
        topic: str,
        payload: str | bytes,
        qos: int,
        retain: bool,
        done: Callable[[bool], None],
    ) -> bool:
        """publish() without a future, for the outbox's stream of events: False when the
        message is refused at once (then `done` is never called); otherwise `done(ok)` is
        called exactly once, on the loop: True on the broker's PUBACK (QoS 0: at once), False
        on a refusal or when the connection drops first."""
        wire = self._wire
        if not self._connected or wire is None:
            return False
        if not valid_topic_name(topic) or "\x00" in topic or qos not in (0, 1):
            log.warning("mqtt: refused to publish on %r (qos %r)", topic, qos)
            return False
        data = payload.encode("utf-8") if isinstance(payload, str) else bytes(payload)
        t = topic.encode("utf-8")
        if len(t) > 65535:
            log.warning("mqtt: refused to publish on a topic of %d bytes", len(t))
            return False
        head = len(t).to_bytes(2, "big") + t
        if qos == 0:
            body = head + (b"\x00" if self.v5 else b"") + data
            pkt = bytes([0x30 | retain]) + encode_varint(len(body)) + body
            if self._too_big(pkt):
                return False
            wire.write(pkt)
            done(True)
            return True
        mid = self._new_mid()
        if mid == 0:
            log.warning("mqtt: 65,535 messages in flight; refused one more")
            return False
        body = head + mid.to_bytes(2, "big") + (b"\x00" if self.v5 else b"") + data
        pkt = bytes([0x32 | retain]) + encode_varint(len(body)) + body
        if self._too_big(pkt):
            return False
        self._pending[mid] = done
        if self._waiting or len(self._pending) > self._send_quota:
            self._waiting.append((mid, pkt))  # over the broker's Receive Maximum: wait a turn
        else:
            wire.write(pkt)
        return True

    def _too_big(self, pkt: bytes) -> bool:
        if self._server_max_packet and len(pkt) > self._server_max_packet:
            log.warning("mqtt: a message of %d bytes is over the broker's limit", len(pkt))
            return True
        return False

    def _new_mid(self) -> int:
        if len(self._pending) >= 65535:
            return 0
        mid = self._next_mid
        while True:
            mid = mid % 65535 + 1
            if mid not in self._pending:
                self._next_mid = mid
                return mid

    def _acked(self, mid: int, ok: bool) -> None:
        done = self._pending.pop(mid, None)
        if done is not None:
            try:
                done(ok)
            except Exception:
                log.exception("mqtt: publish callback failed")
        if self._waiting:
            self._send_waiting()

    def _send_waiting(self) -> None:
        wire = self._wire
        quota = self._send_quota
        inflight = len(self._pending) - len(self._waiting)
        while self._waiting and inflight < quota and wire is not None:
            mid, pkt = self._waiting.popleft()
            if mid in self._pending:
                wire.write(pkt)
                inflight += 1

    def subscribe(self, topic_filter: str, handler: MessageHandler, qos: int = 1) -> None:
        """Call `handler(topic, payload)` on the asyncio loop for each message matching the filter."""
        if not valid_filter(topic_filter):
            raise ValueError(f"bad topic filter {topic_filter!r}")
        entry = self._subs.get(topic_filter)
        if entry is None:
            self._subs[topic_filter] = (qos, [handler])
            if self._connected:
                self._send_subscribe(topic_filter, qos)
        else:
            entry[1].append(handler)

    def _send_subscribe(self, topic_filter: str, qos: int) -> None:
        wire = self._wire
        if wire is None:
            return
        mid = self._new_mid() or 1
        body = mid.to_bytes(2, "big") + (b"\x00" if self.v5 else b"")
        body += encode_str(topic_filter) + bytes([qos])
        wire.write(packet(SUBSCRIBE, 0x02, body))

    def status_payload(self) -> str:
        return json.dumps(
            {"online": True, "version": self._version, "ts": self._now().isoformat()},
            separators=(",", ":"),
        )

    # ------------------------------------------------------------------ packets from the broker

    def _packet(self, wire: _Wire, ptype: int, flags: int, body: bytes) -> None:
        if ptype == PUBLISH:
            self._on_publish(wire, flags, body)
        elif ptype == CONNACK:
            r = Reader(body)
            r.byte()  # session present
            rc = r.byte()
            props = r.properties() if self.v5 and r.left() else []
            if not wire.connack.done():
                wire.connack.set_result((rc, props))
        elif ptype == PINGRESP:
            self._ping_sent_at = None
        elif ptype == PUBREL:
            mid = int.from_bytes(body[:2], "big")
            self._qos2_in.discard(mid)
            wire.write(packet(PUBCOMP, 0, body[:2]))
        elif ptype == SUBACK:
            r = Reader(body)
            r.u16()
            if self.v5:
                r.properties()
            codes = r.take(r.left())
            if any(c >= 0x80 for c in codes):
                log.warning("mqtt: the broker refused a subscription (code 0x%02x)", codes[0])
        elif ptype in (UNSUBACK, PUBREC, PUBCOMP):
            pass  # this link never unsubscribes or publishes QoS 2
        elif ptype == DISCONNECT:
            r = Reader(body)
            rc = r.byte() if r.left() else 0
            props = r.properties() if r.left() else []
            why = prop(props, P_REASON) or f"reason 0x{rc:02x}"
            wire.reason = f"the broker closed the connection: {why}"
            wire.abort()
        else:
            raise ProtocolError(0x82, f"unexpected packet type {ptype}")

    def _on_publish(self, wire: _Wire, flags: int, body: bytes) -> None:
        qos = (flags >> 1) & 3
        r = Reader(body)
        topic = r.string()
        mid = r.u16() if qos else 0
        if self.v5:
            r.properties()
        payload = body[r.pos :]
        if qos == 1:
            wire.write(packet(PUBACK, 0, mid.to_bytes(2, "big")))
        elif qos == 2:
            wire.write(packet(PUBREC, 0, mid.to_bytes(2, "big")))
            if mid in self._qos2_in:
                return  # the same message again before PUBREL: already delivered
            self._qos2_in.add(mid)
        self._handle_message(topic, payload)

    def _handle_message(self, topic: str, payload: bytes) -> None:
        for flt, (_, handlers) in list(self._subs.items()):
            if topic_matches(flt, topic):
                for h in list(handlers):
                    try:
                        h(topic, payload)
                    except Exception:
                        log.exception("mqtt: handler for %r failed", flt)


_CONNACK_311 = {
    1: "unacceptable protocol version",
    2: "client identifier rejected",
    3: "server unavailable",
    4: "bad user name or password",
    5: "not authorized",
}
_CONNACK_5 = {
    0x80: "unspecified error",
    0x84: "unsupported protocol version",
    0x85: "client identifier not valid",
    0x86: "bad user name or password",
    0x87: "not authorized",
    0x88: "server unavailable",
    0x89: "server busy",
    0x8A: "banned",
    0x95: "packet too large",
    0x97: "quota exceeded",
}


def _connack_text(rc: int, v5: bool) -> str:
    table = _CONNACK_5 if v5 else _CONNACK_311
    return f"{table.get(rc, 'refused')} (code {rc})"


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
