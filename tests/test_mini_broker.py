"""The embedded MQTT broker (controller/mini_broker.py) against real paho-mqtt 2 clients and raw
sockets, MQTT 3.1.1 and 5: it runs as the real subprocess the demo starts, except the keepalive
test, which runs it in-process on a clock the test moves.

`python -m tests.test_mini_broker [N]` measures QoS 1 throughput through it and through Mosquitto
in the same run (the figures quoted in the module's docstring).
"""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import struct
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import paho.mqtt.client as paho
import pytest
from paho.mqtt.enums import CallbackAPIVersion, MQTTProtocolVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties
from paho.mqtt.subscribeoptions import SubscribeOptions

from controller.mini_broker import (
    LocalBroker,
    MiniBroker,
    start_local_broker,
)
from controller.mqtt_wire import (
    CONNACK,
    CONNECT,
    DISCONNECT,
    PINGREQ,
    PINGRESP,
    PUBCOMP,
    PUBLISH,
    PUBREC,
    PUBREL,
    SUBACK,
    SUBSCRIBE,
    Reader,
    encode_bin,
    encode_props,
    encode_str,
    encode_varint,
    packet,
    topic_matches,
)
from tests.mqtt_broker import free_port, wait_for

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parent.parent
V311, V5 = MQTTProtocolVersion.MQTTv311, MQTTProtocolVersion.MQTTv5
BOTH = pytest.mark.parametrize("proto", [V311, V5], ids=["v311", "v5"])


@pytest.fixture(scope="module")
def broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalBroker]:
    b = start_local_broker(free_port(), tmp_path_factory.mktemp("mini"), kind="embedded")
    assert b.kind == "embedded"
    yield b
    b.stop()


class Client:
    """A paho-mqtt 2 client on its own network thread that records what it receives."""

    def __init__(
        self,
        port: int,
        proto: MQTTProtocolVersion,
        client_id: str = "",
        *,
        clean: bool = True,
        will: tuple[str, bytes, int, bool] | None = None,
        expiry: int | None = None,
    ) -> None:
        self.messages: list[paho.MQTTMessage] = []
        self.lock = threading.Lock()
        self.connected = threading.Event()
        self.connack: Any = None
        self.session_present: bool | None = None
        self.disconnects: list[Any] = []
        self.subacks: list[list[Any]] = []
        self.unsubacks: list[list[Any]] = []
        v5 = proto == V5
        c = paho.Client(
            CallbackAPIVersion.VERSION2,
            client_id=client_id,
            protocol=proto,
            clean_session=None if v5 else clean,
        )
        c.max_inflight_messages_set(1000)
        c.on_connect = self._on_connect
        c.on_message = self._on_message
        c.on_disconnect = lambda cl, u, f, rc, p: self.disconnects.append(rc)
        c.on_subscribe = lambda cl, u, mid, rcs, p: self.subacks.append(list(rcs))
        c.on_unsubscribe = lambda cl, u, mid, rcs, p: self.unsubacks.append(list(rcs))
        if will is not None:
            c.will_set(will[0], will[1], qos=will[2], retain=will[3])
        props = None
        if v5:
            props = Properties(PacketTypes.CONNECT)  # type: ignore[no-untyped-call]
            props.SessionExpiryInterval = expiry or 0
        c.connect("127.0.0.1", port, keepalive=30, clean_start=clean if v5 else 3, properties=props)
        c.loop_start()
        self.client = c
        if not self.connected.wait(5):
            raise RuntimeError("client did not connect")

    def _on_connect(self, c: paho.Client, u: Any, flags: Any, rc: Any, props: Any) -> None:
        self.connack = rc
        self.session_present = bool(flags.session_present)
        self.connected.set()

    def _on_message(self, c: paho.Client, u: Any, msg: paho.MQTTMessage) -> None:
        with self.lock:
            self.messages.append(msg)

    def got(self) -> list[paho.MQTTMessage]:
        with self.lock:
            return list(self.messages)

    def payloads(self, topic: str | None = None) -> list[bytes]:
        return [bytes(m.payload) for m in self.got() if topic is None or m.topic == topic]

    def subscribe(self, *filters: str, qos: int = 1, **opts: Any) -> None:
        n = len(self.subacks)
        if opts:
            o = SubscribeOptions(qos=qos, **opts)
            self.client.subscribe([(f, o) for f in filters])
        else:
            self.client.subscribe([(f, qos) for f in filters])
        assert wait_for(lambda: len(self.subacks) > n, 5)

    def publish(self, topic: str, payload: bytes | str, qos: int = 1, retain: bool = False) -> Any:
        info = self.client.publish(topic, payload, qos=qos, retain=retain)
        info.wait_for_publish(5)
        return info

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


