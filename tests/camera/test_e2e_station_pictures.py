"""End to end to the office's web console: the real daemon on a virtual clock with the
simulated camera, a real Mosquitto, and `officeguard station serve` as a real process. The
alarm's incident page shows its camera's pictures, in the order taken, and serves each."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from controller.camera.twin import CameraTwin
from tests.camera.test_e2e_cameras import _site
from tests.mqtt_broker import Broker, wait_for
from tests.station.proc import StationProc, og_station
from tests.station.webclient import Browser

pytestmark = [pytest.mark.integration]

PW = "a long operator password"


def test_the_stations_incident_page_shows_the_alarms_camera_pictures(
    tmp_path: Path, broker: Broker
) -> None:
    db = f"sqlite:///{tmp_path / 'station.db'}"
    r = og_station("operator", "lan", "--role", "operator", "--db", db, input=PW + "\n")
    assert r.returncode == 0, r.stderr
    (tmp_path / "st").mkdir()
    station = StationProc(tmp_path / "st", db, broker.url)
    station.start()
    with CameraTwin("admin", "s3cret-pass", label="gate") as twin:
        site = _site(tmp_path, broker, twin.url)
        site.start("2026-03-04T01:30:00+07:00")
        try:
            assert wait_for(lambda: site.status()["broker"]["connected"], timeout=15)
            site.og("sim", "set", "tamper.cabinet", "active")
            assert wait_for(lambda: twin.served == 1, timeout=10)
            site.advance("2s")
            assert wait_for(lambda: twin.served == 2, timeout=10)
            site.advance("2s")
            alarm = next(e["id"] for e in site.events() if e.get("cid") == "E137")
            b = Browser(station.url)
            assert b.login("lan", PW).status == 200
            assert wait_for(lambda: "inc-" in b.get("/").body, timeout=15), station.log()
            m = re.search(r'id="inc-([0-9a-f]+)"', b.get("/").body)
            assert m is not None
            ids = [f"{alarm}-cam.gate-{n}" for n in range(3)]

            def shown() -> list[str]:
                return re.findall(r'data-id="([^"]+)"', b.get(f"/incident/{m.group(1)}").body)

            assert wait_for(lambda: shown() == ids, timeout=15), station.log()
            with b.opener.open(f"{station.url}/snapshot/{ids[2]}", timeout=10) as resp:
                data = resp.read()
            assert data[:2] == b"\xff\xd8" and resp.headers["Content-Type"] == "image/jpeg"
            assert Browser(station.url).get(f"/snapshot/{ids[0]}").url.endswith("/login")
        finally:
            site.stop()
            station.stop()
