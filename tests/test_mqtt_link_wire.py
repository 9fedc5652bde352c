"""The controller's MQTT link against a scripted broker on a local TCP socket: what a real broker
rarely does on cue (a small Receive Maximum, silence, a malformed packet, a refusal, a
DISCONNECT with a reason, a QoS 2 message sent twice, packets cut at every byte) and the exact
bytes of what the link sends. The tests against Mosquitto are in test_mqtt_link.py."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable

import pytest

from controller.config import Mqtt
from controller.mqtt import MqttLink
from controller.mqtt_wire import (
    CONNACK,
    CONNECT,
    DISCONNECT,
    P_REASON,
    P_RECEIVE_MAX,
    P_SESSION_EXPIRY,
    PINGREQ,
    PUBACK,
    PUBCOMP,
    PUBLISH,
    PUBREC,
    PUBREL,
    SUBACK,
    SUBSCRIBE,
    Reader,
    encode_props,
    encode_str,
    packet,
    prop,
    with_len,
)
from tests.mqtt_broker import until

SITE = "office-a"
Packet = tuple[int, int, bytes]  # type, flags, body


class ScriptedBroker:
    """Accepts connections and hands each one's packets to the test, which answers by hand."""

    def __init__(self) -> None:
        self.conns: list[Conn] = []
        self.server: asyncio.Server | None = None
        self.port = 0

    async def start(self) -> None:
        self.server = await asyncio.start_server(self._accept, "127.0.0.1", 0)
        self.port = self.server.sockets[0].getsockname()[1]

    async def _accept(self, r: asyncio.StreamReader, w: asyncio.StreamWriter) -> None:
        self.conns.append(Conn(r, w))

    async def conn(self, n: int = 0) -> Conn:
        assert await until(lambda: len(self.conns) > n)
        return self.conns[n]

    async def close(self) -> None:
        for c in self.conns:
            c.w.close()
        if self.server is not None:
            self.server.close()
            await self.server.wait_closed()


class Conn:
    def __init__(self, r: asyncio.StreamReader, w: asyncio.StreamWriter) -> None:
        self.r, self.w = r, w

    async def read(self, timeout: float = 5.0) -> Packet:
        async def one() -> Packet:
            first = (await self.r.readexactly(1))[0]
            length, mult = 0, 1
            while True:
                b = (await self.r.readexactly(1))[0]
                length += (b & 0x7F) * mult
                if not b & 0x80:
                    break
                mult *= 128
            return first >> 4, first & 0x0F, await self.r.readexactly(length)

        return await asyncio.wait_for(one(), timeout)

    async def read_type(self, ptype: int) -> Packet:
        while True:
            p = await self.read()
            if p[0] == ptype:
                return p

    def send(self, data: bytes) -> None:
        self.w.write(data)

    async def closed(self, timeout: float = 5.0) -> bool:
        """True once the link has closed (or reset) this connection."""
        try:
            await asyncio.wait_for(self.r.read(), timeout)  # whatever is left, then end of file
        except ConnectionError:
            return True
        except TimeoutError:
            return False
        return True


def connack(rc: int = 0, props: list[tuple[int, object]] | None = None, v5: bool = True) -> bytes:
    body = bytes([0, rc]) + (with_len(encode_props(props or [])) if v5 else b"")
    return packet(CONNACK, 0, body)


def make_link(port: int, **cfg: object) -> MqttLink:
    c = Mqtt(url=f"mqtt://127.0.0.1:{port}", keepalive="5s", **cfg)
    return MqttLink(c, SITE, reconnect_min=0.02, reconnect_max=0.05)


def publish_mid(body: bytes) -> int:
    r = Reader(body)
    r.string()
    return r.u16()


def run(test: Callable[[ScriptedBroker], Awaitable[None]]) -> None:
    async def main() -> None:
        broker = ScriptedBroker()
        await broker.start()
        try:
            await test(broker)
        finally:
            await broker.close()

    asyncio.run(main())


async def accept(broker: ScriptedBroker, link: MqttLink, n: int = 0, **kw: object) -> Conn:
    """Let the link connect (connection n) and answer its CONNECT; skip its status publish."""
    c = await broker.conn(n)
    t, _, _ = await c.read()
    assert t == CONNECT
    c.send(connack(**kw))  # type: ignore[arg-type]
    t, _, body = await c.read_type(PUBLISH)
    assert Reader(body).string() == f"officeguard/{SITE}/status"
    c.send(packet(PUBACK, 0, publish_mid(body).to_bytes(2, "big")))
    assert await until(lambda: link.connected)
    return c