class Raw:
    """A bare TCP client speaking packets built by hand, for what paho will not send."""

    def __init__(self, port: int) -> None:
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=5)
        self.buf = b""

    def send(self, data: bytes) -> None:
        self.sock.sendall(data)

    def connect(
        self,
        client_id: str,
        level: int = 4,
        *,
        will: tuple[str, bytes, int, bool] | None = None,
        keepalive: int = 60,
        props: bytes = b"",
    ) -> tuple[int, int, bytes]:
        flags = 0x02
        payload = encode_str(client_id)
        if will is not None:
            topic, body, qos, retain = will
            flags |= 0x04 | qos << 3 | (0x20 if retain else 0)
            if level == 5:
                payload += encode_varint(0)
            payload += encode_str(topic) + encode_bin(body)
        vh = encode_str("MQTT") + bytes([level, flags]) + struct.pack("!H", keepalive)
        if level == 5:
            vh += encode_varint(len(props)) + props
        self.send(packet(CONNECT, 0, vh + payload))
        got = self.read()
        assert got is not None and got[0] == CONNACK
        return got

    def read(self, timeout: float = 5.0) -> tuple[int, int, bytes] | None:
        """One packet (type, flags, body), or None when the broker closed the connection."""
        self.sock.settimeout(timeout)
        while True:
            if len(self.buf) >= 2:
                r = Reader(self.buf, 1)
                try:
                    length = r.varint()
                except Exception:  # incomplete length
                    length = -1
                if length >= 0 and len(self.buf) >= r.pos + length:
                    first = self.buf[0]
                    body = self.buf[r.pos : r.pos + length]
                    self.buf = self.buf[r.pos + length :]
                    return first >> 4, first & 0x0F, body
            try:
                chunk = self.sock.recv(65536)
            except ConnectionResetError:
                return None
            if not chunk:
                return None
            self.buf += chunk

    def closed_by_broker(self, timeout: float = 5.0) -> bool:
        """Reads until the broker closes the connection; True if it did."""
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            try:
                if self.read(max(0.01, end - time.monotonic())) is None:
                    return True
            except TimeoutError:
                return False
        return False

    def close(self) -> None:
        self.sock.close()


# ---------------------------------------------------------------------------- pure helpers


def test_topic_matching_rules() -> None:
    assert topic_matches("a/+/c", "a/b/c")
    assert not topic_matches("a/+/c", "a/b/d/c")
    assert topic_matches("a/#", "a")  # '#' also matches the parent level
    assert topic_matches("a/#", "a/b/c")
    assert topic_matches("+/+", "/x")  # an empty level is a level
    assert not topic_matches("#", "$SYS/broker/load")  # no $-topics for a first-level wildcard
    assert not topic_matches("+/broker/load", "$SYS/broker/load")
    assert topic_matches("$SYS/#", "$SYS/broker/load")


# ---------------------------------------------------------------------------- QoS and routing


@BOTH
def test_qos1_round_trip_with_puback_and_delivery_qos_is_the_minimum(
    broker: LocalBroker, proto: MQTTProtocolVersion
) -> None:
    tag = f"rt{proto}"
    sub1 = Client(broker.port, proto, f"{tag}-s1")
    sub0 = Client(broker.port, proto, f"{tag}-s0")
    pub = Client(broker.port, proto, f"{tag}-p")
    try:
        sub1.subscribe(f"{tag}/x", qos=1)
        sub0.subscribe(f"{tag}/x", qos=0)
        if proto == V5:
            assert [rc.value for rc in sub1.subacks[-1]] == [1]  # granted QoS as reason code
        infos = [pub.publish(f"{tag}/x", f"m{i}", qos=1) for i in range(200)]
        assert all(i.is_published() and i.rc == 0 for i in infos)  # every PUBACK came back
        want = [f"m{i}".encode() for i in range(200)]
        assert wait_for(lambda: len(sub1.got()) == 200 and len(sub0.got()) == 200, 10)
        assert sub1.payloads() == want  # in order
        assert {m.qos for m in sub1.got()} == {1}
        assert {m.qos for m in sub0.got()} == {0}  # min(publish 1, subscription 0)
        pub.publish(f"{tag}/x", "zero", qos=0)
        assert wait_for(lambda: sub1.payloads()[-1:] == [b"zero"], 5)
        assert sub1.got()[-1].qos == 0  # min(publish 0, subscription 1)
    finally:
        for c in (sub1, sub0, pub):
            c.close()


@BOTH
def test_qos2_publish_is_accepted_and_delivered_at_most_qos1(
    broker: LocalBroker, proto: MQTTProtocolVersion
) -> None:
    tag = f"q2{proto}"
    sub = Client(broker.port, proto, f"{tag}-s")
    pub = Client(broker.port, proto, f"{tag}-p")
    try:
        sub.subscribe(f"{tag}/x", qos=2)
        codes = sub.subacks[-1]
        assert [getattr(c, "value", c) for c in codes] == [1]  # the broker grants QoS 1
        info = pub.publish(f"{tag}/x", "exactly once", qos=2)  # PUBREC, PUBREL, PUBCOMP
        assert info.is_published()
        assert wait_for(lambda: sub.payloads() == [b"exactly once"], 5)
        assert sub.got()[0].qos == 1
    finally:
        sub.close()
        pub.close()


