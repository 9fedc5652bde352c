"""Integration tests of the broker link against a real Mosquitto started by the tests: the
status and its last will, reconnects, the broker's limits (Server Keep Alive, Receive Maximum,
Maximum Packet Size), refusals, a broker gone silent, and what is not MQTT at all."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from controller.config import Mqtt
from controller.demo.mosquitto import LocalMosquitto
from controller.reporting import mqtt
from controller.reporting.mqtt import MqttConfigError, MqttLink
from tests.mqtt_broker import Broker, Recorder, until, wait_for

SITE = "office-a"
STATUS = f"officeguard/{SITE}/status"
ROOT = Path(__file__).resolve().parents[2]


@contextmanager
def mosquitto(workdir: Path, conf: str = "") -> Iterator[LocalMosquitto]:
    """A Mosquitto of the test's own, with `conf` lines added to the file it is started with."""
    b = LocalMosquitto(workdir, extra_conf=conf)
    b.start()
    try:
        yield b
    finally:
        b.stop()


def make_link(url: str, client_id: str | None = None, **kw: object) -> MqttLink:
    cfg = Mqtt(url=url, keepalive="5s", client_id=client_id)
    return MqttLink(cfg, SITE, reconnect_min=0.05, reconnect_max=0.2, **kw)  # type: ignore[arg-type]


def statuses(rec: Recorder) -> list[tuple[dict[str, object], bool]]:
    return [(json.loads(p), r) for t, p, r in rec.snapshot() if t == STATUS]


def test_connects_and_publishes_retained_online_status(broker: Broker) -> None:
    async def main() -> None:
        link = make_link(broker.url, version="9.9")
        seen: list[str] = []
        link.connect_listeners.append(lambda: seen.append("up"))
        assert not link.connected
        link.start()
        assert await until(lambda: link.connected)
        assert seen == ["up"]
        assert link.client_id == "officeguard-office-a"
        # a client arriving later gets the retained status
        rec = await asyncio.to_thread(Recorder, broker.port, STATUS, "late")
        assert await until(lambda: bool(statuses(rec)))
        payload, retained = statuses(rec)[0]
        assert retained is True
        assert payload["online"] is True and payload["version"] == "9.9"
        assert isinstance(payload["ts"], str) and "T" in payload["ts"]
        rec.close()
        await link.close()

    asyncio.run(main())


def test_publish_future_true_on_puback_false_when_offline(broker: Broker) -> None:
    async def main() -> None:
        link = make_link(broker.url)
        offline = link.publish("officeguard/office-a/x", "a", qos=1)
        assert offline.done() and offline.result() is False  # not started: refused at once
        rec = await asyncio.to_thread(Recorder, broker.port, "officeguard/office-a/x", "rx")
        link.start()
        assert await until(lambda: link.connected)
        fut = link.publish("officeguard/office-a/x", "hello", qos=1)
        assert await asyncio.wait_for(fut, 5) is True
        fut0 = link.publish("officeguard/office-a/x", b"q0", qos=0)
        assert await asyncio.wait_for(fut0, 5) is True
        assert wait_for(lambda: len(rec.snapshot()) == 2, 5)
        assert [p for _, p, _ in rec.snapshot()] == [b"hello", b"q0"]
        bad = link.publish("officeguard/+/x", "wildcards are not allowed", qos=1)
        assert bad.done() and bad.result() is False
        rec.close()
        await link.close()

    asyncio.run(main())


def test_subscribe_delivers_on_loop_and_survives_broker_restart(broker: Broker) -> None:
    async def main() -> None:
        link = make_link(broker.url)
        got: list[tuple[str, bytes]] = []
        downs: list[int] = []
        link.subscribe("officeguard/office-a/cmd", lambda t, p: got.append((t, p)))
        link.disconnect_listeners.append(lambda: downs.append(1))
        link.start()
        assert await until(lambda: link.connected)
        sender = make_link(broker.url, client_id="sender")
        sender.start()
        assert await until(lambda: sender.connected)
        assert await sender.publish("officeguard/office-a/cmd", b"one", qos=1)
        assert await until(lambda: len(got) == 1)
        assert got[0] == ("officeguard/office-a/cmd", b"one")

        await asyncio.to_thread(broker.stop)
        assert await until(lambda: not link.connected)
        assert downs == [1]
        # nothing waits on the network while the broker is away
        t0 = time.monotonic()
        assert (await link.publish("officeguard/office-a/y", "z")) is False
        assert time.monotonic() - t0 < 0.5
        await asyncio.to_thread(broker.start)
        assert await until(lambda: link.connected and sender.connected, 10)
        assert link.connects == 2
        # subscribed again by itself: the link's SUBSCRIBE may still be on its way when both
        # are connected, so the sender tries again until one gets through
        for _ in range(20):
            assert await sender.publish("officeguard/office-a/cmd", b"two", qos=1)
            if await until(lambda: len(got) >= 2, 0.5):
                break
        assert got[1] == ("officeguard/office-a/cmd", b"two")
        await sender.close()
        await link.close()

    asyncio.run(main())


