"""`officeguard dc09 test`, the real command against the strict receiver."""

from __future__ import annotations

import subprocess
import sys

import yaml

from tests.dc09.strict_receiver import ThreadedReceiver
from tests.e2e import DEMO_CONFIG, ROOT


def config_for(tmp_path, port: int):
    data = yaml.safe_load(DEMO_CONFIG.read_text(encoding="utf-8"))
    data["dc09"] = {
        "account": "1234",
        "primary": {"host": "127.0.0.1", "port": port},
        "ack_timeout": "0.5s",
        "attempts": 1,
        "retry_delay": "0.05s",
    }
    cfg = tmp_path / "site.yaml"
    cfg.write_text(yaml.safe_dump(data, allow_unicode=True), encoding="utf-8")
    return cfg


def og(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "controller", *args], cwd=ROOT, capture_output=True, text=True
    )


def test_dc09_test_sends_e601_and_prints_the_centres_ack(tmp_path):
    recv = ThreadedReceiver()
    try:
        r = og("dc09", "test", "-c", str(config_for(tmp_path, recv.rx.tcp_port)))
        assert r.returncode == 0, r.stderr
        assert "ACK for E601 seq 0001 on the primary path (plain" in r.stdout
        assert [m.data for m in recv.rx.messages()] == ["1601 00 000"]
    finally:
        recv.stop()


def test_dc09_test_says_so_when_no_path_answers(tmp_path):
    recv = ThreadedReceiver()
    recv.rx.mode = "silent"
    try:
        r = og("dc09", "test", "-c", str(config_for(tmp_path, recv.rx.tcp_port)))
        assert r.returncode == 1
        assert "primary tcp://127.0.0.1" in r.stdout and "no answer" in r.stdout
    finally:
        recv.stop()


def test_dc09_test_without_a_centre_in_the_config_exits_78():
    r = og("dc09", "test", "-c", str(DEMO_CONFIG))
    assert r.returncode == 78 and "no dc09 section" in r.stderr
