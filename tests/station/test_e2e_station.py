"""The station end to end: a simulated site (the real daemon on a virtual clock) reports to a
real Mosquitto, `officeguard station serve` (a real process) stores into a real PostgreSQL, and
an operator works the incident over HTTP; the trail survives a restart of the station."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from pathlib import Path

import pytest

from tests.e2e import DEMO_CONFIG, Site
from tests.mqtt_broker import Broker, wait_for
from tests.station.proc import StationProc, og_station
from tests.station.webclient import Browser

pytestmark = pytest.mark.integration

PW = "a long operator password"
WEDNESDAY_NOON = "2026-02-18T12:00:00+07:00"


def site_config(tmp_path: Path, broker_url: str) -> Path:
    text = DEMO_CONFIG.read_text(encoding="utf-8").replace("mqtt://127.0.0.1:1883", broker_url)
    cfg = tmp_path / "site.yaml"
    cfg.write_text(text, encoding="utf-8")
    return cfg


def test_the_station_refuses_to_start_without_operators_or_with_a_default_password(
    tmp_path: Path, broker: Broker
) -> None:
    db = f"sqlite:///{tmp_path / 'st.db'}"
    st = StationProc(tmp_path, db, broker.url)
    with pytest.raises(RuntimeError, match="no operator yet"):
        st.start()
    r = og_station("operator", "boss", "--role", "admin", "--db", db, input="changeme\n")
    assert r.returncode == 64 and "at least 10" in r.stderr


def test_an_alarm_at_a_site_is_acknowledged_noted_and_closed_and_the_note_survives_a_restart(
    tmp_path: Path, broker: Broker, pg_url: str
) -> None:
    r = og_station("operator", "lan", "--role", "operator", "--db", pg_url, input=PW + "\n")
    assert r.returncode == 0, r.stderr
    station = StationProc(tmp_path, pg_url, broker.url)
    station.start()
    site = Site(tmp_path / "site", config=site_config(tmp_path, broker.url))
    site.start(WEDNESDAY_NOON)
    try:
        assert wait_for(lambda: site.status()["broker"]["connected"], timeout=15)
        b = Browser(station.url)
        assert b.login("lan", "not the password").status == 401
        assert b.login("lan", PW).status == 200
        site.og("sim", "set", "tamper.cabinet", "active")  # a 24 h tamper: an incident at once
        assert wait_for(lambda: "inc-" in b.get("/").body, timeout=15), station.log()
        iid = re.search(r'id="inc-([0-9a-f]+)"', b.get("/").body)
        assert iid is not None
        inc = iid.group(1)
        page = b.get(f"/incident/{inc}")
        tok = page.csrf()
        b.post(f"/incident/{inc}/acknowledge", {"csrf": tok})
        b.post(f"/incident/{inc}/note", {"csrf": tok, "text": "nắp tủ mở khi bảo trì"})
        b.post(f"/incident/{inc}/close", {"csrf": tok, "resolution": "technical_fault"})
        assert f"inc-{inc}" not in b.get("/").body

        assert station.stop() == 0
        station.start()
        b = Browser(station.url)
        b.login("lan", PW)
        page = b.get(f"/incident/{inc}")
        assert "nắp tủ mở khi bảo trì" in page.body and "lỗi kỹ thuật" in page.body
        search = b.get("/events?site=office-a&kind=tamper")
        assert "tamper" in search.body
    finally:
        site.stop()
        station.stop()


def test_an_operator_arms_and_disarms_a_site_remotely_and_the_station_records_it(
    tmp_path: Path, broker: Broker
) -> None:
    keys = tmp_path / "keys"
    keys.mkdir()
    key = keys / "office-a.key"
    key.write_text("k" * 64)
    key.chmod(0o600)
    cfg = site_config(tmp_path, broker.url)
    cfg.write_text(
        cfg.read_text(encoding="utf-8").replace(
            "  heartbeat: 60s", f"  heartbeat: 60s\n  command_key_file: {key}", 1
        ),
        encoding="utf-8",
    )
    db = f"sqlite:///{tmp_path / 'st.db'}"
    assert og_station("operator", "lan", "--db", db, input=PW + "\n").returncode == 0
    station = StationProc(tmp_path, db, broker.url, "--command-keys", str(keys))
    station.start()
    site = Site(tmp_path / "site", config=cfg)
    site.start(datetime.now(UTC).isoformat(timespec="seconds"))  # signed commands carry real time
    try:
        assert wait_for(lambda: site.status()["broker"]["connected"], timeout=15)
        b = Browser(station.url)
        b.login("lan", PW)
        page = b.get("/site/office-a")
        assert 'id="command"' in page.body
        tok = page.csrf()
        b.post(
            "/site/office-a/command",
            {"csrf": tok, "action": "arm", "mode": "away", "zones": "leadership", "code": "2468"},
        )
        assert site.zone("leadership") in ("arming", "armed_away")
        page = b.post(
            "/site/office-a/command",
            {"csrf": tok, "action": "disarm", "zones": "leadership", "code": "1111"},
        )
        assert site.zone("leadership") in ("arming", "armed_away")  # a wrong code changes nothing
        b.post(
            "/site/office-a/command",
            {"csrf": tok, "action": "disarm", "zones": "leadership", "code": "2468"},
        )
        page = b.get("/site/office-a")
        assert site.zone("leadership") == "disarmed", re.findall(
            r"class=\"cmd-result\">([^<]*)<", page.body
        )
        page = b.get("/site/office-a")
        results = re.findall(r'class="cmd-result">([^<]*)<', page.body)
        assert results[0] == "OK" and results[2] == "OK" and results[1] not in ("", "OK")
        assert "2468" not in page.body and "2468" not in station.log()
    finally:
        site.stop()
        station.stop()


def test_two_stations_share_the_event_load_and_one_can_die(
    tmp_path: Path, broker: Broker, pg_url: str
) -> None:
    import json
    import signal
    import uuid

    import paho.mqtt.client as paho
    from paho.mqtt.enums import CallbackAPIVersion

    from controller.station.store import Store

    assert og_station("operator", "lan", "--db", pg_url, input=PW + "\n").returncode == 0
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    a = StationProc(tmp_path / "a", pg_url, broker.url)
    b = StationProc(tmp_path / "b", pg_url, broker.url)
    a.start()
    b.start()
    pub = paho.Client(CallbackAPIVersion.VERSION2, client_id="sites")
    pub.connect("127.0.0.1", broker.port)
    pub.loop_start()
    store = Store.open(pg_url, migrate_schema=False)

    def publish(first: int, n: int, kind: str = "arm", cid: str = "R401", one_site: bool = False) -> None:
        sent = []
        for seq in range(first, first + n):
            site = "site-0" if one_site else f"site-{seq % 10}"
            e = {"id": uuid.uuid4().hex, "seq": seq, "site": site, "ts": "2026-02-17T01:20:00+07:00",
                 "kind": kind, "cid": cid, "zone": "main", "text": kind, "detail": {}}  # fmt: skip
            sent.append(pub.publish(f"officeguard/{site}/event", json.dumps(e), qos=1))
        for info in sent:  # all in flight at once: both stations take them at the same moment
            info.wait_for_publish(5)

    try:
        publish(1, 200)
        assert wait_for(lambda: store.count_events() == 200, timeout=20), store.count_events()

        def stored() -> list[int]:  # a station counts a batch just after committing it
            return [json.loads(urlopen_text(s.url + "/health"))["stored_events"] for s in (a, b)]

        assert wait_for(lambda: sum(stored()) == 200, timeout=10), stored()
        assert all(h > 0 for h in stored())  # each took a share
        # a burst of burglary alarms of one zone, shared between the two at once: one incident
        before = stored()
        publish(1001, 40, kind="alarm", cid="E130", one_site=True)
        assert wait_for(lambda: sum(stored()) == 240, timeout=20), stored()
        assert all(now > then for now, then in zip(stored(), before, strict=True))
        opened = [i for i in store.incidents_of("site-0") if i.what == "burglary"]
        assert len(opened) == 1, [(i.id, i.zone, i.state) for i in opened]
        whole = store.incident(opened[0].id)
        assert whole is not None and len(whole.events) == 40
        assert a.proc is not None
        a.proc.send_signal(signal.SIGKILL)
        a.proc.wait(10)
        publish(201, 200)
        assert wait_for(lambda: store.count_events() == 440, timeout=20), store.count_events()
    finally:
        pub.loop_stop()
        pub.disconnect()
        store.close()
        a.stop()
        b.stop()


def urlopen_text(url: str) -> str:
    import urllib.request

    with urllib.request.urlopen(url, timeout=5) as r:
        return str(r.read().decode())