def test_clean_close_leaves_retained_offline(broker: Broker) -> None:
    async def main() -> None:
        link = make_link(broker.url)
        link.start()
        assert await until(lambda: link.connected)
        await link.close({"online": False, "reason": "shutdown"})
        assert not link.connected
        rec = await asyncio.to_thread(Recorder, broker.port, STATUS, "after")
        assert await until(lambda: bool(statuses(rec)))
        assert statuses(rec)[-1] == ({"online": False, "reason": "shutdown"}, True)
        rec.close()

    asyncio.run(main())


_CHILD = """
import asyncio, sys
from controller.config import Mqtt
from controller.reporting.mqtt import MqttLink

async def main():
    link = MqttLink(Mqtt(url=sys.argv[1], keepalive="60s"), "office-a")
    link.connect_listeners.append(lambda: print("up", flush=True))
    link.start()
    await asyncio.sleep(30)

asyncio.run(main())
"""


def test_last_will_published_when_the_process_dies(broker: Broker) -> None:
    rec = Recorder(broker.port, STATUS, "watcher")
    child = subprocess.Popen(
        [sys.executable, "-c", _CHILD, broker.url],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )
    try:
        assert child.stdout is not None
        assert child.stdout.readline().strip() == b"up"
        assert wait_for(lambda: any(p["online"] is True for p, _ in statuses(rec)), 5)
        child.send_signal(signal.SIGKILL)
        child.wait(5)
        # keepalive is 60 s: the will arrives because the socket closed, not by timeout
        assert wait_for(lambda: statuses(rec)[-1][0] == {"online": False}, 5)
    finally:
        if child.poll() is None:
            child.kill()
            child.wait(5)
        rec.close()
    late = Recorder(broker.port, STATUS, "late")
    assert wait_for(lambda: bool(statuses(late)), 5)
    assert statuses(late)[-1] == ({"online": False}, True)  # the will is retained
    late.close()


def test_config_errors_are_clear(tmp_path: Path) -> None:
    missing = tmp_path / "nope.pass"
    cfg = Mqtt(url="mqtt://127.0.0.1:1883", username="u", password_file=str(missing))
    with pytest.raises(MqttConfigError, match="password file"):
        MqttLink(cfg, SITE)
    cfg = Mqtt(url="mqtts://127.0.0.1", ca_file=str(tmp_path / "no-ca.pem"))
    with pytest.raises(MqttConfigError, match="TLS"):
        MqttLink(cfg, SITE)
    (tmp_path / "ok.pass").write_text("s3cret\n")
    link = MqttLink(
        Mqtt(url="mqtts://broker.example", username="u", password_file=str(tmp_path / "ok.pass")),
        SITE,
    )
    assert (link.host, link.port) == ("broker.example", 8883)
    assert link._client.password == "s3cret"  # noqa: SLF001 - read from file, trimmed
    v311 = MqttLink(Mqtt(url="mqtt://h:1884", protocol="3.1.1", client_id="x"), SITE)
    assert (v311.port, v311.client_id, v311.v5) == (1884, "x", False)


