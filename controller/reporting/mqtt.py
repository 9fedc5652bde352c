"""The controller's link to the central MQTT broker (the security office's server).

It keeps one connection open, reconnects by itself after a network or broker outage (waiting a
little longer each time, up to a cap, with some randomness so that a whole building does not
reconnect in the same second), and tells the office whether this controller is online: a retained
`<prefix>/<site>/status` message says `{"online": true, ...}` while connected, and the broker itself
publishes `{"online": false}` (the "last will") if the controller dies or loses its network.

The protocol is paho-mqtt 2's, driven by the daemon's asyncio loop through paho's external-loop
interface: the loop watches paho's socket (`add_reader`, and `add_writer` only while the kernel's
buffer is full), a timer calls `loop_misc()` (keepalive), and what one loop turn publishes is
written at the end of that turn in one corked burst. No network thread runs beside the loop,
except that paho's blocking connect (name lookup, TCP, TLS handshake, bounded by
CONNECT_TIMEOUT) runs in a worker thread, so that the alarm loop never waits on it.

What paho leaves to us, done here: TCP_NODELAY (Nagle plus delayed ACK cost ~40 ms a hop); no
in-flight cap in paho (it scans every message in flight on each PUBACK), the broker's Receive
Maximum is honoured here instead and the outbox's window bounds the rest; the broker's Maximum
Packet Size (a message over it is refused before it is sent, with its reason); a PUBACK with a
failure reason code is a refusal, not a delivery; paho keeps unacknowledged messages to re-send
them after a reconnect, but the journal's outbox re-sends them itself, so they are dropped; and
a connection that has messages in flight and hears no PUBACK for ACK_TIMEOUT is dropped and
made again. paho honours the broker's Server Keep Alive (MQTT 5) from version 2.2 on; 2.1 did
not, and a broker with a lower `max_keepalive` then dropped the link and published its will.

Network timing (connect timeout, keepalive, PUBACK watchdog, reconnect backoff) follows real
time, as the network does; nothing in the alarm logic waits on it.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import random
import socket
import ssl
import threading
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Literal, Protocol
from urllib.parse import urlsplit

import paho.mqtt.client as paho
from paho.mqtt.enums import CallbackAPIVersion, MQTTErrorCode
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties
from paho.mqtt.reasoncodes import ReasonCode

from controller import __version__
from controller.config import Mqtt
from controller.errors import OfficeGuardError

log = logging.getLogger(__name__)

MessageHandler = Callable[[str, bytes], None]
Listener = Callable[[], None]


class Done(Protocol):
    """Told once what became of a message: `ok`, or not; `refused` says why when the broker
    (or its limits) refused that very message, so that sending it again would not help."""

    def __call__(self, ok: bool, refused: str | None = None) -> None: ...


CONNECT_TIMEOUT = 10.0  # seconds for the TCP connect, the TLS handshake and then the CONNACK
ACK_TIMEOUT = 30.0  # seconds with messages in flight and no PUBACK: the connection is dead
MISC_INTERVAL = 1.0  # seconds between paho's loop_misc() calls (keepalive) and watchdog checks
# packets read in one go before the loop gets a turn: small, so that a flood of messages on a
# command topic never holds a pin edge (handed over by the input thread) for more than a few
# hundred microseconds; PUBACK bursts cost one more loop turn per batch, which is nothing
READ_BATCH = 64
# what the link announces in its CONNECT (MQTT 5): the broker drops, instead of sending, any
# message bigger than this (a command is a few hundred bytes), and holds back QoS 1 messages
# beyond this many unacknowledged ones, so a flood queues (and is shed) at the broker
MAX_INCOMING_PACKET = 64 * 1024
RECEIVE_MAXIMUM = 64
# "bulk" messages (command results) may hold at most this share of the broker's Receive
# Maximum, and at most BULK_INFLIGHT, in flight: the rest is kept for events and retained
# alarm state; at most BULK_WAITING wait for a slot, beyond which the oldest is given up
BULK_SHARE = 4
BULK_INFLIGHT = 32
BULK_WAITING = 256
MATCH_CACHE = 256  # topics whose matching filters are remembered
# PUBACK failures that say "not now" rather than "never": the message is sent again later
_TRANSIENT = (0x91, 0x97)  # packet identifier in use, quota exceeded


class MqttConfigError(OfficeGuardError, ValueError):
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
    """Username and password (from `password_file`) and TLS (`ca_file`, client certificate,
    the broker's certificate checked against the CA and the host name) onto a paho client, as
    the site's configuration says. The password is never logged."""
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


def connect_error_text(e: BaseException) -> str:
    """Why a connection attempt failed, in words an installer can act on."""
    if isinstance(e, ConnectionRefusedError):
        return "connection refused (is the broker running, and is this its port?)"
    if isinstance(e, socket.gaierror):
        return f"unknown host ({e.strerror})"
    if isinstance(e, TimeoutError | socket.timeout):
        return "timed out"
    if isinstance(e, ssl.SSLCertVerificationError):
        return f"TLS failed: {e.verify_message or e}"
    if isinstance(e, ssl.SSLError):
        return f"TLS failed: {e.reason or e}"
    if isinstance(e, ssl.CertificateError):
        return f"TLS failed: {e}"
    return getattr(e, "strerror", None) or str(e) or type(e).__name__


class BufferedClient(paho.Client):
    """paho's client reading its socket 64 KiB at a time instead of a few bytes per call.

    paho reads each packet with three or more `recv()` calls (the type byte, the length bytes,
    the body); at thousands of messages a second those system calls are a large part of the
    cost. This keeps what one `recv()` returned and hands it out in the small pieces paho asks
    for; `would_block` says the socket had nothing more. It relies on paho's `_sock_recv`,
    present throughout paho-mqtt 2 (pinned < 3); `BUFFERED` says whether it is there.
    """

    _RECV = 65536

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._rbuf = b""
        self._rpos = 0
        self.would_block = False

    def reset_buffer(self) -> None:
        self._rbuf, self._rpos = b"", 0

    @property
    def buffered(self) -> int:
        return len(self._rbuf) - self._rpos

    def _sock_recv(self, bufsize: int) -> bytes:
        if self._rpos >= len(self._rbuf):
            try:
                data = super()._sock_recv(self._RECV)
            except BlockingIOError:
                self.would_block = True
                raise
            if not data:
                return data  # closed by the broker: paho handles it
            self._rbuf, self._rpos = data, 0
        pos = self._rpos
        chunk = self._rbuf[pos : pos + bufsize]
        self._rpos = pos + len(chunk)
        return chunk


BUFFERED = hasattr(paho.Client, "_sock_recv")


def _now_utc() -> datetime:
    return datetime.now(UTC)


def _varint_len(n: int) -> int:
    return 1 if n < 128 else 2 if n < 16384 else 3 if n < 2097152 else 4


class MqttLink:
    """One connection to the broker, owned by the daemon's asyncio loop.

    - `start()` returns at once; connecting (and every reconnect) happens in the background.
    - `publish()` returns a future resolved True on the broker's acknowledgement (PUBACK for
      QoS 1; "handed to paho" for QoS 0) and False on refusal or when the connection drops
      first. It never raises for network reasons and never blocks.
    - `send()` is publish() with a callback instead of a future, for the outbox's stream.
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
        ack_timeout: float = ACK_TIMEOUT,
        status_topic: str | None = None,
    ) -> None:
        self.cfg = cfg
        self.site_id = site_id
        self.prefix = f"{cfg.topic_prefix}/{site_id}"
        # a second link of the same site (the cameras') keeps its own status and will
        self.status_topic = status_topic or f"{self.prefix}/status"
        self._loop = loop
        self._loop_thread = 0
        self._now = now
        self._version = version
        self._reconnect_min = reconnect_min
        self._reconnect_max = reconnect_max
        self.ack_timeout = ack_timeout
        self._connected = False
        self._told_up = False  # the connect listeners ran and the disconnect ones not yet
        self._closing = False
        self._started = False
        self._task: asyncio.Task[None] | None = None
        self._pending: dict[int, Done] = {}  # mid -> told of its PUBACK
        self._waiting: deque[tuple[str, bytes, bool, Done]] = deque()  # over Receive Maximum
        self._bulk_waiting: deque[tuple[str, bytes, bool, Done]] = deque()  # ... bulk ones
        self._bulk_pending: set[int] = set()  # mids of bulk messages in flight
        self.bulk_dropped = 0  # bulk messages given up because too many were waiting
        self._ack_heard = 0.0  # loop time of the last PUBACK (or of the first message in flight)
        self._send_quota = 65535
        self._server_max_packet = 0
        self._subs: dict[str, tuple[int, list[MessageHandler]]] = {}
        self._live_only: set[str] = set()  # filters whose retained messages are ignored
        self._match_cache: dict[str, tuple[str, ...]] = {}  # topic -> the filters it matches
        self._paused: set[str] = set()  # filters not subscribed at the broker for now
        self._misc_timer: asyncio.TimerHandle | None = None
        self._flush_due = False
        self._flushing = False
        self._reader: Any = None  # the socket the loop watches for reading, while it does
        self._writer: Any = None  # ... for writing, while the kernel's buffer is full
        self._connack: asyncio.Future[ReasonCode | str] | None = None
        self._ended: asyncio.Future[None] | None = None
        self._opening: asyncio.Future[None] | None = None  # the connect worker, while it runs
        self._abort_reason: str | None = None  # why this side dropped the connection
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
        self.requested_keepalive = max(5, int(cfg.keepalive.total_seconds()))
        self.keepalive = self.requested_keepalive  # the broker's Server Keep Alive once connected

        cls = BufferedClient if BUFFERED else paho.Client
        c = cls(
            CallbackAPIVersion.VERSION2,
            client_id=self.client_id,
            protocol=paho.MQTTv5 if self.v5 else paho.MQTTv311,
            clean_session=None if self.v5 else True,
            reconnect_on_failure=False,  # the link reconnects itself, and never downgrades
        )
        secure_client(c, cfg, addr)
        c.connect_timeout = CONNECT_TIMEOUT
        c.will_set(self.status_topic, json.dumps({"online": False}), qos=1, retain=True)
        c.max_inflight_messages_set(0)
        c.max_queued_messages_set(0)
        # an exception in a callback must not leave paho half-way through a packet: every
        # callback here catches and logs its own
        c.suppress_exceptions = True
        c.on_connect = self._on_connect
        c.on_disconnect = self._on_disconnect
        c.on_publish = self._on_publish
        c.on_message = self._on_message
        c.on_subscribe = self._on_subscribe
        c.on_socket_open = self._on_socket_open
        c.on_socket_close = self._on_socket_close
        c.on_socket_register_write = self._on_want_write
        c.on_socket_unregister_write = _noop
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
        self._loop_thread = threading.get_ident()
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
        if self._connected:
            payload = offline_payload if offline_payload is not None else {"online": False}
            fut = self.publish(self.status_topic, json.dumps(payload), qos=1, retain=True)
            try:
                await asyncio.wait_for(asyncio.shield(fut), timeout)
            except TimeoutError:
                log.warning("mqtt: broker did not acknowledge the offline status in time")
            if self._client.socket() is not None:
                # a normal DISCONNECT: the broker drops the last will
                self._client.disconnect()
                self._flush()
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        if self._opening is None:  # else the worker's socket is closed when it is done
            self._drop_socket()
        self._started = False
        self._lost("closed")
        self._settle_lost()

    async def _run(self) -> None:
        delay = self._reconnect_min
        while not self._closing:
            try:
                was_up = await self._session()
            except asyncio.CancelledError:
                raise
            except Exception:  # a bug must not end the link: log it and connect again
                log.exception("mqtt: the connection failed unexpectedly")
                self._drop_socket()
                self._lost("internal error")
                self._settle_lost()
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
        self._connack = loop.create_future()
        self._ended = loop.create_future()
        self._abort_reason = None
        self._drop_socket()  # paho's connect closes a left-over socket: not from the thread
        where = f"{self.host}:{self.port}"
        self._opening = opening = loop.run_in_executor(None, self._open)
        try:
            await asyncio.shield(opening)
        except asyncio.CancelledError:
            # closing while connecting: the socket the worker opens is closed when it is done
            opening.add_done_callback(self._opened_too_late)
            raise
        except (OSError, ssl.SSLError, ssl.CertificateError, ValueError) as e:
            self._opening = None
            self.last_error = f"cannot connect to {where}: {connect_error_text(e)}"
            log.warning("mqtt: %s", self.last_error)
            self._drop_socket()
            return False
        self._opening = None
        sock = self._client.socket()
        if sock is None:
            self.last_error = f"cannot connect to {where}: the connection closed at once"
            log.warning("mqtt: %s", self.last_error)
            return False
        self._reader = sock
        loop.add_reader(sock, self._read)
        self._schedule_misc()
        if self._client.want_write():
            self._want_write_here()
        try:
            rc = await asyncio.wait_for(asyncio.shield(self._connack), CONNECT_TIMEOUT)
        except TimeoutError:
            self.last_error = (
                f"cannot connect to {where}: no answer to CONNECT within {CONNECT_TIMEOUT:g} s"
            )
            log.warning("mqtt: %s", self.last_error)
            self._abort("no CONNACK")
            await self._wait_ended()
            return False
        if isinstance(rc, str):
            self.last_error = f"cannot connect to {where}: {rc}"
            log.warning("mqtt: %s", self.last_error)
            self._abort(rc)
            await self._wait_ended()
            return False
        if rc.is_failure:
            self.last_error = f"broker refused the connection: {self._connack_text(rc)}"
            log.warning("mqtt: %s", self.last_error)
            self._abort("refused")
            await self._wait_ended()
            return False
        await self._wait_ended()
        return True

    async def _wait_ended(self) -> None:
        """Until the connection's loss is settled (at once if its socket is gone already)."""
        assert self._ended is not None
        if self._client.socket() is None and not self._connected:
            self._settle_lost()
        await asyncio.shield(self._ended)

    def _opened_too_late(self, opening: asyncio.Future[None]) -> None:
        self._opening = None
        if not opening.cancelled():
            opening.exception()  # a failure then is of no interest any more
        if not self._started:
            self._drop_socket()

    def _open(self) -> None:
        """In a worker thread: name lookup, TCP, TLS handshake and the CONNECT packet (paho's
        connect blocks for all of it). The loop touches nothing of the client meanwhile."""
        props = None
        if self.v5:
            props = Properties(PacketTypes.CONNECT)  # type: ignore[no-untyped-call]
            props.SessionExpiryInterval = 0
            props.MaximumPacketSize = MAX_INCOMING_PACKET
            props.ReceiveMaximum = RECEIVE_MAXIMUM
        self._client.connect(
            self.host,
            self.port,
            keepalive=self.requested_keepalive,
            clean_start=True if self.v5 else paho.MQTT_CLEAN_START_FIRST_ONLY,
            properties=props,
        )

    def _connack_text(self, rc: ReasonCode) -> str:
        text = f"{rc} (code {rc.value})"
        if not self.v5 and rc.value == 2:
            # what Mosquitto answers a 3.1.1 client whose keepalive is over its max_keepalive
            text += (
                f"; a broker whose max_keepalive is below {self.requested_keepalive} s refuses"
                " MQTT 3.1.1 clients this way: lower mqtt.keepalive or use MQTT 5"
            )
        return text

    # ------------------------------------------------------------------ the socket on the loop

    def _on_socket_open(self, client: paho.Client, userdata: Any, sock: Any) -> None:
        # in the connect worker: paho does not set it, and Nagle plus the broker's delayed ACK
        # hold every small message ~40 ms
        with contextlib.suppress(OSError, AttributeError):
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        if isinstance(client, BufferedClient):
            client.reset_buffer()

    def _on_socket_close(self, client: paho.Client, userdata: Any, sock: Any) -> None:
        # paho is about to close the socket: the loop must stop watching it first
        loop = self._loop
        if loop is not None and not loop.is_closed():
            if self._reader is sock:
                loop.remove_reader(sock)
            if self._writer is sock:
                loop.remove_writer(sock)
        if self._reader is sock:
            self._reader = None
        if self._writer is sock:
            self._writer = None
        if isinstance(client, BufferedClient):
            client.reset_buffer()

    def _on_want_write(self, client: paho.Client, userdata: Any, sock: Any) -> None:
        """paho has queued a packet: write it, with the rest of this loop turn's, at its end."""
        if threading.get_ident() == self._loop_thread:
            self._want_write_here()
        elif self._loop is not None and not self._loop.is_closed():
            # the CONNECT, queued in the connect worker: the loop writes it
            self._loop.call_soon_threadsafe(self._want_write_here)

    def _want_write_here(self) -> None:
        if self._flush_due or self._flushing or self._writer is not None:
            return
        self._flush_due = True
        assert self._loop is not None
        self._loop.call_soon(self._flush)
        # the first message of a loop turn (an alarm, usually alone) leaves at once; what
        # follows in the same turn (the retained state, a storm's events) waits for the flush.
        # Not from inside one of paho's callbacks: paho's own rule for writing at once.
        c = self._client
        sock = c.socket()
        if sock is None or sock is not self._reader:
            return
        if not c._in_callback_mutex.acquire(False):
            return
        c._in_callback_mutex.release()
        self._flushing = True
        try:
            c.loop_write()
        finally:
            self._flushing = False

    def _flush(self) -> None:
        """Write what paho has queued, corked so that a turn's messages leave in few segments;
        if the kernel's buffer fills, wait until the socket is writable again."""
        self._flush_due = False
        c = self._client
        sock = c.socket()
        if sock is None or sock is not self._reader or not c.want_write():
            return
        self._flushing = True
        raw = sock if isinstance(sock, socket.socket) and hasattr(socket, "TCP_CORK") else None
        try:
            if raw is not None:
                _set_cork(raw, True)
            c.loop_write()
        finally:
            self._flushing = False
            if raw is not None and raw.fileno() != -1:
                _set_cork(raw, False)
        sock = c.socket()
        if sock is None:
            return
        loop = self._loop
        assert loop is not None
        if c.want_write():
            if self._writer is None:
                self._writer = sock
                loop.add_writer(sock, self._flush)
        elif self._writer is not None:
            loop.remove_writer(self._writer)
            self._writer = None

    def _read(self) -> None:
        """The socket is readable: let paho take every packet already here (PUBACKs come in
        bursts), then write what it queued in answer."""
        c = self._client
        for _ in range(READ_BATCH):
            if isinstance(c, BufferedClient):
                c.would_block = False
            if c.loop_read() != MQTTErrorCode.MQTT_ERR_SUCCESS or c.socket() is None:
                return
            if not isinstance(c, BufferedClient) or (c.would_block and not c.buffered):
                return
        # more is waiting (inside our buffer, where the selector cannot see it): next turn
        assert self._loop is not None
        self._loop.call_soon(self._read)

    def _schedule_misc(self) -> None:
        assert self._loop is not None
        self._misc_timer = self._loop.call_later(MISC_INTERVAL, self._misc)

    def _misc(self) -> None:
        """Every second: paho's keepalive (PINGREQ, and a silent broker dropped) and the
        PUBACK watchdog."""
        self._misc_timer = None
        c = self._client
        if c.socket() is None:
            return
        c.loop_misc()
        if c.socket() is None:
            return
        if self._connected and self._pending:
            assert self._loop is not None
            quiet = self._loop.time() - self._ack_heard
            if quiet >= self.ack_timeout:
                self._abort(
                    f"no PUBACK from the broker for {quiet:.0f} s with"
                    f" {len(self._pending)} message(s) in flight"
                )
                return
        self._schedule_misc()

    def _abort(self, why: str) -> None:
        """Drop the connection from this side (paho then reports it as lost)."""
        self._abort_reason = why
        c = self._client
        sock = c.socket()
        if sock is None:
            return
        if self._connected:
            log.warning("mqtt: %s; reconnecting", why)
        if isinstance(sock, socket.socket):
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)
        if isinstance(c, BufferedClient):
            c.reset_buffer()
        c.loop_read()  # paho reads the end of the stream, closes and calls on_disconnect
        if c.socket() is not None:  # it did not: close it all the same
            self._drop_socket()
            self._lost(why)
            assert self._loop is not None
            self._loop.call_soon(self._settle_lost)

    def _drop_socket(self) -> None:
        """Close paho's socket, if it has one, without going through the protocol."""
        if self._client.socket() is not None:
            # paho's own close (it has no public one that skips DISCONNECT): it tells
            # _on_socket_close first, so the loop stops watching the socket
            self._client._sock_close()

    # ------------------------------------------------------------------ paho's callbacks

    def _on_connect(
        self,
        client: paho.Client,
        userdata: Any,
        flags: Any,
        reason_code: ReasonCode,
        properties: Properties | None,
    ) -> None:
        if self._connack is not None and not self._connack.done():
            self._connack.set_result(reason_code)
        if reason_code.is_failure:
            return
        try:
            self._connected_now(client, properties)
        except Exception:
            log.exception("mqtt: handling the CONNACK failed")

    def _connected_now(self, client: paho.Client, properties: Properties | None) -> None:
        quota = getattr(properties, "ReceiveMaximum", None) if properties else None
        self._send_quota = int(quota) if quota else 65535
        self._server_max_packet = int(getattr(properties, "MaximumPacketSize", 0) or 0)
        server_keepalive = getattr(properties, "ServerKeepAlive", None) if properties else None
        # paho >= 2.2 uses the Server Keep Alive itself; pyproject pins it
        self.keepalive = int(server_keepalive) if server_keepalive is not None else (
            self.requested_keepalive
        )
        self._connected = True
        self.connects += 1
        self.last_error = None
        log.info(
            "mqtt: connected to %s:%d (MQTT %s, keepalive %d s)",
            self.host,
            self.port,
            "5" if self.v5 else "3.1.1",
            self.keepalive,
        )
        # the status first, then the subscriptions, before anything the listeners send
        self.publish(self.status_topic, self.status_payload(), qos=1, retain=True)
        for flt, (qos, _) in self._subs.items():
            if flt not in self._paused:
                client.subscribe(flt, qos)
        self._told_up = True
        for cb in list(self.connect_listeners):
            try:
                cb()
            except Exception:
                log.exception("mqtt: connect listener failed")

    def _on_disconnect(
        self,
        client: paho.Client,
        userdata: Any,
        flags: Any,
        reason_code: ReasonCode,
        properties: Properties | None,
    ) -> None:
        why = self._abort_reason
        if why is None:
            why = str(reason_code)
            text = getattr(properties, "ReasonString", None) if properties else None
            if getattr(flags, "is_disconnect_packet_from_server", False):
                why = f"the broker closed the connection: {text or why}"
            elif reason_code.value == 0x80:  # what paho calls a socket closed or reset
                why = "connection lost"
        self._lost(why)
        # paho may be in the middle of its own bookkeeping: the rest waits for the next turn
        if self._loop is not None and not self._loop.is_closed():
            self._loop.call_soon(self._settle_lost)

    def _lost(self, why: str) -> None:
        """The connection is gone: nothing more is sent on it."""
        was = self._connected
        self._connected = False
        if self._misc_timer is not None:
            self._misc_timer.cancel()
            self._misc_timer = None
        if was and not self._closing:
            self.last_error = f"disconnected: {why}"
            log.warning("mqtt: %s", self.last_error)
        if self._connack is not None and not self._connack.done():
            self._connack.set_result(why)

    def _settle_lost(self) -> None:
        """After a loss: paho's copies dropped (the outbox re-sends from the journal), the
        listeners told (the outbox starts a new round), then every message still waiting."""
        if self._connected:
            return  # connected again meanwhile: nothing of the old connection is left
        self._client.drop_out_messages()
        self._waiting.clear()
        self._bulk_waiting.clear()
        self._bulk_pending.clear()
        pending, self._pending = self._pending, {}
        if self._told_up:
            self._told_up = False
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
        if self._ended is not None and not self._ended.done():
            self._ended.set_result(None)

    def _on_publish(
        self,
        client: paho.Client,
        userdata: Any,
        mid: int,
        reason_code: ReasonCode,
        properties: Properties | None,
    ) -> None:
        done = self._pending.pop(mid, None)
        if done is None:
            return  # QoS 0 (already told), or from a connection given up
        assert self._loop is not None
        self._ack_heard = self._loop.time()
        self._bulk_pending.discard(mid)
        if self._waiting or self._bulk_waiting:
            self._send_waiting()
        try:
            if not reason_code.is_failure:
                done(True)
            elif reason_code.value in _TRANSIENT:
                log.warning("mqtt: the broker did not take a message now: %s", reason_code)
                done(False)
            else:
                why = f"the broker refused it: {reason_code} (code 0x{reason_code.value:02x})"
                log.warning("mqtt: a message was refused: %s", why)
                done(False, why)
        except Exception:
            log.exception("mqtt: publish callback failed")

    def _on_subscribe(
        self,
        client: paho.Client,
        userdata: Any,
        mid: int,
        reason_codes: list[ReasonCode],
        properties: Properties | None,
    ) -> None:
        for rc in reason_codes:
            if rc.is_failure:
                log.warning("mqtt: the broker refused a subscription: %s", rc)

    def _on_message(self, client: paho.Client, userdata: Any, msg: paho.MQTTMessage) -> None:
        try:
            topic = msg.topic
        except UnicodeDecodeError:
            log.warning("mqtt: ignored a message whose topic is not UTF-8")
            return
        payload = bytes(msg.payload)
        for flt in self._matching(topic):
            entry = self._subs.get(flt)
            if entry is not None and flt not in self._paused:
                if msg.retain and flt in self._live_only:
                    continue  # e.g. a command someone left retained: never replayed
                for h in list(entry[1]):
                    try:
                        h(topic, payload)
                    except Exception:
                        log.exception("mqtt: handler for %r failed", flt)

    def _matching(self, topic: str) -> tuple[str, ...]:
        """The subscribed filters a topic matches, remembered per topic: a flood on one topic
        costs a dict lookup per message, not a topic match per filter (paho builds a matcher
        on every call)."""
        found = self._match_cache.get(topic)
        if found is None:
            found = tuple(f for f in self._subs if paho.topic_matches_sub(f, topic))
            if len(self._match_cache) >= MATCH_CACHE:
                self._match_cache.clear()  # made-up topics cannot make it grow
            self._match_cache[topic] = found
        return found

    # ------------------------------------------------------------------ publish / subscribe

    def publish(
        self,
        topic: str,
        payload: str | bytes,
        qos: int = 1,
        retain: bool = False,
        *,
        bulk: bool = False,
    ) -> asyncio.Future[bool]:
        """Send one message (QoS 0 or 1); the future says whether the broker took it. Call
        from the asyncio loop. `bulk`: see send()."""
        loop = self._loop or asyncio.get_running_loop()
        fut: asyncio.Future[bool] = loop.create_future()

        def settle(ok: bool, refused: str | None = None) -> None:
            if not fut.done():
                fut.set_result(ok)

        if not self.send(topic, payload, qos, retain, settle, bulk=bulk):
            fut.set_result(False)
        return fut

    def send(
        self,
        topic: str,
        payload: str | bytes,
        qos: int,
        retain: bool,
        done: Done,
        *,
        bulk: bool = False,
    ) -> bool:
        """publish() without a future, for the outbox's stream of events: False when the
        message cannot be sent now (not connected, a bad topic; then `done` is never called);
        otherwise `done(ok)` is called exactly once, on the loop: True on the broker's PUBACK
        (QoS 0: at once), False when the connection drops first, and `done(False, why)` when
        the broker refuses that message (a failure reason code, or over its Maximum Packet
        Size), so that it is not sent again.

        `bulk` (command results): such messages hold at most a small share of the in-flight
        window (see BULK_SHARE), so that whatever arrives on the command topics, events and
        retained alarm state always find room; at most BULK_WAITING of them wait, and the
        oldest beyond that is given up (`done(False)`)."""
        if not self._connected:
            return False
        if qos not in (0, 1) or not topic or "+" in topic or "#" in topic or "\x00" in topic:
            log.warning("mqtt: refused to publish on %r (qos %r)", topic, qos)
            return False
        data = payload.encode("utf-8") if isinstance(payload, str) else bytes(payload)
        if self._server_max_packet:
            size = self._packet_size(topic, data, qos)
            if size > self._server_max_packet:
                why = (
                    f"{size} bytes, over the broker's Maximum Packet Size of"
                    f" {self._server_max_packet}"
                )
                log.warning("mqtt: a message on %s was not sent: %s", topic, why)
                assert self._loop is not None
                self._loop.call_soon(done, False, why)
                return True
        if qos == 1 and bulk:
            if self._bulk_waiting or not self._bulk_room():
                if len(self._bulk_waiting) >= BULK_WAITING:
                    self.bulk_dropped += 1
                    old = self._bulk_waiting.popleft()[3]
                    assert self._loop is not None
                    self._loop.call_soon(old, False)
                self._bulk_waiting.append((topic, data, retain, done))
                return True
            return self._hand_over(topic, data, qos, retain, done, bulk=True)
        if qos == 1 and (self._waiting or len(self._pending) >= self._send_quota):
            self._waiting.append((topic, data, retain, done))  # over Receive Maximum: wait
            return True
        return self._hand_over(topic, data, qos, retain, done)

    @property
    def bulk_limit(self) -> int:
        """How many bulk messages may be in flight at once."""
        return max(1, min(self._send_quota // BULK_SHARE, BULK_INFLIGHT))

    def _bulk_room(self) -> bool:
        return (
            len(self._bulk_pending) < self.bulk_limit
            and len(self._pending) < self._send_quota
            and not self._waiting
        )

    def _hand_over(
        self, topic: str, data: bytes, qos: int, retain: bool, done: Done, *, bulk: bool = False
    ) -> bool:
        try:
            info = self._client.publish(topic, data, qos=qos, retain=retain)
        except ValueError as e:
            log.warning("mqtt: refused to publish on %r: %s", topic, e)
            return False
        if info.rc != MQTTErrorCode.MQTT_ERR_SUCCESS:
            return False
        if qos == 0:
            done(True)
            return True
        if not self._pending:
            assert self._loop is not None
            self._ack_heard = self._loop.time()  # the watchdog counts from the first in flight
        self._pending[info.mid] = done
        if bulk:
            self._bulk_pending.add(info.mid)
        return True

    def _send_waiting(self) -> None:
        quota = self._send_quota
        while self._waiting and len(self._pending) < quota and self._connected:
            topic, data, retain, done = self._waiting.popleft()
            if not self._hand_over(topic, data, 1, retain, done):
                done(False)
        while self._bulk_waiting and self._connected and self._bulk_room():
            topic, data, retain, done = self._bulk_waiting.popleft()
            if not self._hand_over(topic, data, 1, retain, done, bulk=True):
                done(False)

    def _packet_size(self, topic: str, data: bytes, qos: int) -> int:
        """Bytes of the PUBLISH packet paho will write (no properties of ours)."""
        rest = 2 + len(topic.encode("utf-8")) + (2 if qos else 0) + len(data)
        if self.v5:
            rest += 1  # an empty property length
        return 1 + _varint_len(rest) + rest

    def subscribe(
        self,
        topic_filter: str,
        handler: MessageHandler,
        qos: int = 1,
        *,
        retained: bool = True,
    ) -> None:
        """Call `handler(topic, payload)` on the asyncio loop for each message matching the
        filter. `retained=False`: messages the broker delivers as retained are ignored (a
        command topic: a command left retained would otherwise run again at every start)."""
        if not _valid_filter(topic_filter):
            raise ValueError(f"bad topic filter {topic_filter!r}")
        if not retained:
            self._live_only.add(topic_filter)
        self._match_cache.clear()
        entry = self._subs.get(topic_filter)
        if entry is None:
            self._subs[topic_filter] = (qos, [handler])
            if self._connected:
                self._client.subscribe(topic_filter, qos)
        else:
            entry[1].append(handler)

    def pause(self, topic_filter: str) -> None:
        """Stop receiving a subscribed filter's messages (unsubscribed at the broker, so that a
        flood on it costs this side nothing); its handlers stay, for `resume()`."""
        if topic_filter in self._subs and topic_filter not in self._paused:
            self._paused.add(topic_filter)
            if self._connected:
                self._client.unsubscribe(topic_filter)

    def resume(self, topic_filter: str) -> None:
        """Receive a paused filter's messages again."""
        if topic_filter in self._paused:
            self._paused.discard(topic_filter)
            if self._connected:
                self._client.subscribe(topic_filter, self._subs[topic_filter][0])

    @property
    def paused(self) -> frozenset[str]:
        return frozenset(self._paused)

    def status_payload(self) -> str:
        return json.dumps(
            {"online": True, "version": self._version, "ts": self._now().isoformat()},
            separators=(",", ":"),
        )


def _valid_filter(flt: str) -> bool:
    """A topic filter MQTT allows: `#` only as a whole last level, `+` only as a whole level."""
    if not flt or "\x00" in flt:
        return False
    levels = flt.split("/")
    for i, level in enumerate(levels):
        if "#" in level and (level != "#" or i != len(levels) - 1):
            return False
        if "+" in level and level != "+":
            return False
    return True


def _noop(*args: Any) -> None:
    return None


def _set_cork(sock: socket.socket, on: bool) -> None:
    with contextlib.suppress(OSError):
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_CORK, 1 if on else 0)


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
