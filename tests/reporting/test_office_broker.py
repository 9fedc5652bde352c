"""The security office's Mosquitto configuration as shipped (config/mosquitto-office.conf and
config/mosquitto-office.acl, docs/office-broker.md), run for real: only its paths, port and user
are substituted in a temporary copy. Per-site logins keep each site to its own topics and Home
Assistant discovery configs; the console reads every site and publishes nothing.

The clients speak MQTT 5, so the broker's refusals are visible as reason codes (0x87 "not
authorized" on a PUBACK or SUBACK). That a message did not reach a reader is shown by a marker
published after it by the same client: messages from one client reach a subscriber in order, so
once the marker is in, anything sent before it would have been too.
"""

from __future__ import annotations

import getpass
import shutil
import subprocess
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import paho.mqtt.client as paho
import pytest
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.reasoncodes import ReasonCode

from controller.demo.mosquitto import LocalMosquitto, free_port
from tests.conftest import ROOT
from tests.pki import make_pki

pytestmark = pytest.mark.integration

CONF = ROOT / "config" / "mosquitto-office.conf"
ACL = ROOT / "config" / "mosquitto-office.acl"
LOGINS = ("office-a", "office-b", "console", "dispatch", "homeassistant")
NOT_AUTHORIZED = 0x87
ACCEPTED = (0x00, 0x10)  # success, or success with no matching subscribers


def password(login: str) -> str:
    return f"pw-{login}-7c1e"


class Client:
    """A paho MQTT 5 client over TLS with one login, recording what it receives."""

    def __init__(self, port: int, ca: Path, login: str, secret: str | None = None) -> None:
        self.got: list[tuple[str, bytes]] = []
        self.cond = threading.Condition()
        self.connect_rc: ReasonCode | None = None
        self.suback: list[ReasonCode] = []
        c = paho.Client(CallbackAPIVersion.VERSION2, client_id=f"t-{login}", protocol=paho.MQTTv5)
        c.tls_set(ca_certs=str(ca))
        c.username_pw_set(login, password(login) if secret is None else secret)
        c.on_connect = self._on_connect
        c.on_message = self._on_message
        c.on_subscribe = self._on_subscribe
        self.c = c
        c.connect("127.0.0.1", port, keepalive=30)
        c.loop_start()
        with self.cond:
            assert self.cond.wait_for(lambda: self.connect_rc is not None, 10), "no CONNACK"

    def _on_connect(self, client: Any, userdata: Any, flags: Any, rc: ReasonCode, props: Any) -> None:
        with self.cond:
            self.connect_rc = rc
            self.cond.notify_all()

    def _on_message(self, client: Any, userdata: Any, msg: paho.MQTTMessage) -> None:
        with self.cond:
            self.got.append((msg.topic, bytes(msg.payload)))
            self.cond.notify_all()

    def _on_subscribe(self, client: Any, userdata: Any, mid: int, rcs: list[ReasonCode], props: Any) -> None:
        with self.cond:
            self.suback = list(rcs)
            self.cond.notify_all()

    def subscribe(self, *filters: str) -> list[int]:
        """Subscribe (QoS 1) and return the SUBACK's reason codes, one per filter."""
        with self.cond:
            self.suback = []
        self.c.subscribe([(f, 1) for f in filters])
        with self.cond:
            assert self.cond.wait_for(lambda: self.suback, 10), "no SUBACK"
            return [rc.value for rc in self.suback]

    def publish(self, topic: str, payload: bytes = b"x", retain: bool = False) -> int:
        """Publish at QoS 1 and return the PUBACK's reason code."""
        done = threading.Event()
        rcs: list[int] = []

        def on_publish(client: Any, userdata: Any, mid: int, rc: ReasonCode, props: Any) -> None:
            rcs.append(rc.value)
            done.set()

        self.c.on_publish = on_publish
        self.c.publish(topic, payload, qos=1, retain=retain)
        assert done.wait(10), "no PUBACK"
        return rcs[0]

    def wait_for(self, topic: str, payload: bytes) -> list[tuple[str, bytes]]:
        """Wait until (topic, payload) arrived; return everything received so far."""
        with self.cond:
            assert self.cond.wait_for(lambda: (topic, payload) in self.got, 10), self.got
            return list(self.got)

    def close(self) -> None:
        self.c.disconnect()
        self.c.loop_stop()


@pytest.fixture
def office(tmp_path: Path) -> Iterator[tuple[int, Path]]:
    """The shipped configuration in a real Mosquitto: (port, CA file for the clients)."""
    etc, lib, logs = tmp_path / "etc", tmp_path / "lib", tmp_path / "log"
    for d in (etc / "certs", lib, logs):
        d.mkdir(parents=True)
    make_pki(etc / "certs")
    passwd = etc / "officeguard.passwd"
    for i, login in enumerate(LOGINS):
        # -b takes the password on the command line: fine in a test's temp dir, never in a shell
        flags = ["-c", "-b"] if i == 0 else ["-b"]
        subprocess.run(["mosquitto_passwd", *flags, str(passwd), login, password(login)],
                       check=True, capture_output=True, timeout=30)  # fmt: skip
    shutil.copy(ACL, etc / "officeguard.acl")
    port = free_port()
    text = CONF.read_text(encoding="utf-8")
    for old, new in (
        ("/etc/mosquitto/", f"{etc}/"),
        ("/var/lib/mosquitto/", f"{lib}/"),
        ("/var/log/mosquitto/", f"{logs}/"),
        ("listener 8883\n", f"listener {port} 127.0.0.1\n"),
        ("user mosquitto\n", f"user {getpass.getuser()}\n"),
    ):
        assert old in text, f"{old!r} is no longer in {CONF.name}: update this test"
        text = text.replace(old, new)
    broker = LocalMosquitto(tmp_path, port, config=text)
    broker.start()
    try:
        yield port, etc / "certs" / "ca.pem"
    finally:
        broker.stop()


