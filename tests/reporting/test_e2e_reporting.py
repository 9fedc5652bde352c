"""End to end: the daemon reports to a real Mosquitto; events survive a broker outage."""

from __future__ import annotations

import json
import shutil

import jsonschema
import pytest

from controller.events import event_schema
from tests.e2e import DEMO_CONFIG, Site, shows_code
from tests.mqtt_broker import Broker, Recorder, wait_for

pytestmark = [
    pytest.mark.integration,
]


def test_events_and_retained_state_reach_the_broker_across_an_outage(tmp_path):
    (tmp_path / "broker").mkdir()
    broker = Broker(tmp_path / "broker")
    broker.start()
    cfg = tmp_path / "site.yaml"
    text = DEMO_CONFIG.read_text(encoding="utf-8").replace("mqtt://127.0.0.1:1883", broker.url)
    cfg.write_text(text, encoding="utf-8")
    rec = Recorder(broker.port, "officeguard/office-a/#")
    site = Site(tmp_path / "state", config=cfg)
    site.start("2026-03-04T12:00:00+07:00")
    try:
        assert wait_for(lambda: site.status()["broker"]["connected"], timeout=10)
        site.og("arm", "perimeter", input="2468\n")
        site.og("sim", "set", "gate.main", "active")

        def events():
            return [json.loads(p) for t, p, _ in rec.snapshot() if t.endswith("/event")]

        assert wait_for(lambda: any(e.get("cid") == "E131" for e in events()), timeout=10)
        states = {t: json.loads(p) for t, p, _ in rec.snapshot() if "/zone/" in t}
        assert states["officeguard/office-a/zone/perimeter/state"]["state"] in (
            "triggered",
            "armed_away",
        )
        broker.stop()
        site.og("sim", "set", "tamper.cabinet", "active")  # journaled while the broker is down
        assert site.status()["outbox"] >= 1
        broker.start()
        assert wait_for(lambda: any(e.get("cid") == "E137" for e in events()), timeout=20)
        assert wait_for(lambda: site.status()["outbox"] == 0, timeout=10)
        got = events()
        schema = event_schema()
        for e in got:
            jsonschema.validate(e, schema)
        first_seen: dict[str, int] = {}
        for e in got:
            first_seen.setdefault(e["id"], e["seq"])
        seqs = list(first_seen.values())
        assert seqs == sorted(seqs)  # first arrivals in seq order; re-sends keep their id
        journal_ids = {e["id"] for e in site.events()}
        assert set(first_seen) <= journal_ids
        assert not shows_code("2468", json.dumps(got))
    finally:
        site.stop()
        rec.close()
        broker.stop()
        shutil.rmtree(tmp_path / "broker", ignore_errors=True)