def test_qos2_resent_before_pubrel_is_routed_once(broker: LocalBroker) -> None:
    sub = Client(broker.port, V311, "q2raw-s")
    raw = Raw(broker.port)
    try:
        sub.subscribe("q2raw/x")
        raw.connect("q2raw-p")
        pub = packet(PUBLISH, 0b0100, encode_str("q2raw/x") + struct.pack("!H", 7) + b"once")
        raw.send(pub)
        assert raw.read() == (PUBREC, 0, struct.pack("!H", 7))
        dup = packet(PUBLISH, 0b1100, encode_str("q2raw/x") + struct.pack("!H", 7) + b"once")
        raw.send(dup)  # the PUBREC got lost, says the client: same packet id, DUP
        assert raw.read() == (PUBREC, 0, struct.pack("!H", 7))
        raw.send(packet(PUBREL, 2, struct.pack("!H", 7)))
        assert raw.read() == (PUBCOMP, 0, struct.pack("!H", 7))
        raw.send(packet(PINGREQ, 0, b""))
        assert raw.read() == (PINGRESP, 0, b"")  # everything before it has been routed
        assert wait_for(lambda: sub.payloads() == [b"once"], 5)
        time.sleep(0.2)  # no second copy arrives late
        assert sub.payloads() == [b"once"]
    finally:
        raw.close()
        sub.close()


@BOTH
def test_wildcards_overlaps_and_dollar_topics(
    broker: LocalBroker, proto: MQTTProtocolVersion
) -> None:
    tag = f"wc{proto}"
    plus = Client(broker.port, proto, f"{tag}-plus")
    hash_ = Client(broker.port, proto, f"{tag}-hash")
    every = Client(broker.port, proto, f"{tag}-every")
    dollar = Client(broker.port, proto, f"{tag}-dollar")
    pub = Client(broker.port, proto, f"{tag}-p")
    try:
        plus.subscribe(f"{tag}/+/state")
        hash_.subscribe(f"{tag}/#", f"{tag}/zone/#")  # overlapping: one copy per message
        every.subscribe("#")
        dollar.subscribe(f"$SYS/{tag}/#")
        topics = [f"{tag}/zone/state", f"{tag}/zone/a/state", f"{tag}", "other/x", f"$SYS/{tag}/y"]
        for t in topics:
            pub.publish(t, t)
        pub.publish(f"{tag}/end", "end")
        assert wait_for(lambda: b"end" in hash_.payloads(), 5)
        assert wait_for(lambda: b"end" in every.payloads(), 5)
        assert plus.payloads() == [f"{tag}/zone/state".encode()]
        assert hash_.payloads() == [
            f"{tag}/zone/state".encode(),
            f"{tag}/zone/a/state".encode(),
            tag.encode(),
            b"end",
        ]
        assert wait_for(lambda: dollar.payloads() == [f"$SYS/{tag}/y".encode()], 5)
        mine = [p for p in every.payloads() if p.decode().startswith(("$", tag, "other"))]
        assert f"$SYS/{tag}/y".encode() not in mine  # '#' does not match $-topics
        assert b"other/x" in mine
        # a filter that is not valid is refused in SUBACK (paho will not send one: raw socket)
        raw = Raw(broker.port)
        level = 5 if proto == V5 else 4
        raw.connect(f"{tag}-raw", level)
        props = b"\x00" if level == 5 else b""
        filters = encode_str("a/#/b") + b"\x01" + encode_str(f"{tag}/ok") + b"\x01"
        raw.send(packet(SUBSCRIBE, 2, b"\x00\x05" + props + filters))
        refused = 0x8F if level == 5 else 0x80
        assert raw.read() == (SUBACK, 0, b"\x00\x05" + props + bytes([refused, 1]))
        pub.publish(f"{tag}/ok", "still here")  # the connection stays
        got = raw.read()
        assert got is not None and got[0] == PUBLISH and got[2].endswith(b"still here")
        raw.close()
    finally:
        for c in (plus, hash_, every, dollar, pub):
            c.close()


@BOTH
def test_retained_message_reaches_late_subscribers_and_an_empty_one_clears_it(
    broker: LocalBroker, proto: MQTTProtocolVersion
) -> None:
    tag = f"ret{proto}"
    live = Client(broker.port, proto, f"{tag}-live")
    pub = Client(broker.port, proto, f"{tag}-p")
    try:
        live.subscribe(f"{tag}/#")
        pub.publish(f"{tag}/status", '{"online": true}', retain=True)
        pub.publish(f"{tag}/status", '{"online": false}', retain=True)  # replaces it
        assert wait_for(lambda: len(live.got()) == 2, 5)
        assert [m.retain for m in live.got()] == [False, False]  # live copies: retain cleared
        late = Client(broker.port, proto, f"{tag}-late")
        late.subscribe(f"{tag}/+")
        assert wait_for(lambda: len(late.got()) == 1, 5)
        assert late.got()[0].retain and late.payloads() == [b'{"online": false}']
        late.close()
        pub.publish(f"{tag}/status", b"", retain=True)  # clears the topic
        assert wait_for(lambda: len(live.got()) == 3, 5)
        later = Client(broker.port, proto, f"{tag}-later")
        later.subscribe(f"{tag}/#")
        pub.publish(f"{tag}/mark", "mark")  # ordering fence: anything retained came before
        assert wait_for(lambda: b"mark" in later.payloads(), 5)
        assert later.payloads() == [b"mark"]
        later.close()
    finally:
        live.close()
        pub.close()


