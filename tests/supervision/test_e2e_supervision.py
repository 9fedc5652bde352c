"""End to end: a simulated site with supervised loops on the simulated MCP3008 (gpiozero's mock
SPI device) and its power watched, run as a real daemon against a real Mosquitto. Loops are cut
and shorted in a disarmed and an armed zone, the mains pulled and the battery drained; the
logbook, the sirens, `status`, the Home Assistant entities and the office console all see it."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import jsonschema
import pytest
import yaml

from controller.events import event_schema
from tests.e2e import DEMO_CONFIG, Site
from tests.mqtt_broker import Broker, Recorder, wait_for

pytestmark = [pytest.mark.integration]
P = "officeguard/office-a"


def _config(tmp: Path, broker_url: str) -> Path:
    data = yaml.safe_load(DEMO_CONFIG.read_text(encoding="utf-8"))
    data["mqtt"]["url"] = broker_url
    data["adc"] = {"chip": "mcp3008", "vref": 3.3, "poll": "100ms"}
    data["sensors"] += [
        {"id": "door.archive", "name": "Archive", "type": "door", "zone": "finance",
         "loop": {"channel": 0, "eol": "double"}},
        {"id": "door.vault", "name": "Vault", "type": "door", "zone": "leadership",
         "response": "instant", "loop": {"channel": 1, "eol": "double"}},
    ]
    data["power"] = {
        "mains": {"channel": 5, "delay": "30s"},
        "battery": {"channel": 6, "divider": 5.0, "delay": "60s"},
        "sirens": [{"siren": "siren.hall", "channel": 7}],
    }
    data.pop("schedules", None)  # nothing arms by itself during the test
    path = tmp / "site.yaml"
    path.write_text(yaml.safe_dump(data, allow_unicode=True, sort_keys=False), encoding="utf-8")
    return path


def test_cut_and_shorted_loops_mains_and_battery_reach_events_sirens_status_ha_and_console(
    tmp_path: Path,
) -> None:
    (tmp_path / "broker").mkdir()
    broker = Broker(tmp_path / "broker")
    broker.start()
    site = Site(tmp_path / "state", config=_config(tmp_path, broker.url))
    rec = Recorder(broker.port, f"{P}/#")
    ha = Recorder(broker.port, "homeassistant/#", client_id="test-ha")
    site.start("2026-03-04T12:00:00+07:00")
    try:
        assert wait_for(lambda: site.status()["broker"]["connected"], timeout=10)
        sup = site.status()["supervision"]
        assert sup["adc"] == "ok"
        assert {k: v["state"] for k, v in sup["loops"].items()} == {
            "door.archive": "normal",
            "door.vault": "normal",
        }
        assert sup["power"]["mains"] == "on" and sup["power"]["battery"]["state"] == "ok"

        # Home Assistant: the loop's wiring state and the power entities are announced
        def configs() -> dict[str, dict]:
            return {t: json.loads(p) for t, p, _ in ha.snapshot() if p}

        assert wait_for(
            lambda: any("/wiring_door_vault/" in t or "wiring_door.vault" in t for t in configs()),
            timeout=10,
        ), list(configs())
        assert any(c.get("device_class") == "power" for c in configs().values())
        assert any(c.get("device_class") == "voltage" for c in configs().values())

        # arm leadership; finance stays disarmed
        site.og("arm", "leadership", input="2468\n")
        site.advance("61s")
        assert site.zone("leadership") == "armed_away"

        # a cut loop in the disarmed zone: a tamper and a trouble, no alarm, no siren
        r = site.og("sim", "wiring", "door.archive", "cut")
        assert "cut" in r.stdout
        tampers = [e for e in site.events() if e["kind"] == "tamper"]
        assert [(e["cid"], e["sensor"]) for e in tampers] == [("E144", "door.archive")]
        assert site.zone("finance") == "disarmed" and site.outputs()["siren.hall"] is False
        assert "E144" in [t["cid"] for t in site.status()["troubles"]]
        site.og("sim", "wiring", "door.archive", "normal")
        assert [e["cid"] for e in site.events() if e["kind"] == "tamper"] == ["E144", "R144"]

        # a shorted loop in the armed zone: a tamper and an alarm, the siren sounds
        site.og("sim", "wiring", "door.vault", "short")
        alarms = [e for e in site.events() if e["kind"] == "alarm"]
        assert [(e["cid"], e["zone"]) for e in alarms] == [("E144", "leadership")]
        assert site.zone("leadership") == "triggered" and site.outputs()["siren.hall"] is True
        st = site.status()
        assert st["supervision"]["loops"]["door.vault"]["state"] == "short"
        assert wait_for(
            lambda: any(
                t == f"{P}/wiring/door.vault/state" and json.loads(p)["state"] == "short"
                for t, p, _ in rec.snapshot()
            ),
            timeout=10,
        )
        # a voltage outside every band: a trouble, not a state
        site.og("sim", "wiring", "door.archive", "1.0")
        assert "E380" in [e.get("cid") for e in site.events()]

        # mains pulled: nothing for the delay, then E301; the battery drained: E302
        site.og("sim", "power", "mains", "off")
        site.advance("20s")
        assert "E301" not in [e.get("cid") for e in site.events()]
        site.advance("11s")
        assert "E301" in [e.get("cid") for e in site.events()]
        site.og("sim", "power", "battery", "11.2")
        site.advance("61s")
        cids = [e.get("cid") for e in site.events()]
        assert "E302" in cids
        power = site.status()["supervision"]["power"]
        assert power["mains"] == "off" and power["battery"]["state"] == "low"
        assert abs(power["battery"]["volts"] - 11.2) < 0.1
        assert wait_for(
            lambda: any(
                t == f"{P}/power/state" and json.loads(p)["mains"] == "off"
                for t, p, _ in rec.snapshot()
            ),
            timeout=10,
        )
        site.og("sim", "power", "mains", "on")
        site.advance("1s")  # the power channels are read once a second (the loops at every poll)
        assert "R301" in [e.get("cid") for e in site.events()]

        # the office console sees the troubles and the events
        r = site.og("monitor", "--broker", broker.url, "--once", "--json", "--wait", "2")
        board = json.loads(r.stdout)["sites"]["office-a"]
        shown = {t.get("cid") for t in board["troubles"]}
        assert {"E144", "E302", "E380"} <= shown, board["troubles"]
        assert "alarms" in board and "leadership" in board["alarms"]
        assert board["power"]["mains"] == "on" and board["power"]["battery"]["state"] == "low"

        # every event published is valid against the public schema
        def published() -> list[dict]:
            return [json.loads(p) for t, p, _ in rec.snapshot() if t == f"{P}/event"]

        assert wait_for(lambda: site.status()["outbox"] == 0, timeout=10)
        schema = event_schema()
        for e in published():
            jsonschema.validate(e, schema)
        assert {"E144", "R144", "E301", "R301", "E302", "E380"} <= {e.get("cid") for e in published()}
    finally:
        site.stop()
        rec.close()
        ha.close()
        broker.stop()
        shutil.rmtree(tmp_path / "broker", ignore_errors=True)


def _walk(site: Site, args: list[str], answers: list[tuple[str, list[str]]]) -> tuple[int, str]:
    """Run an interactive `officeguard` command; at each prompt that starts with the given text,
    run the `sim` command given, then press Enter."""
    import subprocess
    import sys

    from tests.e2e import ROOT

    proc = subprocess.Popen(
        [sys.executable, "-m", "controller", *args, "--state-dir", str(site.state_dir)],
        cwd=ROOT,
        env=site.env,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert proc.stdin is not None and proc.stdout is not None
    seen = []
    for expect, sim in answers:
        line = proc.stdout.readline()
        seen.append(line)
        assert line.startswith(expect), (line, proc.stderr.read() if proc.stderr else "")
        site.og("sim", *sim)
        proc.stdin.write("\n")
        proc.stdin.flush()
    out, err = proc.communicate(timeout=60)
    return proc.returncode, "".join(seen) + out + err


def test_the_installer_tests_every_loop_and_calibrates_one_on_the_running_daemon(
    tmp_path: Path,
) -> None:
    cfg = _config(tmp_path, "mqtt://127.0.0.1:1")  # no broker needed
    site = Site(tmp_path / "state", config=cfg)
    site.start("2026-03-04T12:00:00+07:00")
    try:
        rc, out = _walk(
            site,
            ["wiring", "test", "-c", str(cfg)],
            [
                ("door.archive", ["wiring", "door.archive", "alarm"]),
                ("door.archive: close", ["wiring", "door.archive", "normal"]),
                ("door.vault", ["wiring", "door.vault", "cut"]),  # its alarm resistor is missing
                ("door.vault: close", ["wiring", "door.vault", "normal"]),
            ],
        )
        assert rc == 1, out
        lines = {ln.split()[0]: ln for ln in out.splitlines() if ln.startswith("door.") and " closed:" in ln}
        assert lines["door.archive"].endswith("OK")
        assert "open: cut" in lines["door.vault"] and lines["door.vault"].endswith("CHECK THE WIRING")

        rc, out = _walk(
            site,
            ["wiring", "calibrate", "-c", str(cfg), "door.archive"],
            [
                ("Close door.archive", ["wiring", "door.archive", "1.60"]),
                ("Now open door.archive", ["wiring", "door.archive", "2.25"]),
            ],
        )
        assert rc == 0, out
        written = yaml.safe_load(cfg.read_text(encoding="utf-8"))
        loop = next(s for s in written["sensors"] if s["id"] == "door.archive")["loop"]
        lo, hi = loop["bands"]["normal"]
        assert lo < 1.60 < hi and abs((lo + hi) / 2 - 1.60) < 0.01
        site.og("check-config", "-c", str(cfg), "--simulate")

        # the ADC leaves the bus: a trouble, not a crash; its loops are unknown until it is back
        site.og("sim", "power", "adc", "off")
        sup = site.status()["supervision"]
        assert sup["adc"] == "not answering"
        assert {v["state"] for v in sup["loops"].values()} == {"unknown"}
        assert "E333" in [e.get("cid") for e in site.events()]
        site.og("sim", "power", "adc", "on")
        assert site.status()["supervision"]["adc"] == "ok"
        assert "R333" in [e.get("cid") for e in site.events()]
    finally:
        site.stop()


def test_mains_read_from_a_pin_goes_off_and_on_through_the_simulated_psu(tmp_path: Path) -> None:
    data = yaml.safe_load(DEMO_CONFIG.read_text(encoding="utf-8"))
    data["mqtt"]["url"] = "mqtt://127.0.0.1:1"
    data["power"] = {"mains": {"pin": 4, "delay": "30s"}}
    data.pop("schedules", None)
    cfg = tmp_path / "site.yaml"
    cfg.write_text(yaml.safe_dump(data, allow_unicode=True, sort_keys=False), encoding="utf-8")
    site = Site(tmp_path / "state", config=cfg)
    site.start("2026-03-04T12:00:00+07:00")
    try:
        assert site.status()["supervision"]["power"] == {"mains": "on"}
        site.og("sim", "power", "mains", "off")
        site.advance("31s")
        assert "E301" in [e.get("cid") for e in site.events()]
        assert site.status()["supervision"]["power"] == {"mains": "off"}
        site.og("sim", "power", "mains", "on")
        assert "R301" in [e.get("cid") for e in site.events()]
    finally:
        site.stop()
