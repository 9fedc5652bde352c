"""A small embedded MQTT broker, so that `make demo` and the tests run where Mosquitto is absent.

Run it in the foreground with ``python -m controller.mini_broker [-p PORT] [--host 127.0.0.1]``
(it prints ``listening on HOST:PORT``; SIGTERM or SIGINT stop it with exit status 0), or start
whichever broker this machine has with :func:`start_local_broker` (Mosquitto when installed,
this one otherwise; ``OFFICEGUARD_BROKER=embedded`` forces this one, ``=mosquitto`` Mosquitto).

Why not an existing Python broker: the ones on PyPI (amqtt) speak MQTT 3.1.1 only, while the
daemon speaks MQTT 5 by default and the security-office console uses MQTT 5 shared
subscriptions. This broker is one asyncio protocol with no dependencies beyond the standard
library. It is meant for a demo on localhost, not for a building's central server.

What it does:

- MQTT 3.1.1 (protocol level 4) and MQTT 5 (level 5); other levels are refused with CONNACK
  "unacceptable protocol version". MQTT 5 properties are parsed; the ones a message carries
  (content type, response topic, correlation data, user properties, expiry...) are passed on to
  MQTT 5 subscribers, the rest are ignored (a Message Expiry Interval is passed on as it came, not
  counted down, and queued messages do not expire). CONNACK, PUBACK, SUBACK, UNSUBACK and
  DISCONNECT carry MQTT 5 reason codes.
- CONNECT/CONNACK with clean session (3.1.1) / clean start + session expiry (5). Sessions that
  ask to be kept (clean session 0, or a session expiry interval) keep their subscriptions and
  queue QoS 1 messages while the client is away, in memory; with ``--persist FILE`` they and the
  retained messages are also saved at a clean shutdown and loaded at start (like Mosquitto's
  ``persistence true``, used by the tests that restart the broker). Without ``--persist`` nothing
  survives a restart. A second connection with the same client id takes the session over.
- PUBLISH QoS 0, 1 and 2 from clients: QoS 1 is answered with PUBACK after the message has been
  handed to every matching session; QoS 2 is accepted with PUBREC/PUBREL/PUBCOMP and delivered
  exactly once (a re-sent PUBLISH with the same packet id before PUBREL is not routed again).
  Towards subscribers the broker grants at most QoS 1 (SUBACK says so): delivery QoS is
  min(publish QoS, granted QoS), so a QoS 2 publish reaches a QoS 2 subscriber at QoS 1.
- SUBSCRIBE/UNSUBSCRIBE with ``+`` and ``#`` wildcards (``$``-topics such as ``$SYS/...`` are not
  matched by a wildcard in the first level), MQTT 5 subscription options no-local,
  retain-as-published and retain handling, and shared subscriptions ``$share/<group>/<filter>``:
  each message goes to one member of the group, round robin over the connected members.
- Retained messages (an empty retained payload clears the topic), sent to new subscribers with
  the retain flag; live messages are forwarded with retain cleared unless the MQTT 5 subscriber
  asked for retain-as-published.
- Last will: published when the connection ends without a DISCONNECT (socket closed, keepalive
  exceeded by half again, malformed packet, session taken over) and on MQTT 5 DISCONNECT with
  reason 0x04; never after a normal DISCONNECT. The will delay interval is ignored (sent at once).
- PINGREQ/PINGRESP; a maximum packet size (``--max-packet-size``, default 1 MiB): a bigger packet
  closes that client's connection (MQTT 5: DISCONNECT 0x95 first); messages bigger than an MQTT 5
  client's own Maximum Packet Size are not sent to it.
- Topic aliases are not offered (Topic Alias Maximum is 0); a PUBLISH that uses one anyway gets
  DISCONNECT 0x94 "Topic Alias invalid". Enhanced authentication (an Authentication Method) is
  refused with CONNACK 0x8C. Usernames and passwords are accepted and ignored: this broker binds
  127.0.0.1 by default and has no access control, so do not expose it.
- A malformed packet closes only the connection that sent it; the broker logs why (never the
  payload) and keeps serving everyone else.

Throughput, measured with ``python -m tests.test_mini_broker 20000`` (QoS 1, 100-byte payloads,
one publisher to one QoS 1 subscriber, 20,000 messages, 3 runs each; Mosquitto 2.0.11 and this
broker in the same run, on a 2-core machine shared with other work, so the spread is wide):

- paho-mqtt 2 publisher (1000 in flight) and subscriber (in its own process): Mosquitto 1,150 to
  2,350 msgs/s, this broker 1,860 to 2,650 msgs/s. The paho subscriber is the limit with either
  broker; broker CPU per message was 26-28 us for Mosquitto and 25-30 us for this one.
- Pipelined raw-socket clients, so that the brokers are the limit: Mosquitto 9,600 to 12,200
  msgs/s, this broker 17,900 to 26,600 msgs/s (it joins everything one loop turn writes to a
  client into a single send, and the subscriber acknowledges a whole read at once).

Ample for the demo (one site, a handful of clients). It does not replace Mosquitto on a real
server: no TLS, no access control, state saved only at a clean shutdown, one process and core.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import contextlib
import json
import logging
import os
import shutil
import signal
import socket
import struct
import subprocess
import sys
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from controller.mqtt_wire import (
    _NOT_FORWARDED,
    AUTH,
    CONNACK,
    CONNECT,
    DISCONNECT,
    NEVER_EXPIRES,
    P_ASSIGNED_ID,
    P_AUTH_METHOD,
    P_MAX_PACKET,
    P_RECEIVE_MAX,
    P_SESSION_EXPIRY,
    P_TOPIC_ALIAS,
    PINGREQ,
    PROP_TYPES,
    PUBACK,
    PUBCOMP,
    PUBLISH,
    PUBREC,
    PUBREL,
    RC_BAD_AUTH_METHOD,
    RC_DISCONNECT_WITH_WILL,
    RC_KEEPALIVE_TIMEOUT,
    RC_MALFORMED,
    RC_NO_SUBSCRIPTION_EXISTED,
    RC_PROTOCOL_ERROR,
    RC_SESSION_TAKEN_OVER,
    RC_SUCCESS,
    RC_TOPIC_ALIAS_INVALID,
    RC_TOPIC_FILTER_INVALID,
    RC_TOPIC_NAME_INVALID,
    RC_UNSPECIFIED,
    SUBACK,
    SUBSCRIBE,
    UNSUBACK,
    UNSUBSCRIBE,
    ProtocolError,
    Reader,
    encode_props,
    encode_str,
    encode_varint,
    next_packet,
    packet,
    prop,
    split_shared,
    topic_matches,
    valid_filter,
    valid_topic_name,
    with_len,
)

log = logging.getLogger("officeguard.mini_broker")

DEFAULT_MAX_PACKET = 1024 * 1024
DEFAULT_MAX_INFLIGHT = 1000
DEFAULT_MAX_QUEUED = 100_000
CONNECT_TIMEOUT = 10.0  # seconds a new connection may take to send CONNECT
SLOW_CONSUMER_BYTES = 8 * 1024 * 1024  # QoS 0 to a client with this much unsent is dropped

# ---------------------------------------------------------------------------- broker state


@dataclass(slots=True)
class Message:
    topic: str
    payload: bytes
    qos: int
    retain: bool
    props: bytes = b""  # MQTT 5 properties to forward (encoded, without their length)
    topic_enc: bytes = b""

    def __post_init__(self) -> None:
        if not self.topic_enc:
            self.topic_enc = encode_str(self.topic)


@dataclass(slots=True)
class SubOpts:
    qos: int
    no_local: bool = False
    retain_as_published: bool = False
    retain_handling: int = 0


@dataclass
class Session:
    client_id: str
    expiry: int = 0  # seconds after disconnect; NEVER_EXPIRES = kept
    subs: dict[str, SubOpts] = field(default_factory=dict)
    shared: dict[tuple[str, str], SubOpts] = field(default_factory=dict)
    inflight: dict[int, tuple[Message, int, bool]] = field(default_factory=dict)
    queue: deque[tuple[Message, int, bool]] = field(default_factory=deque)
    qos2_in: set[int] = field(default_factory=set)
    conn: Connection | None = None
    next_pid: int = 1
    resend: int = 0  # the first `resend` queued messages were sent before: DUP
    disconnected_at: float | None = None
    dropped: int = 0

    def new_pid(self) -> int:
        for _ in range(65536):
            pid = self.next_pid
            self.next_pid = pid % 65535 + 1
            if pid not in self.inflight:
                return pid
        raise RuntimeError("no free packet id")


@dataclass
class ShareGroup:
    members: list[str] = field(default_factory=list)  # client ids, in joining order
    next: int = 0


class MiniBroker:
    """The broker's state and routing; `Connection` objects feed it parsed packets."""

    def __init__(
        self,
        *,
        max_packet_size: int = DEFAULT_MAX_PACKET,
        max_inflight: int = DEFAULT_MAX_INFLIGHT,
        max_queued: int = DEFAULT_MAX_QUEUED,
        persist: Path | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.max_packet_size = max_packet_size
        self.max_inflight = max_inflight
        self.max_queued = max_queued
        self.persist = persist
        self.clock = clock
        self.sessions: dict[str, Session] = {}
        self.retained: dict[str, Message] = {}
        self.subs: dict[str, dict[str, SubOpts]] = {}  # filter → client id → options
        self.shares: dict[tuple[str, str], ShareGroup] = {}  # (group, filter) → members
        self.conns: set[Connection] = set()
        self._match_cache: dict[str, tuple[list[str], list[tuple[str, str]]]] = {}
        self._server: asyncio.Server | None = None
        self._ticker: asyncio.TimerHandle | None = None
        self._assigned = 0
        self.stats = {"received": 0, "sent": 0, "dropped": 0, "bad_clients": 0}

    # -------------------------------------------------------------- server lifecycle

    async def start(self, host: str = "127.0.0.1", port: int = 1883) -> int:
        """Listen; returns the port actually bound (useful with port 0)."""
        if self.persist is not None:
            self.load(self.persist)
        loop = asyncio.get_running_loop()
        self._server = await loop.create_server(
            lambda: Connection(self), host, port, reuse_address=True
        )
        self._ticker = loop.call_later(0.5, self._tick)
        sock = self._server.sockets[0]
        return int(sock.getsockname()[1])

    async def stop(self) -> None:
        if self._ticker is not None:
            self._ticker.cancel()
            self._ticker = None
        if self._server is not None:
            self._server.close()
            for conn in list(self.conns):
                conn.drop(publish_will=False)
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self._server.wait_closed(), 2)
            self._server = None
        if self.persist is not None:
            self.save(self.persist)

    def _tick(self) -> None:
        try:
            self.tick()
        except Exception:  # keep ticking: a bug here must not stop keepalive enforcement
            log.exception("periodic check failed")
        loop = asyncio.get_running_loop()
        self._ticker = loop.call_later(0.5, self._tick)

    def tick(self) -> None:
        """Enforce keepalives and the CONNECT deadline, expire sessions (called twice a second)."""
        now = self.clock()
        for conn in list(self.conns):
            if conn.session is None:
                if now - conn.opened > CONNECT_TIMEOUT:
                    conn.drop(publish_will=False)
            elif conn.keepalive and now - conn.last_rx > 1.5 * conn.keepalive:
                log.info("client %s: keepalive exceeded", conn.session.client_id)
                conn.fail(ProtocolError(RC_KEEPALIVE_TIMEOUT, "keepalive timeout"))
        for cid, s in list(self.sessions.items()):
            if (
                s.conn is None
                and s.expiry != NEVER_EXPIRES
                and s.disconnected_at is not None
                and now - s.disconnected_at >= s.expiry
            ):
                self.end_session(cid)

    # -------------------------------------------------------------- sessions

    def assign_client_id(self) -> str:
        self._assigned += 1
        return f"mini-{os.getpid()}-{self._assigned}"

    def open_session(self, conn: Connection, client_id: str, clean: bool, expiry: int) -> bool:
        """Attach `conn` to a session; returns True if an existing session was resumed."""
        old = self.sessions.get(client_id)
        if old is not None and old.conn is not None:
            old.conn.fail(ProtocolError(RC_SESSION_TAKEN_OVER, "session taken over"))
            old = self.sessions.get(client_id)
        if old is not None and clean:
            self.end_session(client_id)
            old = None
        present = old is not None
        s = old or Session(client_id)
        s.expiry = expiry
        s.conn = conn
        s.disconnected_at = None
        self.sessions[client_id] = s
        conn.session = s
        return present

    def detach(self, s: Session) -> None:
        s.conn = None
        if s.expiry == 0:
            self.end_session(s.client_id)
        else:
            s.disconnected_at = self.clock()

    def end_session(self, client_id: str) -> None:
        s = self.sessions.pop(client_id, None)
        if s is None:
            return
        for flt in list(s.subs):
            self.remove_sub(s, flt)
        for key in list(s.shared):
            self.remove_shared(s, key)

    # -------------------------------------------------------------- subscriptions

    def add_sub(self, s: Session, flt: str, opts: SubOpts) -> bool:
        """Returns True if the subscription is new (for retain handling 1)."""
        new = flt not in s.subs
        s.subs[flt] = opts
        self.subs.setdefault(flt, {})[s.client_id] = opts
        self._match_cache.clear()
        return new

    def remove_sub(self, s: Session, flt: str) -> bool:
        if s.subs.pop(flt, None) is None:
            return False
        by_client = self.subs.get(flt)
        if by_client is not None:
            by_client.pop(s.client_id, None)
            if not by_client:
                del self.subs[flt]
        self._match_cache.clear()
        return True

    def add_shared(self, s: Session, key: tuple[str, str], opts: SubOpts) -> None:
        s.shared[key] = opts
        group = self.shares.setdefault(key, ShareGroup())
        if s.client_id not in group.members:
            group.members.append(s.client_id)
        self._match_cache.clear()

    def remove_shared(self, s: Session, key: tuple[str, str]) -> bool:
        if s.shared.pop(key, None) is None:
            return False
        group = self.shares.get(key)
        if group is not None and s.client_id in group.members:
            group.members.remove(s.client_id)
            if not group.members:
                del self.shares[key]
        self._match_cache.clear()
        return True

    def _matching(self, topic: str) -> tuple[list[str], list[tuple[str, str]]]:
        hit = self._match_cache.get(topic)
        if hit is None:
            if len(self._match_cache) > 10_000:
                self._match_cache.clear()
            hit = (
                [f for f in self.subs if topic_matches(f, topic)],
                [k for k in self.shares if topic_matches(k[1], topic)],
            )
            self._match_cache[topic] = hit
        return hit

    # -------------------------------------------------------------- routing

    def publish(self, msg: Message, sender: str | None = None) -> None:
        """Store (if retained) and deliver one message to every matching subscription."""
        if msg.retain:
            if msg.payload:
                self.retained[msg.topic] = msg
            else:
                self.retained.pop(msg.topic, None)
        filters, shared = self._matching(msg.topic)
        targets: dict[str, tuple[int, bool]] = {}
        for flt in filters:
            for cid, opts in self.subs[flt].items():
                if opts.no_local and cid == sender:
                    continue
                qos = min(msg.qos, opts.qos)
                retain = msg.retain and opts.retain_as_published
                prev = targets.get(cid)
                if prev is None or qos > prev[0]:
                    targets[cid] = (qos, retain or (prev is not None and prev[1]))
        for cid, (qos, retain) in targets.items():
            deliver(self, self.sessions[cid], msg, qos, retain)
        for key in shared:
            group = self.shares[key]
            member = self._pick(group)
            if member is not None:
                s = self.sessions[member]
                deliver(self, s, msg, min(msg.qos, s.shared[key].qos), False)

    def _pick(self, group: ShareGroup) -> str | None:
        """Round robin over the group's connected members (any member if none is connected)."""
        n = len(group.members)
        if not n:
            return None
        for i in range(n):
            cid = group.members[(group.next + i) % n]
            if self.sessions[cid].conn is not None:
                group.next = (group.next + i + 1) % n
                return cid
        cid = group.members[group.next % n]
        group.next = (group.next + 1) % n
        return cid

    def send_retained(self, s: Session, flt: str, opts: SubOpts) -> None:
        for topic, msg in list(self.retained.items()):
            if topic_matches(flt, topic):
                deliver(self, s, msg, min(msg.qos, opts.qos), True)

    # -------------------------------------------------------------- persistence

    def save(self, path: Path) -> None:
        def m(msg: Message) -> dict[str, Any]:
            return {
                "t": msg.topic,
                "p": base64.b64encode(msg.payload).decode(),
                "q": msg.qos,
                "r": msg.retain,
                "x": base64.b64encode(msg.props).decode(),
            }

        sessions = []
        for s in self.sessions.values():
            if s.expiry == 0:
                continue
            pending = list(s.inflight.values()) + list(s.queue)
            sessions.append(
                {
                    "id": s.client_id,
                    "expiry": s.expiry,
                    "subs": {
                        f: [o.qos, o.no_local, o.retain_as_published] for f, o in s.subs.items()
                    },
                    "shared": [[g, f, o.qos] for (g, f), o in s.shared.items()],
                    "pending": [[m(msg), q, r] for msg, q, r in pending],
                    "resend": min(len(s.inflight) + s.resend, len(pending)),
                }
            )
        state = {"retained": [m(x) for x in self.retained.values()], "sessions": sessions}
        tmp = path.with_name(path.name + ".tmp")
        tmp.write_text(json.dumps(state), encoding="utf-8")
        os.replace(tmp, path)

    def load(self, path: Path) -> None:
        try:
            state = json.loads(path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            return
        except (OSError, ValueError) as e:
            log.warning("cannot read saved broker state %s: %s; starting empty", path, e)
            return

        def m(d: dict[str, Any]) -> Message:
            return Message(
                d["t"],
                base64.b64decode(d["p"]),
                int(d["q"]),
                bool(d["r"]),
                base64.b64decode(d["x"]),
            )

        try:
            for d in state["retained"]:
                msg = m(d)
                self.retained[msg.topic] = msg
            now = self.clock()
            for d in state["sessions"]:
                s = Session(d["id"], expiry=int(d["expiry"]), disconnected_at=now)
                self.sessions[s.client_id] = s
                for flt, (qos, nl, rap) in d["subs"].items():
                    self.add_sub(s, flt, SubOpts(int(qos), bool(nl), bool(rap)))
                for g, f, qos in d["shared"]:
                    self.add_shared(s, (g, f), SubOpts(int(qos)))
                for md, q, r in d["pending"]:
                    s.queue.append((m(md), int(q), bool(r)))
                s.resend = int(d.get("resend", 0))
        except (KeyError, TypeError, ValueError) as e:
            log.warning("saved broker state %s is damaged (%s); some of it was not loaded", path, e)


def deliver(broker: MiniBroker, s: Session, msg: Message, qos: int, retain: bool) -> None:
    """Send `msg` to session `s` now, or queue it (QoS 1 only) until the client can take it."""
    conn = s.conn
    if qos == 0:
        if conn is not None:
            conn.send_publish(msg, 0, retain, 0, False)
        return
    if conn is not None and not s.queue and len(s.inflight) < conn.window:
        pid = s.new_pid()
        s.inflight[pid] = (msg, qos, retain)
        conn.send_publish(msg, qos, retain, pid, False)
        return
    if broker.max_queued and len(s.queue) >= broker.max_queued:
        s.dropped += 1
        broker.stats["dropped"] += 1
        if s.dropped == 1 or s.dropped % 10_000 == 0:
            log.warning("client %s: queue full, %d message(s) dropped", s.client_id, s.dropped)
        return
    s.queue.append((msg, qos, retain))


def pump(s: Session) -> None:
    """Move queued messages into flight while the client's window allows."""
    conn = s.conn
    if conn is None:
        return
    while s.queue and len(s.inflight) < conn.window:
        msg, qos, retain = s.queue.popleft()
        pid = s.new_pid()
        s.inflight[pid] = (msg, qos, retain)
        conn.send_publish(msg, qos, retain, pid, s.resend > 0)
        if s.resend:
            s.resend -= 1


# ---------------------------------------------------------------------------- connections


class Connection(asyncio.Protocol):
    """One client's network connection: parses packets and hands them to the broker."""

    def __init__(self, broker: MiniBroker) -> None:
        self.broker = broker
        self.transport: asyncio.Transport | None = None
        self.buf = bytearray()
        self.session: Session | None = None
        self.v5 = False
        self.keepalive = 0
        self.window = broker.max_inflight or 65535
        self.client_max_packet = 0
        self.will: Message | None = None
        self.clean_exit = False
        self.closed = False
        self.opened = self.last_rx = broker.clock()
        self.peer = "?"
        self._out: list[bytes] = []
        self._flush_scheduled = False
        self._paused = False
        self._released = False
        self._loop = asyncio.get_running_loop()

    # -------------------------------------------------------------- asyncio.Protocol

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport
        sock = transport.get_extra_info("socket")
        if sock is not None:
            with contextlib.suppress(OSError):
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        peer = transport.get_extra_info("peername")
        self.peer = f"{peer[0]}:{peer[1]}" if isinstance(peer, tuple) else str(peer)
        self.broker.conns.add(self)

    def pause_writing(self) -> None:
        self._paused = True

    def resume_writing(self) -> None:
        self._paused = False

    def data_received(self, data: bytes) -> None:
        if self.closed:
            return
        self.last_rx = self.broker.clock()
        buf = self.buf
        buf += data
        pos = 0
        try:
            while True:
                got = next_packet(buf, pos, self.broker.max_packet_size)
                if got is None:
                    break
                ptype, flags, body, pos = got
                self.handle(ptype, flags, body)
                if self.closed:
                    return
        except ProtocolError as e:
            self.broker.stats["bad_clients"] += 1
            self.fail(e)
            return
        except Exception as e:  # a bug here must cost one client, never the broker
            log.exception("client %s: internal error handling a packet", self.name())
            self.broker.stats["bad_clients"] += 1
            self.fail(ProtocolError(RC_UNSPECIFIED, type(e).__name__))
            return
        finally:
            if pos:
                del buf[:pos]

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        self._release()

    def _release(self) -> None:
        """Leave the session (once): publish the will unless the client said goodbye, put the
        messages in flight back at the head of the queue (re-sent with DUP if it is resumed)."""
        if self._released:
            return
        self._released = True
        self.broker.conns.discard(self)
        s = self.session
        if s is None or s.conn is not self:
            return
        if self.will is not None and not self.clean_exit:
            will, self.will = self.will, None
            self.broker.publish(will, s.client_id)
        if s.inflight:
            s.resend = min(len(s.inflight) + s.resend, len(s.inflight) + len(s.queue))
            s.queue.extendleft(reversed(list(s.inflight.values())))
            s.inflight.clear()
        self.broker.detach(s)

    # -------------------------------------------------------------- output

    def write(self, data: bytes) -> None:
        if self.closed:
            return
        self._out.append(data)
        if not self._flush_scheduled:
            self._flush_scheduled = True
            self._loop.call_soon(self._flush)

    def _flush(self) -> None:
        self._flush_scheduled = False
        if self._out and self.transport is not None and not self.transport.is_closing():
            self.transport.write(b"".join(self._out))
        self._out.clear()

    def send_publish(self, msg: Message, qos: int, retain: bool, pid: int, dup: bool) -> None:
        if (
            qos == 0
            and self._paused
            and self.transport is not None
            and self.transport.get_write_buffer_size() > SLOW_CONSUMER_BYTES
        ):
            self.broker.stats["dropped"] += 1
            return
        body = msg.topic_enc
        if qos:
            body += struct.pack("!H", pid)
        if self.v5:
            body += encode_varint(len(msg.props)) + msg.props
        body += msg.payload
        flags = (8 if dup else 0) | qos << 1 | (1 if retain else 0)
        data = packet(PUBLISH, flags, body)
        if self.client_max_packet and len(data) > self.client_max_packet:
            self.broker.stats["dropped"] += 1
            if qos and self.session is not None:
                self.session.inflight.pop(pid, None)
            return
        self.broker.stats["sent"] += 1
        self.write(data)

    def name(self) -> str:
        return self.session.client_id if self.session else self.peer

    def fail(self, err: ProtocolError) -> None:
        """Close this connection because of `err` (the will is published)."""
        if self.closed:
            return
        log.info("client %s: closing connection: %s", self.name(), err)
        if self.session is None:
            if self.v5:
                self.write(packet(CONNACK, 0, bytes([0, err.reason]) + encode_varint(0)))
        elif self.v5:
            self.write(packet(DISCONNECT, 0, bytes([err.reason]) + encode_varint(0)))
        self._flush()
        self.drop(publish_will=True)

    def drop(self, publish_will: bool) -> None:
        """Close the connection now (pending output is flushed first) and leave the session."""
        if self.closed:
            return
        if not publish_will:
            self.clean_exit = True
        self._flush()
        if self.transport is not None:
            self.transport.close()
        self.closed = True  # connection_lost follows from the loop; nothing more is parsed
        self._release()

    # -------------------------------------------------------------- packets

    def handle(self, ptype: int, flags: int, body: bytes) -> None:
        if self.session is None:
            if ptype != CONNECT:
                raise ProtocolError(RC_PROTOCOL_ERROR, "first packet is not CONNECT")
            self.on_connect(body)
            return
        if ptype == PUBLISH:
            self.on_publish(flags, body)
        elif ptype == PUBACK:
            self._check_flags(flags, 0)
            s = self.session
            if s.inflight.pop(Reader(body).u16(), None) is not None and s.queue:
                pump(s)
        elif ptype == PUBREL:
            self._check_flags(flags, 2)
            pid = Reader(body).u16()
            found = pid in self.session.qos2_in
            self.session.qos2_in.discard(pid)
            if self.v5 and not found:
                self.write(packet(PUBCOMP, 0, struct.pack("!HB", pid, 0x92) + b"\x00"))
            else:
                self.write(packet(PUBCOMP, 0, struct.pack("!H", pid)))
        elif ptype in (PUBREC, PUBCOMP):
            # never expected: the broker sends at most QoS 1
            raise ProtocolError(RC_PROTOCOL_ERROR, "PUBREC/PUBCOMP for a QoS 2 never sent")
        elif ptype == SUBSCRIBE:
            self._check_flags(flags, 2)
            self.on_subscribe(body)
        elif ptype == UNSUBSCRIBE:
            self._check_flags(flags, 2)
            self.on_unsubscribe(body)
        elif ptype == PINGREQ:
            self._check_flags(flags, 0)
            self.write(b"\xd0\x00")
        elif ptype == DISCONNECT:
            self._check_flags(flags, 0)
            reason = body[0] if self.v5 and body else 0
            self.drop(publish_will=reason == RC_DISCONNECT_WITH_WILL)
        elif ptype == CONNECT:
            raise ProtocolError(RC_PROTOCOL_ERROR, "second CONNECT")
        elif ptype == AUTH and self.v5:
            raise ProtocolError(RC_PROTOCOL_ERROR, "enhanced authentication is not supported")
        else:
            raise ProtocolError(RC_PROTOCOL_ERROR, f"unexpected packet type {ptype}")

    @staticmethod
    def _check_flags(flags: int, want: int) -> None:
        if flags != want:
            raise ProtocolError(RC_MALFORMED, "reserved flags set")

    def on_connect(self, body: bytes) -> None:
        r = Reader(body)
        name = r.string()
        level = r.byte()
        if name != "MQTT" or level not in (4, 5):
            # answer in the 3.1.1 form, which every client version understands
            self.write(packet(CONNACK, 0, bytes([0, 0x01])))
            self._flush()
            self.drop(publish_will=False)
            return
        self.v5 = level == 5
        cflags = r.byte()
        if cflags & 0x01:
            raise ProtocolError(RC_MALFORMED, "reserved CONNECT flag set")
        clean = bool(cflags & 0x02)
        will_flag = bool(cflags & 0x04)
        will_qos = (cflags >> 3) & 0x03
        will_retain = bool(cflags & 0x20)
        if will_qos == 3 or (not will_flag and (will_qos or will_retain)):
            raise ProtocolError(RC_MALFORMED, "bad will flags")
        self.keepalive = r.u16()
        props = r.properties() if self.v5 else []
        client_id = r.string()
        will: Message | None = None
        if will_flag:
            wprops = r.properties() if self.v5 else []
            wtopic = r.string()
            wpayload = r.binary()
            if not valid_topic_name(wtopic):
                raise ProtocolError(RC_TOPIC_NAME_INVALID, "bad will topic")
            fwd = encode_props((p, v) for p, v in wprops if p in PROP_TYPES and p not in (0x18,))
            will = Message(wtopic, wpayload, will_qos, will_retain, fwd)
        if cflags & 0x80:
            r.string()  # username: accepted and ignored
        if cflags & 0x40:
            r.binary()  # password: accepted and ignored
        if r.left():
            raise ProtocolError(RC_MALFORMED, "bytes after the CONNECT payload")
        if prop(props, P_AUTH_METHOD) is not None:
            self.write(packet(CONNACK, 0, bytes([0, RC_BAD_AUTH_METHOD]) + encode_varint(0)))
            self._flush()
            self.drop(publish_will=False)
            return
        ack_props: list[tuple[int, Any]] = []
        if not client_id:
            if not self.v5 and not clean:
                self.write(packet(CONNACK, 0, bytes([0, 0x02])))  # identifier rejected
                self._flush()
                self.drop(publish_will=False)
                return
            client_id = self.broker.assign_client_id()
            if self.v5:
                ack_props.append((P_ASSIGNED_ID, client_id))
        if self.v5:
            expiry = int(prop(props, P_SESSION_EXPIRY, 0))
            rmax = int(prop(props, P_RECEIVE_MAX, 65535))
            if rmax == 0:
                raise ProtocolError(RC_PROTOCOL_ERROR, "receive maximum 0")
            self.window = min(self.window, rmax)
            self.client_max_packet = int(prop(props, P_MAX_PACKET, 0))
        else:
            expiry = 0 if clean else NEVER_EXPIRES
        self.will = will
        present = self.broker.open_session(self, client_id, clean, expiry)
        if self.v5:
            # No Maximum QoS: announcing 1 would forbid clients to publish at QoS 2, which this
            # broker accepts; SUBACK grants at most QoS 1 instead.
            ack_props += [
                (0x25, 1),  # retain available
                (P_MAX_PACKET, self.broker.max_packet_size),
                (0x28, 1),  # wildcard subscriptions available
                (0x29, 0),  # subscription identifiers not available
                (0x2A, 1),  # shared subscriptions available
            ]
            body_out = bytes([1 if present else 0, 0]) + with_len(encode_props(ack_props))
        else:
            body_out = bytes([1 if present else 0, 0])
        self.write(packet(CONNACK, 0, body_out))
        log.debug("client %s connected (MQTT %s)", client_id, "5" if self.v5 else "3.1.1")
        s = self.session
        assert s is not None
        if present:
            pump(s)  # what was in flight (again, with DUP), then what was queued, in order

    def on_publish(self, flags: int, body: bytes) -> None:
        assert self.session is not None
        qos = (flags >> 1) & 0x03
        if qos == 3:
            raise ProtocolError(RC_MALFORMED, "PUBLISH with QoS 3")
        r = Reader(body)
        topic = r.string()
        pid = r.u16() if qos else 0
        if qos and pid == 0:
            raise ProtocolError(RC_MALFORMED, "PUBLISH without a packet id")
        fwd = b""
        if self.v5:
            props = r.properties()
            if prop(props, P_TOPIC_ALIAS) is not None:
                raise ProtocolError(RC_TOPIC_ALIAS_INVALID, "topic aliases are not supported")
            if props:
                fwd = encode_props((p, v) for p, v in props if p not in _NOT_FORWARDED)
        if not valid_topic_name(topic):
            raise ProtocolError(RC_TOPIC_NAME_INVALID, "bad topic name")
        payload = body[r.pos :]
        self.broker.stats["received"] += 1
        msg = Message(topic, payload, qos, bool(flags & 1), fwd)
        if qos == 2:
            s = self.session
            if pid not in s.qos2_in:
                s.qos2_in.add(pid)
                self.broker.publish(msg, s.client_id)
            self.write(packet(PUBREC, 0, struct.pack("!H", pid)))
            return
        self.broker.publish(msg, self.session.client_id)
        if qos == 1:
            self.write(b"\x40\x02" + struct.pack("!H", pid))

    def on_subscribe(self, body: bytes) -> None:
        s = self.session
        assert s is not None
        r = Reader(body)
        pid = r.u16()
        if self.v5:
            r.properties()
        requests: list[tuple[str, SubOpts]] = []
        while r.left():
            flt = r.string()
            o = r.byte()
            if o & 0xC0 or (not self.v5 and o & 0xFC) or (o & 0x03) == 3 or (o >> 4 & 3) == 3:
                raise ProtocolError(RC_MALFORMED, "bad subscription options")
            requests.append((flt, SubOpts(min(o & 3, 1), bool(o & 4), bool(o & 8), (o >> 4) & 3)))
        if not requests:
            raise ProtocolError(RC_PROTOCOL_ERROR, "SUBSCRIBE without a topic filter")
        codes: list[int] = []
        retained: list[tuple[str, SubOpts]] = []
        for flt, opts in requests:
            try:
                group, real = split_shared(flt)
            except ValueError:
                codes.append(RC_TOPIC_FILTER_INVALID if self.v5 else 0x80)
                continue
            if not valid_filter(real):
                codes.append(RC_TOPIC_FILTER_INVALID if self.v5 else 0x80)
                continue
            if group is not None:
                if opts.no_local:
                    raise ProtocolError(RC_PROTOCOL_ERROR, "no-local on a shared subscription")
                self.broker.add_shared(s, (group, real), opts)
            else:
                new = self.broker.add_sub(s, real, opts)
                if opts.retain_handling == 0 or (opts.retain_handling == 1 and new):
                    retained.append((real, opts))
            codes.append(opts.qos)
        props = encode_varint(0) if self.v5 else b""
        self.write(packet(SUBACK, 0, struct.pack("!H", pid) + props + bytes(codes)))
        for flt, opts in retained:
            self.broker.send_retained(s, flt, opts)

    def on_unsubscribe(self, body: bytes) -> None:
        s = self.session
        assert s is not None
        r = Reader(body)
        pid = r.u16()
        if self.v5:
            r.properties()
        codes: list[int] = []
        while r.left():
            flt = r.string()
            try:
                group, real = split_shared(flt)
            except ValueError:
                codes.append(RC_TOPIC_FILTER_INVALID)
                continue
            if group is not None:
                found = self.broker.remove_shared(s, (group, real))
            else:
                found = self.broker.remove_sub(s, real)
            codes.append(RC_SUCCESS if found else RC_NO_SUBSCRIPTION_EXISTED)
        if not codes:
            raise ProtocolError(RC_PROTOCOL_ERROR, "UNSUBSCRIBE without a topic filter")
        if self.v5:
            self.write(
                packet(UNSUBACK, 0, struct.pack("!H", pid) + encode_varint(0) + bytes(codes))
            )
        else:
            self.write(packet(UNSUBACK, 0, struct.pack("!H", pid)))


# ---------------------------------------------------------------------------- local broker


def mosquitto_binary() -> str | None:
    found = shutil.which("mosquitto")
    if found:
        return found
    return "/usr/sbin/mosquitto" if Path("/usr/sbin/mosquitto").exists() else None


class LocalBroker:
    """A broker on 127.0.0.1:`port` in a subprocess: Mosquitto if installed, else this module.

    `kind` is "mosquitto" or "embedded"; `start()` (again, on the same port), `stop()` (SIGTERM,
    so a persistent broker saves its state), `kill()` (SIGKILL). With `persistent=True` sessions
    and retained messages survive a `stop()`/`start()`; `extra_conf` lines are appended to
    Mosquitto's configuration, `embedded_args` to the embedded broker's command line.
    """

    def __init__(
        self,
        port: int,
        workdir: Path,
        *,
        kind: str | None = None,
        persistent: bool = False,
        extra_conf: str = "",
        embedded_args: list[str] | None = None,
    ) -> None:
        self.port = port
        self.workdir = Path(workdir)
        self.workdir.mkdir(parents=True, exist_ok=True)
        choice = kind or os.environ.get("OFFICEGUARD_BROKER", "").strip().lower() or "auto"
        if choice not in ("auto", "mosquitto", "embedded"):
            raise ValueError(f"OFFICEGUARD_BROKER must be mosquitto or embedded, not {choice!r}")
        mosq = mosquitto_binary()
        if choice == "mosquitto" and mosq is None:
            raise RuntimeError("OFFICEGUARD_BROKER=mosquitto but no mosquitto binary is installed")
        self.kind = "mosquitto" if mosq is not None and choice != "embedded" else "embedded"
        self.log = self.workdir / f"{self.kind}.log"
        self.conf: Path | None = None
        self.proc: subprocess.Popen[bytes] | None = None
        if self.kind == "mosquitto":
            assert mosq is not None
            self.conf = self.workdir / "mosquitto.conf"
            lines = [f"listener {port} 127.0.0.1", "allow_anonymous true"]
            if persistent:
                lines += ["persistence true", f"persistence_location {self.workdir}/"]
            else:
                lines.append("persistence false")
            with contextlib.suppress(KeyError, OSError):
                import pwd

                # as root, mosquitto would switch to a user who may not write to workdir
                lines.append(f"user {pwd.getpwuid(os.getuid()).pw_name}")
            self.conf.write_text("\n".join(lines) + "\n" + extra_conf, encoding="utf-8")
            self.argv = [mosq, "-c", str(self.conf)]
        else:
            self.argv = [sys.executable, "-m", "controller.mini_broker", "-p", str(port)]
            self.argv += ["--host", "127.0.0.1"]
            if persistent:
                self.argv += ["--persist", str(self.workdir / "mini_broker.state.json")]
            self.argv += embedded_args or []

    @property
    def url(self) -> str:
        return f"mqtt://127.0.0.1:{self.port}"

    def start(self, timeout: float = 10.0) -> None:
        if self.proc is not None and self.proc.poll() is None:
            return
        if self._port_taken():
            # else the wait below would take another program's listener for our broker
            raise RuntimeError(f"cannot start a broker: port {self.port} is already in use")
        env = dict(os.environ)
        root = str(Path(__file__).resolve().parent.parent)
        env["PYTHONPATH"] = root + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
        with open(self.log, "ab") as out:
            self.proc = subprocess.Popen(
                self.argv, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, env=env
            )
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            if self.proc.poll() is not None:
                break
            if self._accepting():
                return
            time.sleep(0.02)
        self.kill()
        tail = self.log.read_text(encoding="utf-8", errors="replace")[-2000:]
        raise RuntimeError(f"{self.kind} broker did not start on port {self.port}: {tail}")

    def _port_taken(self) -> bool:
        with socket.socket() as s:
            s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            try:
                s.bind(("127.0.0.1", self.port))
            except OSError:
                return True
        return False

    def _accepting(self) -> bool:
        try:
            with socket.create_connection(("127.0.0.1", self.port), timeout=0.2):
                return True
        except OSError:
            return False

    def stop(self, timeout: float = 5.0) -> None:
        if self.proc is None:
            return
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout)
        self.proc = None

    def kill(self) -> None:
        if self.proc is None:
            return
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(5)
        self.proc = None

    def __enter__(self) -> LocalBroker:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def start_local_broker(port: int, workdir: Path, **kw: Any) -> LocalBroker:
    """Start Mosquitto (or, without it or with OFFICEGUARD_BROKER=embedded, this module's broker)
    on 127.0.0.1:`port`; returns once the port accepts connections."""
    b = LocalBroker(port, workdir, **kw)
    b.start()
    return b