def test_v5_subscription_options_no_local_retain_as_published_retain_handling(
    broker: LocalBroker,
) -> None:
    me = Client(broker.port, V5, "opt-me")
    other = Client(broker.port, V5, "opt-other")
    try:
        other.publish("opt/r", "kept", retain=True)
        me.subscribe("opt/#", noLocal=True, retainAsPublished=True, retainHandling=2)
        me.publish("opt/mine", "from me")  # no-local: not sent back to me
        other.publish("opt/r", "kept again", retain=True)
        assert wait_for(lambda: me.payloads() == [b"kept again"], 5)  # rh=2: no retained copy
        assert me.got()[0].retain is True  # retain as published
    finally:
        other.publish("opt/r", b"", retain=True)
        me.close()
        other.close()


def test_v5_message_properties_pass_through(broker: LocalBroker) -> None:
    v5 = Client(broker.port, V5, "props-5")
    v3 = Client(broker.port, V311, "props-3")
    pub = Client(broker.port, V5, "props-p")
    try:
        v5.subscribe("props/x")
        v3.subscribe("props/x")
        props = Properties(PacketTypes.PUBLISH)  # type: ignore[no-untyped-call]
        props.ResponseTopic = "props/reply"
        props.CorrelationData = b"\x01\x02"
        props.UserProperty = ("k", "v")
        props.ContentType = "application/json"
        pub.client.publish("props/x", "{}", qos=1, properties=props).wait_for_publish(5)
        assert wait_for(lambda: len(v5.got()) == 1 and len(v3.got()) == 1, 5)
        got: Any = v5.got()[0].properties
        assert got is not None
        assert got.ResponseTopic == "props/reply" and got.CorrelationData == b"\x01\x02"
        assert got.UserProperty == [("k", "v")] and got.ContentType == "application/json"
        assert v3.payloads() == [b"{}"]  # MQTT 3.1.1 has no properties: just the message
    finally:
        for c in (v5, v3, pub):
            c.close()


# ---------------------------------------------------------------------------- last will


@pytest.mark.parametrize("level", [4, 5], ids=["v311", "v5"])
def test_last_will_on_abrupt_close_not_on_disconnect(broker: LocalBroker, level: int) -> None:
    tag = f"will{level}"
    watcher = Client(broker.port, V311, f"{tag}-w")
    try:
        watcher.subscribe(f"{tag}/#")
        # 1. clean DISCONNECT: the will is discarded
        raw = Raw(broker.port)
        raw.connect(f"{tag}-a", level, will=(f"{tag}/a", b"gone", 1, False))
        raw.send(packet(DISCONNECT, 0, b"\x00\x00" if level == 5 else b""))
        assert raw.closed_by_broker()
        raw.close()
        # 2. the socket just closes (process killed, cable pulled): the will is published
        raw = Raw(broker.port)
        raw.connect(f"{tag}-b", level, will=(f"{tag}/b", b'{"online": false}', 1, True))
        raw.close()
        assert wait_for(lambda: watcher.payloads(f"{tag}/b") == [b'{"online": false}'], 5)
        assert watcher.payloads(f"{tag}/a") == []
        if level == 5:  # 3. MQTT 5: DISCONNECT with reason 0x04 asks for the will
            raw = Raw(broker.port)
            raw.connect(f"{tag}-c", level, will=(f"{tag}/c", b"asked", 0, False))
            raw.send(packet(DISCONNECT, 0, b"\x04\x00"))
            assert wait_for(lambda: watcher.payloads(f"{tag}/c") == [b"asked"], 5)
            raw.close()
        late = Client(broker.port, V5, f"{tag}-late")
        late.subscribe(f"{tag}/b")
        assert wait_for(lambda: late.payloads() == [b'{"online": false}'], 5)  # retained will
        assert late.got()[0].retain
        late.close()
        assert watcher.payloads(f"{tag}/a") == []
    finally:
        watcher.close()


def test_paho_will_with_disconnect_and_kill(broker: LocalBroker) -> None:
    watcher = Client(broker.port, V5, "pwill-w")
    try:
        watcher.subscribe("pwill/#")
        polite = Client(broker.port, V5, "pwill-a", will=("pwill/a", b"x", 1, False))
        polite.close()
        rude = Client(broker.port, V311, "pwill-b", will=("pwill/b", b"y", 1, False))
        sock = rude.client.socket()
        assert isinstance(sock, socket.socket)
        sock.shutdown(socket.SHUT_RDWR)  # the network goes away under paho
        assert wait_for(lambda: watcher.payloads("pwill/b") == [b"y"], 5)
        rude.client.loop_stop()
        assert watcher.payloads("pwill/a") == []
    finally:
        watcher.close()


# ---------------------------------------------------------------------------- shared subscriptions