@pytest.mark.integration
def test_a_broker_with_a_lower_max_keepalive_does_not_make_the_site_flap_offline(
    tmp_path: Path,
) -> None:
    """Mosquitto's max_keepalive 10 tells an MQTT 5 client (Server Keep Alive) to ping every
    10 s and drops it after 15 s of silence, publishing its last will. The link asks for 60 s:
    it must ping at the broker's pace and stay connected, idle, past 1.5 x the cap."""
    with mosquitto(tmp_path / "b", "max_keepalive 10\n") as broker:
        rec = Recorder(broker.port, STATUS, "watcher")

        async def main() -> None:
            link = MqttLink(Mqtt(url=broker.url, keepalive="60s"), SITE)
            link.start()
            assert await until(lambda: link.connected, timeout=20)  # a busy machine
            assert (link.requested_keepalive, link.keepalive) == (60, 10)
            t0 = time.monotonic()
            while time.monotonic() - t0 < 18:  # past the broker's 15 s, idle
                await asyncio.sleep(0.5)
                assert link.connected
            assert link.connects == 1 and link.last_error is None
            await link.close()

        asyncio.run(main())
        wait_for(lambda: len(statuses(rec)) >= 2, timeout=10)  # the goodbye reaches the watcher
        onlines = [p["online"] for p, _ in statuses(rec)]
        rec.close()
    assert onlines == [True, False]  # online, then the clean goodbye: no last will between


def test_the_brokers_receive_maximum_bounds_what_is_in_flight(tmp_path: Path) -> None:
    # Mosquitto sends its max_inflight_messages as Receive Maximum to MQTT 5 clients
    with mosquitto(tmp_path / "b", "max_inflight_messages 3\n") as broker:
        rec = Recorder(broker.port, f"officeguard/{SITE}/e", "rx")

        async def main() -> None:
            link = make_link(broker.url)
            link.start()
            assert await until(lambda: link.connected)
            assert link._send_quota == 3  # noqa: SLF001 - from the CONNACK
            futs = [link.publish(f"officeguard/{SITE}/e", f"m{i}") for i in range(40)]
            most = 0
            while not all(f.done() for f in futs):
                most = max(most, len(link._pending))  # noqa: SLF001 - handed to paho
                await asyncio.sleep(0)
            assert [f.result() for f in futs] == [True] * 40
            assert 1 <= most <= 3
            assert link.connects == 1  # the broker never had to drop us for it
            await link.close()

        asyncio.run(main())
        assert wait_for(lambda: len(rec.snapshot()) == 40)
        assert [p for _, p, _ in rec.snapshot()] == [f"m{i}".encode() for i in range(40)]
        rec.close()


def test_a_refused_message_says_why_and_the_link_goes_on(tmp_path: Path) -> None:
    """A PUBACK with a failure reason (an ACL) and a message over the broker's Maximum Packet
    Size are refusals of that message, told with their reason; the connection stays up."""
    acl = tmp_path / "acl"
    acl.write_text(f"topic readwrite officeguard/{SITE}/status\ntopic readwrite officeguard/{SITE}/ok\n")
    conf = f"max_packet_size 1024\nacl_file {acl}\n"
    with mosquitto(tmp_path / "b", conf) as broker:

        async def main() -> None:
            link = make_link(broker.url)
            link.start()
            assert await until(lambda: link.connected)
            told: list[tuple[bool, str | None]] = []

            def done(ok: bool, refused: str | None = None) -> None:
                told.append((ok, refused))

            assert link.send(f"officeguard/{SITE}/denied", "x", 1, False, done)
            assert link.send(f"officeguard/{SITE}/ok", "x" * 2000, 1, False, done)
            assert link.send(f"officeguard/{SITE}/ok", "small", 1, False, done)
            assert await until(lambda: len(told) == 3)
            assert (True, None) in told
            refusals = sorted(str(why) for ok, why in told if not ok)
            assert len(refusals) == 2
            assert "over the broker's Maximum Packet Size of 1024" in refusals[0]
            assert "Not authorized (code 0x87)" in refusals[1]
            assert await link.publish(f"officeguard/{SITE}/denied", "y") is False  # futures too
            assert link.connected and link.connects == 1
            await link.close()

        asyncio.run(main())


def test_mqtt_311_connects_and_delivers(tmp_path: Path) -> None:
    with mosquitto(tmp_path / "b") as broker:

        async def main() -> None:
            link = MqttLink(
                Mqtt(url=broker.url, keepalive="5s", protocol="3.1.1"),
                SITE,
                reconnect_min=0.05,
                reconnect_max=0.2,
            )
            link.start()
            assert await until(lambda: link.connected)
            assert not link.v5 and link._client.protocol == 4  # noqa: SLF001
            assert await link.publish(f"officeguard/{SITE}/x", "hello") is True
            await link.close()

        asyncio.run(main())


