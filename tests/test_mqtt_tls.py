"""The link over TLS with a client certificate and a password file, and over MQTT 3.1.1, against
a real Mosquitto: what a site uses to reach the security office's broker."""

from __future__ import annotations

import asyncio
import subprocess
from pathlib import Path

import pytest

from controller.config import Mqtt
from controller.mini_broker import LocalBroker, mosquitto_binary
from controller.mqtt import MqttLink
from tests.mqtt_broker import free_port, until

pytestmark = [
    pytest.mark.integration,
    pytest.mark.skipif(mosquitto_binary() is None, reason="TLS needs Mosquitto (the embedded broker has none)"),
]

SITE = "office-a"


def openssl(*args: str, cwd: Path) -> None:
    subprocess.run(["openssl", *args], cwd=cwd, check=True, capture_output=True, timeout=60)


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A CA, a broker certificate for 127.0.0.1 and a site's client certificate."""
    d = tmp_path_factory.mktemp("pki")
    openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2", "-subj", "/CN=office-ca",
            "-keyout", "ca.key", "-out", "ca.pem", cwd=d)  # fmt: skip
    for name, extra in (("broker", "subjectAltName=IP:127.0.0.1"), ("office-a", None)):
        openssl("req", "-newkey", "rsa:2048", "-nodes", "-subj", f"/CN={name}",
                "-keyout", f"{name}.key", "-out", f"{name}.csr", cwd=d)  # fmt: skip
        ext = []
        if extra:
            (d / f"{name}.ext").write_text(extra + "\n")
            ext = ["-extfile", f"{name}.ext"]
        openssl("x509", "-req", "-in", f"{name}.csr", "-CA", "ca.pem", "-CAkey", "ca.key",
                "-CAcreateserial", "-days", "2", "-out", f"{name}.pem", *ext, cwd=d)  # fmt: skip
    return d


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
    broker = LocalBroker(free_port(), tmp_path / "broker", kind="mosquitto", extra_conf=tls)
    broker.conf.write_text(broker.conf.read_text().replace("allow_anonymous true", "allow_anonymous false"))  # type: ignore[union-attr]
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