def test_shared_subscription_round_robin(broker: LocalBroker) -> None:
    members = [Client(broker.port, V5, f"share-m{i}") for i in range(3)]
    plain = Client(broker.port, V5, "share-plain")
    other_group = Client(broker.port, V5, "share-g2")
    pub = Client(broker.port, V5, "share-p")
    try:
        for m in members:
            m.subscribe("$share/console/sites/+/event")
        other_group.subscribe("$share/audit/sites/#")
        plain.subscribe("sites/#")
        for i in range(30):
            pub.publish(f"sites/s{i % 4}/event", str(i))
        assert wait_for(lambda: sum(len(m.got()) for m in members) == 30, 5)
        counts = [len(m.got()) for m in members]
        assert counts == [10, 10, 10]  # round robin
        got = sorted(int(p) for m in members for p in m.payloads())
        assert got == list(range(30))  # each message to exactly one member
        assert wait_for(lambda: len(plain.got()) == 30 and len(other_group.got()) == 30, 5)
        # a member leaves: the others share its part
        members[0].close()
        for i in range(30, 40):
            pub.publish("sites/s0/event", str(i))
        assert wait_for(lambda: len(members[1].got()) + len(members[2].got()) == 30, 5)
        assert [len(members[1].got()), len(members[2].got())] == [15, 15]
    finally:
        for c in (*members[1:], plain, other_group, pub):
            c.close()


# ---------------------------------------------------------------------------- bad clients


def test_malformed_packet_closes_that_client_only(broker: LocalBroker) -> None:
    good = Client(broker.port, V311, "bad-good")
    try:
        good.subscribe("bad/#")
        cases = [
            packet(PUBLISH, 0b0110, encode_str("bad/x") + b"\x00\x01"),  # QoS 3
            packet(PUBLISH, 0b0010, encode_str("bad/x") + b"\x00\x00" + b"p"),  # QoS 1, id 0
            packet(PUBLISH, 0, b"\x00\x09bad"),  # topic length beyond the packet
            packet(PUBLISH, 0, encode_str("bad/+")),  # wildcard in a topic name
            packet(SUBSCRIBE, 0, b"\x00\x01" + encode_str("bad/#") + b"\x01"),  # flags not 0010
            b"\x30\xff\xff\xff\xff\x01",  # remaining length of 5 bytes
            packet(CONNECT, 0, b""),  # a second CONNECT
            b"\xf0\x00",  # AUTH in MQTT 3.1.1
        ]
        for i, bad in enumerate(cases):
            raw = Raw(broker.port)
            raw.connect(f"bad-{i}", will=("bad/will", str(i).encode(), 0, False))
            raw.send(bad)
            assert raw.closed_by_broker(), f"case {i} left the connection open"
            raw.close()
            will = str(i).encode()
            assert wait_for(lambda: will in good.payloads("bad/will"), 5)  # noqa: B023
        # first packet not CONNECT; garbage instead of a protocol name
        for junk in (packet(PINGREQ, 0, b""), b"\x10\x04\x00\x09MQ"):
            raw = Raw(broker.port)
            raw.send(junk)
            assert raw.closed_by_broker()
            raw.close()
        good.publish("bad/alive", "yes")  # the broker and the other client are fine
        assert wait_for(lambda: b"yes" in good.payloads(), 5)
    finally:
        good.close()


def test_v5_reason_codes_for_refusals(broker: LocalBroker) -> None:
    # topic aliases are not offered: using one anyway → DISCONNECT 0x94
    raw = Raw(broker.port)
    _, _, ack = raw.connect("rc-alias", 5)
    assert ack[:2] == b"\x00\x00"
    props = encode_props([(0x23, 1)])
    raw.send(packet(PUBLISH, 0, encode_str("rc/x") + encode_varint(len(props)) + props + b"p"))
    assert raw.read() == (DISCONNECT, 0, b"\x94\x00")
    assert raw.closed_by_broker()
    raw.close()
    # a packet over the maximum size → DISCONNECT 0x95, before the broker buffers it
    raw = Raw(broker.port)
    raw.connect("rc-big", 5)
    raw.send(bytes([PUBLISH << 4]) + encode_varint(2 * 1024 * 1024))
    assert raw.read() == (DISCONNECT, 0, b"\x95\x00")
    assert raw.closed_by_broker()
    raw.close()
    # enhanced authentication → CONNACK 0x8C
    raw = Raw(broker.port)
    _, _, ack = raw.connect("rc-auth", 5, props=encode_props([(0x15, "SCRAM-SHA-1")]))
    assert ack[:2] == b"\x00\x8c"
    raw.close()
    # MQTT 3.1 (level 3) is not spoken: CONNACK "unacceptable protocol version"
    raw = Raw(broker.port)
    raw.send(packet(CONNECT, 0, encode_str("MQTT") + b"\x03\x02\x00\x3c" + encode_str("old")))
    assert raw.read() == (CONNACK, 0, b"\x00\x01")
    raw.close()
    # an empty client id in MQTT 5 is given one, named in CONNACK
    raw = Raw(broker.port)
    _, _, ack = raw.connect("", 5)
    r = Reader(ack, 2)
    assert dict(r.properties())[0x12].startswith("mini-")
    raw.close()


def test_v5_unsuback_reason_codes_and_session_takeover(broker: LocalBroker) -> None:
    c = Client(broker.port, V5, "unsub")
    try:
        c.subscribe("unsub/a")
        c.client.unsubscribe(["unsub/a", "unsub/never"])
        assert wait_for(lambda: bool(c.unsubacks), 5)
        assert [rc.value for rc in c.unsubacks[0]] == [0x00, 0x11]
        c.client.reconnect_delay_set(30, 60)
        thief = Client(broker.port, V5, "unsub")  # same client id
        assert wait_for(lambda: bool(c.disconnects), 5)
        assert c.disconnects[0].value == 0x8E  # session taken over
        thief.close()
    finally:
        c.close()