def test_a_site_can_neither_publish_to_nor_read_another_sites_topics(office):
    port, ca = office
    a, b, console = (Client(port, ca, login) for login in ("office-a", "office-b", "console"))
    try:
        assert console.subscribe("officeguard/#") == [1]
        # Mosquitto 2.0 grants office-a these subscriptions, then checks every message against
        # its read rights: it gets its own messages only
        assert a.subscribe("officeguard/office-b/#", "officeguard/#") == [1, 1]
        assert b.publish("officeguard/office-b/event", b"b-event") in ACCEPTED
        assert a.publish("officeguard/office-a/event", b"a-marker") in ACCEPTED
        assert ("officeguard/office-b/event", b"b-event") not in a.wait_for(
            "officeguard/office-a/event", b"a-marker"
        )
        # office-a cannot command office-b, nor overwrite its retained state
        for topic in ("officeguard/office-b/cmd", "officeguard/office-b/zone/hall/state"):
            assert a.publish(topic, b"forged") == NOT_AUTHORIZED
        assert a.publish("officeguard/office-a/status", b"a-marker-2") in ACCEPTED
        seen = console.wait_for("officeguard/office-a/status", b"a-marker-2")
        assert ("officeguard/office-b/event", b"b-event") in seen  # the console reads every site
        assert not [m for m in seen if m[1] == b"forged"]
        # Home Assistant discovery: its own device's configs, not another site's
        own = "homeassistant/alarm_control_panel/officeguard_office-a/hall/config"
        other = "homeassistant/alarm_control_panel/officeguard_office-b/hall/config"
        assert a.publish(own, b"{}", retain=True) in ACCEPTED
        assert a.publish(other, b"{}", retain=True) == NOT_AUTHORIZED
        assert a.subscribe("homeassistant/status") == [1]
    finally:
        for c in (a, b, console):
            c.close()


def test_the_console_reads_every_site_but_publishes_nothing(office):
    port, ca = office
    a, console = Client(port, ca, "office-a"), Client(port, ca, "console")
    try:
        assert console.subscribe("officeguard/#") == [1]
        assert a.subscribe("officeguard/office-a/#") == [1]
        for topic in (
            "officeguard/office-a/cmd",
            "officeguard/office-a/zone/hall/set",
            "officeguard/office-a/status",
            "officeguard/console/status",  # the sites' pattern, for a login named "console"
            "homeassistant/binary_sensor/officeguard_console/x/config",
            "homeassistant/status",
        ):
            assert console.publish(topic, b"from-console") == NOT_AUTHORIZED, topic
        assert a.publish("officeguard/office-a/event", b"a-marker") in ACCEPTED
        assert ("officeguard/office-a/event", b"a-marker") in console.wait_for(
            "officeguard/office-a/event", b"a-marker"
        )
        got = a.wait_for("officeguard/office-a/event", b"a-marker")
        assert not [m for m in got if m[1] == b"from-console"]
        # a site's command topics carry users' codes: the console never sees them
        dispatch = Client(port, ca, "dispatch")
        try:
            assert dispatch.publish("officeguard/office-a/cmd", b"code-inside") in ACCEPTED
            assert a.publish("officeguard/office-a/event", b"after-cmd") in ACCEPTED
            seen = console.wait_for("officeguard/office-a/event", b"after-cmd")
            assert not [m for m in seen if m[1] == b"code-inside"]
        finally:
            dispatch.close()
    finally:
        a.close()
        console.close()


def test_dispatch_commands_a_site_and_home_assistant_drives_its_panel(office):
    port, ca = office
    a, dispatch, ha = (Client(port, ca, login) for login in ("office-a", "dispatch", "homeassistant"))
    try:
        assert a.subscribe("officeguard/office-a/cmd", "officeguard/office-a/zone/+/set") == [1, 1]
        assert dispatch.subscribe("officeguard/+/cmd/result") == [1]
        assert dispatch.publish("officeguard/office-a/cmd", b'{"id": "d1"}') in ACCEPTED
        a.wait_for("officeguard/office-a/cmd", b'{"id": "d1"}')
        assert a.publish("officeguard/office-a/cmd/result", b'{"id": "d1", "ok": true}') in ACCEPTED
        dispatch.wait_for("officeguard/office-a/cmd/result", b'{"id": "d1", "ok": true}')
        assert dispatch.publish("officeguard/office-a/event", b"forged") == NOT_AUTHORIZED
        assert ha.publish("officeguard/office-a/zone/hall/set", b"ARM_AWAY") in ACCEPTED
        a.wait_for("officeguard/office-a/zone/hall/set", b"ARM_AWAY")
        assert ha.publish("officeguard/office-a/status", b"forged") == NOT_AUTHORIZED
    finally:
        for c in (a, dispatch, ha):
            c.close()


def test_a_wrong_password_or_an_unknown_login_is_refused(office):
    port, ca = office
    for login, secret in (("office-a", "wrong"), ("intruder", "pw-intruder")):
        c = Client(port, ca, login, secret)
        try:
            assert c.connect_rc is not None and c.connect_rc.is_failure
        finally:
            c.close()


def test_the_documentation_shows_the_shipped_files_as_they_are():
    doc = (ROOT / "docs" / "office-broker.md").read_text(encoding="utf-8")
    for f in (CONF, ACL):
        assert f"```\n{f.read_text(encoding='utf-8')}```" in doc, f.name
    assert "mosquitto_passwd -b" not in doc  # passwords are typed at its prompt