# ---------------------------------------------------------------------------- command line


async def _serve(args: argparse.Namespace) -> None:
    broker = MiniBroker(
        max_packet_size=args.max_packet_size,
        max_inflight=args.max_inflight,
        max_queued=args.max_queued,
        persist=Path(args.persist) if args.persist else None,
    )
    port = await broker.start(args.host, args.port)
    print(f"listening on {args.host}:{port}", flush=True)
    done = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, done.set)
    await done.wait()
    await broker.stop()
    s = broker.stats
    print(
        f"stopped: {s['received']} received, {s['sent']} sent, {s['dropped']} dropped, "
        f"{s['bad_clients']} connection(s) closed for errors",
        flush=True,
    )


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(
        prog="python -m controller.mini_broker",
        description="A small MQTT 3.1.1/5 broker for the OfficeGuard demo (localhost only).",
    )
    ap.add_argument("-p", "--port", type=int, default=1883)
    ap.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1)")
    ap.add_argument("--max-packet-size", type=int, default=DEFAULT_MAX_PACKET, metavar="BYTES")
    ap.add_argument(
        "--max-inflight",
        type=int,
        default=DEFAULT_MAX_INFLIGHT,
        metavar="N",
        help="QoS 1 messages in flight per client (0: as many as the client allows)",
    )
    ap.add_argument(
        "--max-queued",
        type=int,
        default=DEFAULT_MAX_QUEUED,
        metavar="N",
        help="messages queued per client beyond those in flight (0: no limit)",
    )
    ap.add_argument(
        "--persist",
        metavar="FILE",
        help="save sessions and retained messages here at shutdown, load at start",
    )
    ap.add_argument("-v", "--verbose", action="store_true")
    args = ap.parse_args(argv)
    if not 0 <= args.port <= 65535:
        ap.error("port must be 0-65535")
    if args.max_packet_size < 16:
        ap.error("--max-packet-size is too small")
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.INFO,
        format="%(asctime)s mini_broker %(levelname)s %(message)s",
    )
    try:
        asyncio.run(_serve(args))
    except OSError as e:
        print(f"mini_broker: cannot listen on {args.host}:{args.port}: {e}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