def test_unknown_first_connect_is_dropped_by_keepalive_on_the_broker_clock() -> None:
    """In-process broker on a clock the test moves: keepalive x 1.5 without a packet → will."""
    now = [1000.0]
    ready = threading.Event()
    box: dict[str, Any] = {}

    def run() -> None:
        async def main() -> None:
            b = MiniBroker(clock=lambda: now[0])
            box["broker"] = b
            box["port"] = await b.start("127.0.0.1", 0)
            box["loop"] = asyncio.get_running_loop()
            box["stop"] = asyncio.Event()
            ready.set()
            await box["stop"].wait()
            await b.stop()

        asyncio.run(main())

    t = threading.Thread(target=run, daemon=True)
    t.start()
    assert ready.wait(5)
    port, loop, b = box["port"], box["loop"], box["broker"]

    def tick() -> None:
        done = threading.Event()

        def both() -> None:
            b.tick()
            done.set()

        loop.call_soon_threadsafe(both)
        assert done.wait(5)

    watcher = Raw(port)
    watcher.connect("ka-watch", keepalive=0)  # keepalive 0: never timed out
    watcher.send(packet(SUBSCRIBE, 2, b"\x00\x01" + encode_str("ka/#") + b"\x00"))
    assert watcher.read()[0] == SUBACK  # type: ignore[index]
    quiet = Raw(port)
    quiet.connect("ka-quiet", keepalive=10, will=("ka/quiet", b"lost", 0, False))
    chatty = Raw(port)
    chatty.connect("ka-chatty", keepalive=10, will=("ka/chatty", b"lost", 0, False))
    try:
        now[0] += 14.0
        chatty.send(packet(PINGREQ, 0, b""))
        assert chatty.read() == (PINGRESP, 0, b"")
        tick()
        now[0] += 1.5  # quiet: 15.5 s of silence > 1.5 x 10 s; chatty: 1.5 s
        tick()
        got = watcher.read()
        assert got is not None and got[0] == PUBLISH
        assert Reader(got[2]).string() == "ka/quiet"
        assert quiet.closed_by_broker()
        chatty.send(packet(PINGREQ, 0, b""))
        assert chatty.read() == (PINGRESP, 0, b"")  # still connected
        now[0] += 100.0  # watcher (keepalive 0) stays, chatty goes
        tick()
        got = watcher.read()
        assert got is not None and Reader(got[2]).string() == "ka/chatty"
        # a socket that never sends CONNECT is closed too
        silent = socket.create_connection(("127.0.0.1", port), timeout=5)
        time.sleep(0.1)  # let the broker accept it before the clock moves
        now[0] += 11.0
        tick()
        assert silent.recv(10) == b""
        silent.close()
    finally:
        for r in (watcher, quiet, chatty):
            r.close()
        loop.call_soon_threadsafe(box["stop"].set)
        t.join(5)


# ---------------------------------------------------------------------------- sessions


def test_persistent_session_queues_while_away_and_survives_a_restart(tmp_path: Path) -> None:
    b = start_local_broker(free_port(), tmp_path, kind="embedded", persistent=True)
    try:
        sub = Client(b.port, V311, "keeper", clean=False)
        sub.subscribe("keep/#")
        assert sub.session_present is False
        sub.close()
        pub = Client(b.port, V5, "keep-p")
        for i in range(5):
            pub.publish("keep/x", str(i), qos=1)
        pub.publish("keep/x", "qos0 is not queued", qos=0)
        pub.publish("keep/ret", "retained", retain=True)
        pub.close()
        b.stop()  # SIGTERM: the broker saves sessions and retained messages
        b.start()
        sub = Client(b.port, V311, "keeper", clean=False)
        assert sub.session_present is True
        assert wait_for(lambda: len(sub.payloads("keep/x")) == 5, 5)
        assert sub.payloads("keep/x") == [str(i).encode() for i in range(5)]
        sub.close()
        fresh = Client(b.port, V311, "keeper", clean=True)  # clean session: nothing kept
        assert fresh.session_present is False
        late = Client(b.port, V5, "keep-late")
        late.subscribe("keep/ret")
        assert wait_for(lambda: late.payloads() == [b"retained"], 5)
        fresh.close()
        late.close()
    finally:
        b.stop()


def test_v5_session_expiry_keeps_the_session(broker: LocalBroker) -> None:
    sub = Client(broker.port, V5, "exp", clean=True, expiry=300)
    sub.subscribe("exp/x")
    sub.close()
    pub = Client(broker.port, V5, "exp-p")
    pub.publish("exp/x", "while away")
    pub.close()
    sub = Client(broker.port, V5, "exp", clean=False, expiry=0)
    try:
        assert sub.session_present is True
        assert wait_for(lambda: sub.payloads() == [b"while away"], 5)
    finally:
        sub.close()


# ---------------------------------------------------------------------------- load


