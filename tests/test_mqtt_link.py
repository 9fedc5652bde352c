"""Integration tests of the broker link against a real Mosquitto started by the tests."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from controller.config import Mqtt
from controller.mqtt import MqttConfigError, MqttLink
from tests.mqtt_broker import Broker, Recorder, until, wait_for

SITE = "office-a"
STATUS = f"officeguard/{SITE}/status"
ROOT = Path(__file__).resolve().parent.parent



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
        assert await sender.publish("officeguard/office-a/cmd", b"two", qos=1)
        assert await until(lambda: len(got) == 2)
        assert got[1][1] == b"two"
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
from controller.mqtt import MqttLink

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
