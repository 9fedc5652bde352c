"""systemd notifications on a real datagram socket: READY, STATUS, WATCHDOG, STOPPING."""

from __future__ import annotations

import asyncio
import socket
import time

import pytest

from controller.notify import Notifier
from tests.e2e import Site

pytestmark = pytest.mark.integration


def listener(tmp_path):
    path = tmp_path / "notify.sock"
    s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    s.bind(str(path))
    s.settimeout(0.2)
    return s, path


def drain(s, until: float, stop_when=None) -> list[str]:
    got = []
    while time.monotonic() < until:
        try:
            got.append(s.recv(4096).decode())
        except TimeoutError:
            continue
        if stop_when and stop_when(got):
            break
    return got


def test_watchdog_pings_stop_when_the_loop_is_blocked(tmp_path):
    s, path = listener(tmp_path)
    n = Notifier({"NOTIFY_SOCKET": str(path), "WATCHDOG_USEC": "100000"})  # ping every 50 ms

    async def main() -> tuple[int, int]:
        n.start_watchdog()
        await asyncio.sleep(0.3)
        s.setblocking(False)
        alive = 0
        while True:
            try:
                alive += s.recv(4096) == b"WATCHDOG=1"
            except BlockingIOError:
                break
        time.sleep(0.3)  # the loop is stuck: no ping may go out meanwhile
        blocked = 0
        while True:
            try:
                blocked += s.recv(4096) == b"WATCHDOG=1"
            except BlockingIOError:
                break
        await n.stop()
        return alive, blocked

    alive, blocked = asyncio.run(main())
    assert alive >= 3
    assert blocked <= 1  # at most the ping already due as the loop stalled


def test_daemon_sends_ready_status_and_stopping(tmp_path):
    s, path = listener(tmp_path)
    site = Site(tmp_path / "state", extra_env={"NOTIFY_SOCKET": str(path)})
    site.start("2026-03-04T12:00:00+07:00")
    try:
        got = drain(s, time.monotonic() + 5, lambda g: any("READY=1" in m for m in g))
        ready = [m for m in got if "READY=1" in m]
        assert ready and "STATUS=leadership=disarmed" in ready[0]
        site.og("arm", "perimeter", input="2468\n")
        got = drain(s, time.monotonic() + 5, lambda g: any("perimeter=armed_away" in m for m in g))
        assert any("STATUS=" in m and "perimeter=armed_away" in m for m in got)
    finally:
        assert site.stop() == 0
    got = drain(s, time.monotonic() + 2, lambda g: any("STOPPING=1" in m for m in g))
    assert any("STOPPING=1" in m for m in got)


def test_unit_file_passes_systemd_analyze_verify():
    import shutil
    import subprocess

    from tests.conftest import ROOT

    tool = shutil.which("systemd-analyze")
    if tool is None:
        pytest.skip("systemd-analyze is not installed here")
    r = subprocess.run(
        [tool, "verify", str(ROOT / "systemd" / "officeguard.service")],
        capture_output=True,
        text=True,
        timeout=60,
    )
    problems = [
        line
        for line in (r.stdout + r.stderr).splitlines()
        # the daemon is not installed under /opt on a development machine
        if line.strip() and "/opt/officeguard/venv/bin/officeguard" not in line
    ]
    assert problems == []