def test_large_fan_out(broker: LocalBroker) -> None:
    subs = [Client(broker.port, V5 if i % 2 else V311, f"fan-{i}") for i in range(40)]
    pub = Client(broker.port, V5, "fan-p")
    try:
        for s in subs:
            s.subscribe("fan/#")
        n = 250
        for i in range(n):
            pub.client.publish(f"fan/{i % 7}", str(i), qos=1)
        want = [str(i).encode() for i in range(n)]
        assert wait_for(lambda: all(len(s.got()) >= n for s in subs), 30)
        for s in subs:
            assert s.payloads() == want
    finally:
        for c in (*subs, pub):
            c.close()


# ---------------------------------------------------------------------------- process, helper


def test_command_line_prints_listening_and_exits_0_on_sigterm(tmp_path: Path) -> None:
    port = free_port()
    p = subprocess.Popen(
        [sys.executable, "-m", "controller.mini_broker", "-p", str(port)],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )
    try:
        assert p.stdout is not None
        assert p.stdout.readline().decode().strip() == f"listening on 127.0.0.1:{port}"
        c = Client(port, V5, "cli")
        c.close()
        p.send_signal(signal.SIGTERM)
        assert p.wait(10) == 0
    finally:
        if p.poll() is None:
            p.kill()
            p.wait()
    bad = subprocess.run(
        [sys.executable, "-m", "controller.mini_broker", "-p", "70000"],
        cwd=ROOT,
        capture_output=True,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )
    assert bad.returncode == 2 and b"port must be" in bad.stderr
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        taken = subprocess.run(
            [sys.executable, "-m", "controller.mini_broker", "-p", str(busy.getsockname()[1])],
            cwd=ROOT,
            capture_output=True,
            env={**os.environ, "PYTHONPATH": str(ROOT)},
        )
        assert taken.returncode == 1 and b"cannot listen on 127.0.0.1:" in taken.stderr
        lb = LocalBroker(busy.getsockname()[1], tmp_path, kind="embedded")
        with pytest.raises(RuntimeError, match="already in use"):
            lb.start()


def test_start_local_broker_env_choice_restart_and_kill(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("OFFICEGUARD_BROKER", "embedded")
    port = free_port()
    b = start_local_broker(port, tmp_path)
    try:
        assert b.kind == "embedded" and b.url == f"mqtt://127.0.0.1:{port}"
        Client(port, V311, "lb").close()
        b.stop()
        with pytest.raises(OSError):
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
        b.start()  # again, same port
        Client(port, V311, "lb").close()
        b.kill()
        assert b.proc is None
    finally:
        b.stop()
    monkeypatch.setenv("OFFICEGUARD_BROKER", "nonsense")
    with pytest.raises(ValueError, match="OFFICEGUARD_BROKER"):
        LocalBroker(port, tmp_path)
    monkeypatch.delenv("OFFICEGUARD_BROKER")
    auto = LocalBroker(port, tmp_path)
    assert auto.kind == ("mosquitto" if shutil_which_mosquitto() else "embedded")


def shutil_which_mosquitto() -> bool:
    from controller.mini_broker import mosquitto_binary

    return mosquitto_binary() is not None


# ---------------------------------------------------------------------------- throughput


def _nodelay(c: paho.Client, u: Any, sock: Any) -> None:
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)


def _cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _subscriber(port: int, n: int, nodelay: bool, conn: Any) -> None:
    """In its own process: subscribe at QoS 1, say ready, report when n messages arrived."""
    done = threading.Event()
    count = [0]

    def on_message(c: paho.Client, u: Any, m: paho.MQTTMessage) -> None:
        count[0] += 1
        if count[0] == n:
            done.set()

    sub = paho.Client(CallbackAPIVersion.VERSION2, client_id="bench-sub")
    sub.on_message = on_message
    if nodelay:
        sub.on_socket_open = _nodelay
    subscribed = threading.Event()
    sub.on_subscribe = lambda *a: subscribed.set()
    sub.connect("127.0.0.1", port)
    sub.loop_start()
    sub.subscribe("bench/x", qos=1)
    conn.send(subscribed.wait(10))
    conn.send((done.wait(120), count[0], time.perf_counter()))
    sub.disconnect()
    sub.loop_stop()


def measure(
    port: int, n: int, payload: bytes = b"x" * 100, nodelay: bool = False, broker_pid: int = 0
) -> tuple[float, float]:
    """QoS 1 messages per second from one paho publisher to one paho subscriber (QoS 1, in
    another process), and the broker's CPU microseconds per message (if broker_pid is given).

    `nodelay`: the clients' sockets set TCP_NODELAY (paho does not), so that their small PUBACK
    writes are not held back by Nagle's algorithm."""
    import multiprocessing

    ctx = multiprocessing.get_context("fork")
    here, there = ctx.Pipe()
    proc = ctx.Process(target=_subscriber, args=(port, n, nodelay, there))
    proc.start()
    try:
        assert here.poll(10) and here.recv() is True
        pub = paho.Client(CallbackAPIVersion.VERSION2, client_id="bench-pub")
        pub.max_inflight_messages_set(1000)
        if nodelay:
            pub.on_socket_open = _nodelay
        pub.connect("127.0.0.1", port)
        pub.loop_start()
        cpu0 = _cpu_seconds(broker_pid) if broker_pid else 0.0
        t0 = time.perf_counter()
        infos = [pub.publish("bench/x", payload, qos=1) for _ in range(n)]
        assert here.poll(120)
        ok, count, t1 = here.recv()
        for info in infos[-10:]:
            info.wait_for_publish(10)
        cpu = (_cpu_seconds(broker_pid) - cpu0) if broker_pid else 0.0
        pub.disconnect()
        pub.loop_stop()
        assert ok, f"only {count} of {n} arrived"
    finally:
        proc.join(10)
    return n / (t1 - t0), cpu / n * 1e6


