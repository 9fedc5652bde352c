"""End to end: the real daemon reports to a strict receiver over DC-09; events queued while the
centre is silent arrive in order after it answers again, none lost across a SIGKILL. The
daemon's answer timeout follows its virtual clock (`sim advance`)."""

from __future__ import annotations

import time

import pytest
import yaml

from tests.dc09.strict_receiver import ThreadedReceiver
from tests.e2e import DEMO_CONFIG, Site

pytestmark = pytest.mark.integration
CLOCK = "2026-03-04T12:00:00+07:00"


def wait_for(cond, what: str, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if cond():
            return
        time.sleep(0.05)
    raise AssertionError(f"never: {what}")


def collapsed(codes: list[str]) -> list[str]:
    """Consecutive copies made one: an event acknowledged just before a SIGKILL, whose cursor
    was not yet written, is sent again (the same event, as the standard allows)."""
    return [c for i, c in enumerate(codes) if i == 0 or codes[i - 1] != c]


def test_events_reach_the_centre_in_order_across_an_outage_and_a_sigkill(tmp_path):
    recv = ThreadedReceiver()
    data = yaml.safe_load(DEMO_CONFIG.read_text(encoding="utf-8"))
    data["dc09"] = {
        "account": "1234",
        "primary": {"host": "127.0.0.1", "port": recv.rx.tcp_port, "poll": "0s"},
        "ack_timeout": "0.5s",
        "attempts": 1,
        "retry_delay": "0.1s",
        "max_retry_delay": "0.5s",
    }
    cfg = tmp_path / "site.yaml"
    cfg.write_text(yaml.safe_dump(data, allow_unicode=True), encoding="utf-8")
    site = Site(tmp_path / "state", config=cfg)

    def expected() -> list[str]:
        return [
            ("1" if e["cid"][0] == "E" else "3") + e["cid"][1:]
            for e in site.events()
            if e.get("cid")
        ]

    def received() -> list[str]:
        return [m.data[:4] for m in recv.rx.messages()]

    try:
        site.start(CLOCK)
        site.og("sim", "set", "tamper.cabinet", "active")
        wait_for(lambda: "1137" in received(), "the tamper at the centre")
        assert site.status()["dc09"]["connected"] is True

        recv.rx.mode = "silent"
        site.og("sim", "set", "tamper.cabinet", "inactive")
        # the daemon runs on its virtual clock (--clock): its answer timeout ends when the
        # clock is moved past it, not after real seconds
        wait_for(lambda: recv.rx.swallowed >= 1, "the restore swallowed by the centre")
        site.advance("1s")
        wait_for(lambda: site.status()["dc09"]["connected"] is False, "the link down")
        assert any("dc09" in str(t) for t in site.status()["troubles"])
        site.kill()

        recv.rx.mode = "ack"
        site.start(CLOCK)
        wait_for(lambda: site.status()["dc09"]["outbox"] == 0, "everything delivered")
        assert collapsed(received()) == collapsed(expected())
        assert recv.rx.refused == []
    finally:
        site.stop()
        recv.stop()
