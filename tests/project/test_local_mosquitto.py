"""The Mosquitto launcher (controller/demo/mosquitto.py) that the demo, the tests and the
benches share, run for real: what it writes, restarts on one port, and what it says when the
broker is not installed; and `make`'s check for Mosquitto (scripts/need-mosquitto.sh)."""

from __future__ import annotations

import shutil
import socket
import subprocess
import threading
from pathlib import Path

import paho.mqtt.client as paho
import pytest
from paho.mqtt.enums import CallbackAPIVersion

from controller.demo.mosquitto import LocalMosquitto, MosquittoMissing, mosquitto_binary
from tests.conftest import ROOT

pytestmark = pytest.mark.integration


def retained(port: int, topic: str) -> bytes | None:
    """What a new subscriber gets as the retained message of `topic` (None: nothing).

    It subscribes to `topic` and to a marker in one SUBSCRIBE and, once acknowledged, publishes
    the marker: Mosquitto sends the retained message before routing anything published later,
    so the marker's arrival ends the wait."""
    got: dict[str, bytes] = {}
    done = threading.Event()

    def on_message(cl: paho.Client, u: object, m: paho.MQTTMessage) -> None:
        got.setdefault(m.topic, bytes(m.payload))
        if m.topic == "launcher/marker":
            done.set()

    c = paho.Client(CallbackAPIVersion.VERSION2, client_id="launcher-reader")
    c.on_message = on_message
    c.on_subscribe = lambda cl, *a: cl.publish("launcher/marker", b"m", qos=1)
    c.on_connect = lambda cl, *a: cl.subscribe([(topic, 1), ("launcher/marker", 1)])
    c.connect("127.0.0.1", port)
    c.loop_start()
    try:
        assert done.wait(10), "the marker never came back"
        return got.get(topic)
    finally:
        c.disconnect()
        c.loop_stop()


def publish_retained(port: int, topic: str, payload: bytes) -> None:
    c = paho.Client(CallbackAPIVersion.VERSION2, client_id="launcher-writer")
    c.connect("127.0.0.1", port)
    c.loop_start()
    try:
        c.publish(topic, payload, qos=1, retain=True).wait_for_publish(5)
    finally:
        c.disconnect()
        c.loop_stop()


def test_a_persistent_broker_keeps_retained_messages_across_a_restart_on_the_same_port(tmp_path):
    b = LocalMosquitto(tmp_path, persistent=True, extra_conf="max_queued_messages 0\n")
    conf = b.conf.read_text()
    assert f"listener {b.port} 127.0.0.1\n" in conf
    assert "set_tcp_nodelay true\n" in conf and "allow_anonymous true\n" in conf
    assert f"persistence_location {tmp_path}/\n" in conf and conf.endswith("max_queued_messages 0\n")
    with b:
        assert b.accepting() and b.url == f"mqtt://127.0.0.1:{b.port}"
        port = b.port
        publish_retained(port, "site/zone/hall/state", b"armed_away")
        b.stop()
        assert not b.accepting() and not b.running
        b.start()
        assert b.port == port and b.running
        assert retained(b.port, "site/zone/hall/state") == b"armed_away"


def test_a_broker_without_persistence_forgets_everything_when_it_stops(tmp_path):
    with LocalMosquitto(tmp_path, nodelay=False) as b:
        assert "set_tcp_nodelay false\n" in b.conf.read_text()
        publish_retained(b.port, "site/status", b"online")
        b.stop()
        b.start()
        assert retained(b.port, "site/status") is None


def test_starting_on_a_port_another_program_holds_is_refused_with_the_port_named(tmp_path):
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        b = LocalMosquitto(tmp_path, port)
        with pytest.raises(RuntimeError, match=f"port {port} is already in use"):
            b.start()
        assert not b.running


def test_a_machine_without_mosquitto_is_told_the_one_command_that_installs_it(tmp_path: Path):
    with pytest.raises(MosquittoMissing) as e:
        mosquitto_binary(search=str(tmp_path))
    assert str(e.value) == "Mosquitto is not installed: run `sudo apt-get install mosquitto`"
    assert Path(mosquitto_binary()).name == "mosquitto"


def test_make_stops_with_the_install_command_where_mosquitto_is_missing_and_apt_is_not_at_hand(
    tmp_path: Path,
):
    # a PATH with neither Mosquitto's tools nor apt-get: only what the script needs besides them
    (tmp_path / "bin").mkdir()
    (tmp_path / "bin" / "id").symlink_to(shutil.which("id") or "/usr/bin/id")
    r = subprocess.run(
        ["/bin/sh", str(ROOT / "scripts" / "need-mosquitto.sh")],
        env={"PATH": str(tmp_path / "bin")},
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert r.returncode == 1
    assert r.stderr.strip() == "Mosquitto is not installed: run `sudo apt-get install mosquitto`"


def test_make_goes_on_where_mosquitto_is_installed():
    r = subprocess.run(
        ["/bin/sh", str(ROOT / "scripts" / "need-mosquitto.sh")],
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert (r.returncode, r.stdout, r.stderr) == (0, "", "")