def measure_raw(port: int, n: int, payload: bytes = b"x" * 100) -> tuple[float, float]:
    """The broker's own capacity: QoS 1 msgs/s between two raw-socket clients that pipeline
    (the publisher writes in batches of 500, the subscriber acknowledges a whole read at once),
    so the clients cost little. Returns (msgs/s, seconds to the last PUBACK)."""
    sub = Raw(port)
    sub.connect("raw-bench-sub")
    sub.send(packet(SUBSCRIBE, 2, b"\x00\x01" + encode_str("bench/raw") + b"\x01"))
    assert sub.read() == (SUBACK, 0, b"\x00\x01\x01")
    pub = Raw(port)
    pub.connect("raw-bench-pub")
    received = [0]
    acked = [0]

    def subscriber() -> None:
        sub.sock.settimeout(60)
        buf = b""
        while received[0] < n:
            chunk = sub.sock.recv(1 << 16)
            if not chunk:
                return
            buf += chunk
            acks = []
            while len(buf) >= 2:
                r = Reader(buf, 1)
                try:
                    length = r.varint()
                except Exception:
                    break
                if len(buf) < r.pos + length:
                    break
                body = buf[r.pos : r.pos + length]
                if buf[0] >> 4 == PUBLISH:
                    t = Reader(body)
                    t.string()
                    acks.append(b"\x40\x02" + body[t.pos : t.pos + 2])
                    received[0] += 1
                buf = buf[r.pos + length :]
            sub.sock.sendall(b"".join(acks))

    def ack_reader() -> None:
        pub.sock.settimeout(60)
        got = 0
        while got < 4 * n:
            chunk = pub.sock.recv(1 << 16)
            if not chunk:
                return
            got += len(chunk)
        acked[0] = got // 4

    threads = [threading.Thread(target=subscriber), threading.Thread(target=ack_reader)]
    for t in threads:
        t.start()
    topic = encode_str("bench/raw")
    t0 = time.perf_counter()
    for start in range(0, n, 500):
        batch = [
            packet(PUBLISH, 2, topic + struct.pack("!H", i % 65535 + 1) + payload)
            for i in range(start, min(n, start + 500))
        ]
        pub.send(b"".join(batch))
    for t in threads:
        t.join(120)
    dt = time.perf_counter() - t0
    sub.close()
    pub.close()
    assert received[0] == n and acked[0] == n, (received[0], acked[0])
    return n / dt, dt


def test_raw_pipelined_clients_get_every_message_and_every_puback(broker: LocalBroker) -> None:
    rate, _ = measure_raw(broker.port, 5000)
    print(f"embedded broker, pipelined raw clients: {rate:.0f} QoS 1 msgs/s (figure only)")


def test_throughput_run_delivers_everything(broker: LocalBroker) -> None:
    assert broker.proc is not None
    rate, cpu = measure(broker.port, 2000, broker_pid=broker.proc.pid)
    print(f"embedded broker: {rate:.0f} QoS 1 msgs/s, {cpu:.0f} us CPU/msg (figures only)")


if __name__ == "__main__":
    import tempfile

    n = int(sys.argv[1]) if len(sys.argv) > 1 else 20000
    with tempfile.TemporaryDirectory() as d:
        for kind in ("mosquitto", "embedded"):
            try:
                # no limit on messages in flight or queued: nothing dropped for a slow subscriber
                b = start_local_broker(
                    free_port(),
                    Path(d) / kind,
                    kind=kind,
                    extra_conf="max_inflight_messages 0\nmax_queued_messages 0\n",
                    embedded_args=["--max-queued", "0"],
                )
            except RuntimeError as e:
                print(f"{kind}: not available ({e})")
                continue
            try:
                assert b.proc is not None
                for nodelay in (False, True):
                    runs = [measure(b.port, n, nodelay=nodelay, broker_pid=b.proc.pid)]
                    runs += [measure(b.port, n, nodelay=nodelay, broker_pid=b.proc.pid)]
                    runs += [measure(b.port, n, nodelay=nodelay, broker_pid=b.proc.pid)]
                    how = "paho + TCP_NODELAY" if nodelay else "plain paho"
                    figures = ", ".join(f"{r:.0f} msgs/s ({c:.0f} us CPU/msg)" for r, c in runs)
                    print(f"{kind:9s} {how:18s} QoS 1, {n} msgs: {figures}")
                raws = [measure_raw(b.port, n)[0] for _ in range(3)]
                figures = ", ".join(f"{r:.0f}" for r in raws)
                print(f"{kind:9s} {'pipelined raw':18s} QoS 1, {n} msgs: {figures} msgs/s")
            finally:
                b.stop()
