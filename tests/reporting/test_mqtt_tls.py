"""The link over TLS with a client certificate and a password file, and over MQTT 3.1.1, against
a real Mosquitto: what a site uses to reach the security office's broker."""

from __future__ import annotations

import asyncio
import subprocess
from pathlib import Path

import pytest

from controller.config import Mqtt
from controller.demo.mosquitto import LocalMosquitto
from controller.reporting.mqtt import MqttLink
from tests.mqtt_broker import until
from tests.pki import make_pki

pytestmark = pytest.mark.integration

SITE = "office-a"


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A CA, a broker certificate for 127.0.0.1 and a site's client certificate."""
    return make_pki(tmp_path_factory.mktemp("pki"), clients=("office-a",))


def run_link(cfg: Mqtt, wait: float = 10) -> tuple[bool, bool, str | None]:
    """Connect, publish one QoS 1 message, report (connected, acknowledged, last error)."""

    async def main() -> tuple[bool, bool, str | None]:
        link = MqttLink(cfg, SITE, reconnect_min=0.05, reconnect_max=0.2)
        link.start()
        try:
            connected = await until(lambda: link.connected, wait)
            acked = False
            if connected:
                acked = await asyncio.wait_for(link.publish(f"{link.prefix}/event", "{}", qos=1), 10)
            return connected, acked, link.last_error
        finally:
            await link.close()

    return asyncio.run(main())


def test_tls_with_client_certificate_and_password(pki: Path, tmp_path: Path) -> None:
    (tmp_path / "passwd").write_text("")
    subprocess.run(
        ["mosquitto_passwd", "-b", str(tmp_path / "passwd"), "office-a", "s3cret-pass"],
        check=True, capture_output=True, timeout=30,
    )  # fmt: skip
    tls = (
        f"cafile {pki / 'ca.pem'}\ncertfile {pki / 'broker.pem'}\nkeyfile {pki / 'broker.key'}\n"
        f"require_certificate true\npassword_file {tmp_path / 'passwd'}\n"
    )
    broker = LocalMosquitto(tmp_path / "broker", allow_anonymous=False, extra_conf=tls)
    broker.start()
    try:
        pw = tmp_path / "mqtt.pass"
        pw.write_text("s3cret-pass\n")
        good = Mqtt(
            url=f"mqtts://127.0.0.1:{broker.port}",
            ca_file=str(pki / "ca.pem"),
            cert_file=str(pki / "office-a.pem"),
            key_file=str(pki / "office-a.key"),
            username="office-a",
            password_file=str(pw),
            keepalive="5s",
        )
        assert run_link(good)[:2] == (True, True)
        # the same over MQTT 3.1.1 (an older central broker)
        assert run_link(good.model_copy(update={"protocol": "3.1.1"}))[:2] == (True, True)
        # a wrong password, or no client certificate: never connected, the reason kept
        pw.write_text("wrong\n")
        connected, _, err = run_link(good, wait=2)
        assert not connected and err and "s3cret" not in err
        pw.write_text("s3cret-pass\n")
        connected, _, err = run_link(good.model_copy(update={"cert_file": None, "key_file": None}), wait=2)
        assert not connected
        # a broker certificate signed by another CA is refused
        connected, _, err = run_link(good.model_copy(update={"ca_file": str(pki / "office-a.pem")}), wait=2)
        assert not connected and err and "TLS failed" in err
        # the broker's certificate names 127.0.0.1, not the host name we asked for
        connected, _, err = run_link(good.model_copy(update={"url": f"mqtts://localhost:{broker.port}"}), wait=2)
        assert not connected and err and "TLS failed" in err
    finally:
        broker.stop()