def test_connect_packet_carries_will_credentials_and_clean_start(
    tmp_path: pytest.TempPathFactory,
) -> None:
    async def t(broker: ScriptedBroker) -> None:
        secret = tmp_path / "pw"  # type: ignore[operator]
        secret.write_text("s3cret\n")
        link = make_link(broker.port, username="site-a", password_file=str(secret))
        link.start()
        c = await broker.conn()
        ptype, _, body = await c.read()
        assert ptype == CONNECT
        r = Reader(body)
        assert (r.string(), r.byte()) == ("MQTT", 5)
        flags = r.byte()
        assert flags & 0x02  # clean start
        assert flags & 0x04 and (flags >> 3) & 3 == 1 and flags & 0x20  # will, QoS 1, retained
        assert flags & 0x80 and flags & 0x40  # user name and password
        assert r.u16() == 5  # keepalive
        assert prop(r.properties(), P_SESSION_EXPIRY) == 0
        assert r.string() == "officeguard-office-a"
        r.properties()  # will properties
        assert r.string() == f"officeguard/{SITE}/status"
        assert json.loads(r.binary()) == {"online": False}
        assert (r.string(), r.binary()) == ("site-a", b"s3cret")
        assert r.left() == 0
        await link.close(timeout=0.1)

    run(t)


def test_the_brokers_receive_maximum_bounds_what_is_in_flight() -> None:
    async def t(broker: ScriptedBroker) -> None:
        link = make_link(broker.port)
        link.start()
        c = await accept(broker, link, props=[(P_RECEIVE_MAX, 2)])
        futs = [link.publish(f"officeguard/{SITE}/e", f"m{i}") for i in range(5)]
        first = [await c.read_type(PUBLISH) for _ in range(2)]
        with pytest.raises(TimeoutError):  # a third would break the broker's limit
            await c.read(timeout=0.2)
        got = [p[2] for p in first]
        while len(got) < 5:
            c.send(packet(PUBACK, 0, publish_mid(got[len(got) - 2]).to_bytes(2, "big")))
            got.append((await c.read_type(PUBLISH))[2])
        for body in got[-2:]:
            c.send(packet(PUBACK, 0, publish_mid(body).to_bytes(2, "big")))
        assert [await asyncio.wait_for(f, 5) for f in futs] == [True] * 5
        assert [b[-2:] for b in got] == [f"m{i}".encode() for i in range(5)]
        await link.close(timeout=0.1)

    run(t)


def test_a_refused_publish_and_a_lost_connection_resolve_false() -> None:
    async def t(broker: ScriptedBroker) -> None:
        link = make_link(broker.port)
        link.start()
        c = await accept(broker, link)
        refused = link.publish(f"officeguard/{SITE}/e", "x")
        lost = link.publish(f"officeguard/{SITE}/e", "y")
        body = (await c.read_type(PUBLISH))[2]
        # MQTT 5 PUBACK with reason 0x87 "not authorized"
        c.send(packet(PUBACK, 0, publish_mid(body).to_bytes(2, "big") + b"\x87\x00"))
        assert await asyncio.wait_for(refused, 5) is False
        c.w.close()
        assert await asyncio.wait_for(lost, 5) is False
        assert await until(lambda: not link.connected)
        await accept(broker, link, n=1)  # and it comes back by itself
        assert link.connects == 2
        await link.close(timeout=0.1)

    run(t)


def test_a_silent_broker_is_dropped_after_a_keepalive_and_reconnected() -> None:
    async def t(broker: ScriptedBroker) -> None:
        link = make_link(broker.port)
        link.ping_interval = 0.1  # seconds, instead of waiting 5
        link.start()
        c = await accept(broker, link)
        assert (await c.read_type(PINGREQ))[0] == PINGREQ  # never answered
        assert await c.closed()
        await accept(broker, link, n=1)
        assert link.connects == 2
        await link.close(timeout=0.1)

    run(t)


