"""End to end: a night of guard patrols on the real daemon, its CLI and a real Mosquitto, on
the daemon's virtual clock (issue 18). Three rounds: one walked on time, one started late,
one missed; each reaches the broker as events and as the plan's retained state, and the
patrol log tells them apart."""

from __future__ import annotations

import csv
import io
import json
import shutil

import jsonschema
import pytest

from controller.events import event_schema
from tests.e2e import DEMO_CONFIG, Site
from tests.mqtt_broker import Broker, Recorder, wait_for

pytestmark = pytest.mark.integration

PATROL = """
checkpoints:
  - {id: cp.gate, name: "Cổng chính", kind: badge, d0: 7, d1: 8, zone: perimeter, exempt: [gate.main]}
  - {id: cp.kho, name: "Kho", kind: button, pin: 18}

patrols:
  - id: night
    name: "ca đêm"
    checkpoints: [cp.gate, cp.kho]
    exempt: true
    runs:
      - {days: workdays, start: "22:00", end: "06:00", every: 2h}
"""
BADGE = "188,12345"


def site_config(tmp_path, broker_url: str):
    text = DEMO_CONFIG.read_text(encoding="utf-8").replace("mqtt://127.0.0.1:1883", broker_url)
    text = text.replace(
        '    code: "2468"',
        f'    badge: "{BADGE}"\n    code: "2468"',
        1,
    )
    cfg = tmp_path / "site.yaml"
    cfg.write_text(text + PATROL, encoding="utf-8")
    return cfg


def test_a_night_with_a_completed_a_late_and_a_missed_round(tmp_path) -> None:
    (tmp_path / "broker").mkdir()
    broker = Broker(tmp_path / "broker")
    broker.start()
    cfg = site_config(tmp_path, broker.url)
    rec = Recorder(broker.port, "officeguard/office-a/#")
    site = Site(tmp_path / "state", config=cfg)
    site.start("2026-03-04T21:50:00+07:00")  # a Wednesday: a workday night
    try:
        assert wait_for(lambda: site.status()["broker"]["connected"], timeout=10)
        site.advance("11m")  # 22:01
        site.og("sim", "badge", "cp.gate", input=BADGE + "\n")
        site.og("sim", "badge", "cp.gate", "--garble", "parity", input=BADGE + "\n")
        # the guard's known route: the armed perimeter's gate opens for the round, no alarm
        assert site.zone("perimeter") == "armed_away"
        site.og("sim", "set", "gate.main", "active")
        site.og("sim", "set", "gate.main", "inactive")
        assert not [e for e in site.events() if e["kind"] == "alarm"]
        site.advance("5m")
        site.og("sim", "checkpoint", "cp.kho")
        bypass = [(e["cid"], e["sensor"]) for e in site.events() if e["kind"] == "bypass"]
        assert bypass == [("E570", "gate.main"), ("R570", "gate.main")]  # lifted for the round
        site.advance("1h59m")  # 00:05: late
        site.advance("5m")  # 00:10
        site.og("sim", "badge", "cp.gate", input=BADGE + "\n")
        site.og("sim", "badge", "cp.gate", input="999\n")  # nobody's badge
        site.advance("2m")
        site.og("sim", "checkpoint", "cp.kho")
        site.advance("2h30m")  # 02:42: the 02:00 round was missed at 02:35

        patrol = [e for e in site.events() if e["kind"] == "patrol"]
        outcomes = [(e["detail"]["patrol"], e["cid"]) for e in patrol]
        assert outcomes == [
            ("started", "E458"),
            ("visited", "E422"),
            ("visited", "E422"),
            ("completed", "R458"),
            ("late", "E452"),
            ("started", "E458"),
            ("visited", "E422"),
            ("unknown_badge", "E421"),
            ("visited", "E422"),
            ("completed", "R458"),
            ("late", "E452"),
            ("missed", "E102"),
        ]
        assert patrol[1]["user"] == "bao-ve-1" and patrol[1]["sensor"] == "cp.gate"
        assert patrol[-1]["ts"].startswith("2026-03-05T02:35:00")

        st = site.status()
        assert st["checkpoints"]["cp.gate"]["garbled"] == 1
        assert st["patrols"]["night"]["last_round"]["outcome"] == "missed"

        def published() -> list[dict]:
            return [json.loads(p) for t, p, _ in rec.snapshot() if t.endswith("/event")]

        assert wait_for(lambda: any(e.get("cid") == "E102" for e in published()), timeout=10)
        schema = event_schema()
        for e in published():
            jsonschema.validate(e, schema)
        retained = {t: p for t, p, _ in rec.snapshot() if t.endswith("/patrol/night")}
        assert retained, "P/patrol/night was published"
        last = json.loads(list(retained.values())[-1])
        assert last["last_round"]["outcome"] == "missed" and last["state"] == "waiting"

        text = site.og("patrol", "log", "-c", str(cfg), "--night", "2026-03-04").stdout
        assert "2026-03-04 22:00  night  COMPLETED" in text
        assert "2026-03-05 00:00  night  LATE" in text
        assert "2026-03-05 02:00  night  MISSED" in text
        out = site.og(
            "patrol", "log", "-c", str(cfg), "--night", "2026-03-04", "--format", "csv"
        ).stdout
        rows = list(csv.DictReader(io.StringIO(out)))
        assert [r["outcome"] for r in rows if r["row"] == "round"][:3] == [
            "completed",
            "late",
            "missed",
        ]
        everything = site.og("log", "--json").stdout + site.log() + out + text
        assert "12333113" not in everything and BADGE not in everything
    finally:
        site.stop()
        rec.close()
        broker.stop()
        shutil.rmtree(tmp_path / "broker", ignore_errors=True)