def test_a_broker_that_stops_answering_is_dropped_and_reconnected(tmp_path: Path) -> None:
    """Messages in flight and no PUBACK for ack_timeout: the link gives the connection up
    (it would otherwise wait for the keepalive, here 60 s) and connects again."""
    with mosquitto(tmp_path / "b") as broker:
        assert broker.proc is not None

        async def main() -> None:
            link = MqttLink(
                Mqtt(url=broker.url, keepalive="60s"),
                SITE,
                reconnect_min=0.05,
                reconnect_max=0.2,
                ack_timeout=1.0,
            )
            link.start()
            assert await until(lambda: link.connected)
            assert broker.proc is not None
            broker.proc.send_signal(signal.SIGSTOP)
            try:
                fut = link.publish(f"officeguard/{SITE}/x", "into the void")
                assert await until(lambda: not link.connected, 5)
                # what was in flight is settled in the turn after the loss (_settle_lost)
                assert await until(fut.done, 5) and fut.result() is False
                assert "no PUBACK from the broker" in str(link.last_error)
            finally:
                broker.proc.send_signal(signal.SIGCONT)
            assert await until(lambda: link.connected, 10)
            assert link.connects == 2
            assert await link.publish(f"officeguard/{SITE}/x", "back") is True
            await link.close()

        asyncio.run(main())


def test_a_connect_that_times_out_says_why_and_garbage_drops_only_the_connection(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Not a broker: one listener never answers the CONNECT, another answers bytes that are
    not MQTT. The link logs why, keeps retrying, and never crashes."""
    monkeypatch.setattr(mqtt, "CONNECT_TIMEOUT", 0.3)

    async def main() -> None:
        conns: list[asyncio.StreamWriter] = []

        async def silent(r: asyncio.StreamReader, w: asyncio.StreamWriter) -> None:
            conns.append(w)

        async def garbage(r: asyncio.StreamReader, w: asyncio.StreamWriter) -> None:
            conns.append(w)
            await r.read(1)
            w.write(b"\xff\xff\xff\xff\xff\x00garbage")

        servers = []
        for handler in (silent, garbage):
            servers.append(await asyncio.start_server(handler, "127.0.0.1", 0))
        ports = [srv.sockets[0].getsockname()[1] for srv in servers]
        try:
            quiet = make_link(f"mqtt://127.0.0.1:{ports[0]}")
            quiet.start()
            assert await until(lambda: len(conns) >= 2, 5)  # tried, gave up, tried again
            assert "no answer to CONNECT within 0.3 s" in str(quiet.last_error)
            await quiet.close()
            n = len(conns)
            noisy = make_link(f"mqtt://127.0.0.1:{ports[1]}")
            noisy.start()
            assert await until(lambda: len(conns) >= n + 2, 5)
            assert not noisy.connected and noisy.last_error
            await noisy.close()
        finally:
            for w in conns:
                w.close()
            for srv in servers:
                srv.close()
                await srv.wait_closed()

    asyncio.run(main())


def test_tcp_nodelay_is_set_on_the_brokers_socket(broker: Broker) -> None:
    async def main() -> None:
        link = make_link(broker.url)
        link.start()
        assert await until(lambda: link.connected)
        sock = link._client.socket()  # noqa: SLF001
        assert isinstance(sock, socket.socket)
        assert sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY) != 0
        await link.close()

    asyncio.run(main())


def test_closing_while_a_tls_handshake_hangs_returns_at_once(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """paho's connect blocks (TLS handshake) in a worker thread: the loop, and close(), never
    wait for it; the worker's socket is closed when it gives up."""
    monkeypatch.setattr(mqtt, "CONNECT_TIMEOUT", 0.5)

    async def main() -> None:
        conns: list[asyncio.StreamWriter] = []

        async def silent(r: asyncio.StreamReader, w: asyncio.StreamWriter) -> None:
            conns.append(w)

        srv = await asyncio.start_server(silent, "127.0.0.1", 0)
        port = srv.sockets[0].getsockname()[1]
        try:
            link = make_link(f"mqtts://127.0.0.1:{port}")
            link.start()
            assert await until(lambda: bool(conns))
            # the worker is stuck in the handshake, and this coroutine runs: the loop is free
            assert link._opening is not None  # noqa: SLF001
            await link.close()
            assert link._opening is not None and not link.connected  # noqa: SLF001 - not waited for
            assert await until(lambda: link._opening is None)  # noqa: SLF001 - it gives up...
            assert link._client.socket() is None  # noqa: SLF001 - ...and its socket is closed
        finally:
            for w in conns:
                w.close()
            srv.close()
            await srv.wait_closed()

    asyncio.run(main())