@pytest.mark.parametrize(
    "garbage",
    [
        b"\x00\x00",  # reserved packet type 0
        b"\x30\xff\xff\xff\xff\x01",  # remaining length of 5 bytes
        b"\x30\x04\x00\x09ab",  # topic length beyond the packet
        b"\x30\x05\x00\x02\xff\xfe\x00",  # topic not UTF-8
    ],
)
def test_a_malformed_packet_drops_the_connection_not_the_link(garbage: bytes) -> None:
    async def t(broker: ScriptedBroker) -> None:
        link = make_link(broker.port)
        got: list[bytes] = []
        link.subscribe(f"officeguard/{SITE}/cmd", lambda tp, p: got.append(p))
        link.start()
        c = await accept(broker, link)
        c.send(garbage)
        assert await c.closed()
        c2 = await accept(broker, link, n=1)
        sub = await c2.read_type(SUBSCRIBE)
        c2.send(packet(SUBACK, 0, sub[2][:2] + b"\x00\x01"))
        c2.send(packet(PUBLISH, 0, encode_str(f"officeguard/{SITE}/cmd") + b"\x00" + b"ok"))
        assert await until(lambda: got == [b"ok"])
        await link.close(timeout=0.1)

    run(t)


def test_a_refused_connection_says_why_and_retries() -> None:
    async def t(broker: ScriptedBroker) -> None:
        link = make_link(broker.port)
        link.start()
        c = await broker.conn()
        await c.read()
        c.send(connack(rc=0x86))
        assert await until(lambda: link.last_error is not None)
        assert "bad user name or password" in str(link.last_error)
        assert not link.connected
        await accept(broker, link, n=1)
        await link.close(timeout=0.1)

    run(t)


def test_a_disconnect_from_the_broker_is_reported_with_its_reason() -> None:
    async def t(broker: ScriptedBroker) -> None:
        link = make_link(broker.port)
        link.start()
        c = await accept(broker, link)
        c.send(packet(DISCONNECT, 0, b"\x89" + with_len(encode_props([(P_REASON, "server busy")]))))
        assert await until(lambda: not link.connected)
        assert "server busy" in str(link.last_error)
        await link.close(timeout=0.1)

    run(t)


def test_incoming_qos2_is_delivered_once_and_every_packet_may_come_cut_in_bytes() -> None:
    async def t(broker: ScriptedBroker) -> None:
        link = make_link(broker.port)
        got: list[tuple[str, bytes]] = []
        link.subscribe(f"officeguard/{SITE}/cmd/#", lambda tp, p: got.append((tp, p)))
        link.start()
        c = await accept(broker, link)
        sub = await c.read_type(SUBSCRIBE)
        assert Reader(sub[2], 3).string() == f"officeguard/{SITE}/cmd/#"
        c.send(packet(SUBACK, 0, sub[2][:2] + b"\x00\x01"))
        topic = f"officeguard/{SITE}/cmd/x"
        q2 = packet(PUBLISH, 0x04, encode_str(topic) + b"\x00\x07" + b"\x00" + b"twice")
        q1 = packet(PUBLISH, 0x02, encode_str(topic) + b"\x00\x08" + b"\x00" + "é".encode())
        for b in q2 + q2 + q1:  # the QoS 2 message re-sent before PUBREL, all one byte at a time
            c.send(bytes([b]))
            await c.w.drain()
        assert (await c.read_type(PUBREC))[2] == b"\x00\x07"
        assert (await c.read_type(PUBREC))[2] == b"\x00\x07"
        assert (await c.read_type(PUBACK))[2] == b"\x00\x08"
        c.send(packet(PUBREL, 2, b"\x00\x07"))
        assert (await c.read_type(PUBCOMP))[2] == b"\x00\x07"
        assert await until(lambda: len(got) == 2)
        assert got == [(topic, b"twice"), (topic, "é".encode())]
        await link.close(timeout=0.1)

    run(t)


def test_mqtt_311_packets_have_no_properties() -> None:
    async def t(broker: ScriptedBroker) -> None:
        link = make_link(broker.port, protocol="3.1.1")
        link.start()
        c = await broker.conn()
        ptype, _, body = await c.read()
        r = Reader(body)
        assert (ptype, r.string(), r.byte()) == (CONNECT, "MQTT", 4)
        c.send(connack(v5=False))
        t, flags, body = await c.read_type(PUBLISH)
        assert flags == 0x03  # QoS 1, retained
        r = Reader(body)
        assert r.string() == f"officeguard/{SITE}/status"
        r.u16()
        assert json.loads(body[r.pos :])["online"] is True  # no property length byte
        c.send(packet(PUBACK, 0, publish_mid(body).to_bytes(2, "big")))
        assert await until(lambda: link.connected)
        fut = link.publish(f"officeguard/{SITE}/hb", "{}", qos=0)
        t, flags, body = await c.read_type(PUBLISH)
        assert flags == 0 and body.endswith(b"{}") and await fut is True
        await link.close(timeout=0.1)

    run(t)
