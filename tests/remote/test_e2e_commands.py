"""End to end: remote commands, retained state, heartbeat and last will, through a real Mosquitto
to the real daemon process."""

from __future__ import annotations

import json
import signal
import time
from pathlib import Path
from typing import Any

import pytest

from controller.remote.commands import sign
from tests.drone.test_e2e_drone import hb_line, rid_line
from tests.e2e import DEMO_CONFIG, Site
from tests.mqtt_broker import Broker, Recorder, wait_for

pytestmark = pytest.mark.integration

P = "officeguard/office-a"
CODES = ("2468", "1357", "1358", "0000", "9999")


class Office:
    """The security office's side: publishes commands and reads what the site publishes."""

    def __init__(self, rec: Recorder) -> None:
        self.rec = rec
        self.n = 0

    def messages(self, suffix: str) -> list[Any]:
        out = []
        for t, p, _ in self.rec.snapshot():
            if t == f"{P}/{suffix}":
                out.append(json.loads(p) if p else None)
        return out

    def latest(self, suffix: str) -> Any:
        got = self.messages(suffix)
        return got[-1] if got else None

    def send(self, payload: dict[str, Any] | bytes, topic: str = "cmd") -> dict[str, Any]:
        """Publish a command and wait for its result (matched by id, or the next result)."""
        before = len(self.messages("cmd/result"))
        if isinstance(payload, dict):
            self.n += 1
            payload = {"id": f"c{self.n}", **payload}
            body = json.dumps(payload).encode()
        else:
            body = payload
        self.rec.client.publish(f"{P}/{topic}", body, qos=1)
        assert wait_for(lambda: len(self.messages("cmd/result")) > before, timeout=10), "no result"
        return self.messages("cmd/result")[before]


def site_config(tmp_path: Path, broker: Broker, extra_mqtt: str = "") -> Path:
    text = DEMO_CONFIG.read_text(encoding="utf-8").replace(
        "  url: mqtt://127.0.0.1:1883", f"  url: {broker.url}{extra_mqtt}"
    )
    text = text.replace("heartbeat: 60s", "heartbeat: 30s")
    cfg = tmp_path / "site.yaml"
    cfg.write_text(text, encoding="utf-8")
    return cfg



def start(tmp_path: Path, broker: Broker, extra_mqtt: str = "") -> tuple[Site, Office]:
    rec = Recorder(broker.port, f"{P}/#", client_id=f"office-{time.monotonic_ns()}")
    site = Site(tmp_path / "state", config=site_config(tmp_path, broker, extra_mqtt))
    site.start("2026-03-04T12:00:00+07:00")
    assert wait_for(lambda: site.status()["broker"]["connected"], timeout=10)
    return site, Office(rec)


def no_code_published(office: Office) -> None:
    # everything the site published (the office's own commands carry codes, of course)
    text = " ".join(
        p.decode("utf-8", "replace")
        for t, p, _ in office.rec.snapshot()
        if t != f"{P}/cmd" and not t.endswith("/set")
    )
    assert "cmd/result" in " ".join(t for t, _, _ in office.rec.snapshot())
    for code in CODES:
        assert f'"{code}"' not in text and f": {code}" not in text


def test_commands_with_code_lockout_and_malformed_payloads(tmp_path, broker):
    # the code-only path (Home Assistant's), which the office must choose for a site
    site, office = start(tmp_path, broker, "\n  require_signature: false")
    try:
        # a good code arms; the result names the zone state and never the code
        r = office.send({"action": "arm", "zone": "finance", "mode": "away", "code": "2468"})
        assert r == {"id": "c1", "ok": True, "action": "arm", "zones": {"finance": "arming"}}
        assert site.zone("finance") == "arming"
        # malformed ones change nothing and get an error result
        for bad in (b"not json", b'{"action": "explode"}', b"[" * 5000, b'{"action": "arm"}'):
            r = office.send(bad)
            assert r["ok"] is False and r["error"], r
        r = office.send({"action": "disarm", "zone": "nowhere", "code": "2468"})
        assert r["ok"] is False and r["reason"] == "unknown_zone"
        # wrong codes: refused, counted, and after five the MQTT channel is locked out
        for _ in range(5):
            r = office.send({"action": "disarm", "zone": "finance", "code": "0000"})
            assert r["ok"] is False
        r = office.send({"action": "disarm", "zone": "finance", "code": "2468"})
        assert r["ok"] is False and r["reason"] == "locked_out" and "đang khóa" in r["error"]
        assert site.zone("finance") == "arming"
        kinds = [e["kind"] for e in site.events()]
        assert "keypad_lockout" in kinds  # the office hears of the lockout
        # the lockout is per channel: the local CLI still works
        site.og("disarm", "finance", input="2468\n")
        assert site.zone("finance") == "disarmed"
        site.advance("5m")  # the lockout ends on the daemon's clock
        # Home Assistant's command topic, with its command_template's JSON
        r = office.send(
            json.dumps({"action": "ARM_NIGHT", "code": "2468"}).encode(), "zone/leadership/set"
        )
        assert r["ok"] is True and r["zones"] == {"leadership": "arming"}
        r = office.send(b"DISARM", "zone/leadership/set")  # HA without a code
        assert r["ok"] is False
        assert site.zone("leadership") == "arming"
        # duress over MQTT: disarms as asked, and a silent duress event
        r = office.send({"action": "disarm", "zone": "leadership", "code": "1358"})
        assert r["ok"] is True and site.zone("leadership") == "disarmed"
        assert any(e["kind"] == "duress" for e in site.events())
        assert site.outputs()["siren.hall"] is False
        # bypass and unbypass a sensor
        r = office.send({"action": "bypass", "sensor": "pir.director", "code": "2468"})
        assert r["ok"] is True and r["bypassed"] is True
        r = office.send({"action": "unbypass", "sensor": "pir.director", "code": "2468"})
        assert r["ok"] is True and r["bypassed"] is False
        st = site.status()["commands"]
        assert st["done"] >= 4 and st["malformed"] >= 3 and st["refused"] >= 6
        no_code_published(office)
        assert not any(c in site.log() for c in ("2468", "1358", "0000"))
    finally:
        site.stop()
        office.rec.close()


def test_signed_commands_and_replays(tmp_path, broker):
    key = tmp_path / "command.key"
    key.write_text("a-long-random-site-key-0123456789\n")
    key.chmod(0o600)
    site, office = start(
        tmp_path,
        broker,
        f"\n  command_key_file: {key}\n  require_signature: true\n  signature_window: 30s",
    )
    try:
        now = site.status()["time"]  # the daemon's (virtual) clock is the reference
        body = {"id": "s1", "action": "arm", "zone": "perimeter", "code": "2468"}
        r = office.send({**body, "id": "s0", "action": "disarm"})
        assert r["ok"] is False and "signed" in r["error"] and r["id"] == "s0"
        signed = {**body, "ts": now, "nonce": "nonce-0001"}
        signed["sig"] = sign(b"a-long-random-site-key-0123456789", f"{P}/cmd", signed)
        r = office.send(json.dumps(signed).encode())
        assert r["ok"] is True and r["id"] == "s1"
        assert site.zone("perimeter") == "armed_away"  # no exit delay on the perimeter
        r = office.send(json.dumps(signed).encode())  # the same message again
        assert r["ok"] is False and "replayed" in r["error"]
        site.advance("31s")
        late = {**signed, "nonce": "nonce-0002"}
        late["sig"] = sign(b"a-long-random-site-key-0123456789", f"{P}/cmd", late)
        r = office.send(json.dumps(late).encode())
        assert r["ok"] is False and "window" in r["error"]
        forged = {**signed, "nonce": "nonce-0003", "action": "disarm"}
        r = office.send(json.dumps(forged).encode())
        assert r["ok"] is False and "bad signature" in r["error"]
        assert site.zone("perimeter") == "armed_away"
    finally:
        site.stop()
        office.rec.close()


def test_retained_state_heartbeat_drones_and_last_will(tmp_path, broker):
    site, office = start(tmp_path, broker)
    try:
        assert office.latest("status")["online"] is True
        assert office.latest("zone/finance/state")["state"] == "disarmed"
        assert office.latest("sensor/door.finance/state") == {
            "active": False,
            "bypassed": False,
            "ts": office.latest("sensor/door.finance/state")["ts"],
        }
        assert office.latest("trouble/state")["troubles"] == []
        site.og("sim", "set", "tamper.cabinet", "active")
        assert wait_for(lambda: office.latest("trouble/state")["troubles"] != [], timeout=10)
        # the sensor's topic went out at start, on the same (virtual) instant: its change
        # follows at the end of the 250 ms window, on the daemon's clock
        site.advance("1s")
        assert wait_for(lambda: office.latest("sensor/tamper.cabinet/state")["active"], timeout=10)
        # heartbeat on the daemon's clock
        assert office.messages("heartbeat") == []
        site.advance("31s")
        assert wait_for(lambda: office.messages("heartbeat"), timeout=10)
        hb = office.latest("heartbeat")
        assert hb["interval_s"] == 30 and hb["seq"] >= 1 and isinstance(hb["outbox"], int)
        # a drone: retained while tracked, cleared when lost
        site.og("sim", "serial", "rf.roof", hb_line(1))
        site.og("sim", "serial", "rf.roof", rid_line(2))
        assert wait_for(
            lambda: any(t.startswith(f"{P}/drone/") and p for t, p, _ in office.rec.snapshot()),
            timeout=10,
        )
        topic = next(t for t, p, _ in office.rec.snapshot() if t.startswith(f"{P}/drone/") and p)
        assert json.loads(office.rec.snapshot()[-1][1] or b"{}") is not None
        det = office.latest("detector/rf.roof/state")
        assert wait_for(lambda: office.latest("detector/rf.roof/state")["tracks"] == 1, timeout=10)
        assert det["online"] is True
        site.advance("61s")
        assert wait_for(
            lambda: [p for t, p, _ in office.rec.snapshot() if t == topic][-1] == b"", timeout=10
        )
        # a fresh subscriber sees the retained state, and no drone any more
        late = Recorder(broker.port, f"{P}/#", client_id="late-office")
        try:
            # the broker sends its retained messages in no promised order: wait for them all
            want = {f"{P}/status", f"{P}/trouble/state", f"{P}/zone/finance/state"}
            assert wait_for(lambda: want <= {t for t, p, r in late.snapshot() if r})
            retained = {t for t, p, r in late.snapshot() if r}
            assert not any(t.startswith(f"{P}/drone/") for t in retained)
        finally:
            late.close()
        # Home Assistant discovery: retained configs for every zone and sensor of the site
        ha = Recorder(broker.port, "homeassistant/#", client_id="late-ha")
        try:
            assert wait_for(lambda: len(ha.snapshot()) >= 3 + 9, timeout=10)
            configs = {t: json.loads(p) for t, p, r in ha.snapshot() if r and p}
            panels = [c for t, c in configs.items() if "/alarm_control_panel/" in t]
            assert {c["command_topic"] for c in panels} == {
                f"{P}/zone/{z}/set" for z in ("leadership", "finance", "perimeter")
            }
            assert all(c["code"] == "REMOTE_CODE" for c in panels)
        finally:
            ha.close()
        # SIGKILL: the broker publishes the last will
        site.kill()
        assert wait_for(lambda: office.latest("status") == {"online": False}, timeout=60)
        # restart, then SIGTERM: a clean offline status with the reason replaces it
        site.start("2026-03-04T12:10:00+07:00")
        assert wait_for(lambda: office.latest("status")["online"] is True, timeout=10)
        assert site.stop() == 0
        assert wait_for(lambda: office.latest("status").get("reason") == "SIGTERM", timeout=10)
        assert office.latest("status")["online"] is False
    finally:
        site.stop()
        office.rec.close()


def test_a_lockout_survives_a_restart_and_a_reload(tmp_path):
    site = Site(tmp_path / "state")
    site.start("2026-03-04T12:00:00+07:00")
    try:
        for _ in range(5):
            r = site.og("arm", "finance", input="0000\n", check=False)
            assert r.returncode != 0
        site.kill()  # pulling the plug does not reset the count
        site.start("2026-03-04T12:01:00+07:00")
        r = site.og("arm", "finance", input="2468\n", check=False)
        assert r.returncode != 0 and "đang khóa" in (r.stdout + r.stderr)
        assert site.zone("finance") == "disarmed"
        site.proc.send_signal(signal.SIGHUP)  # SIGHUP: a reload keeps it too
        assert wait_for(
            lambda: any(e["detail"].get("reload") == "applied" for e in site.events()), timeout=10
        )
        r = site.og("arm", "finance", input="2468\n", check=False)
        assert "đang khóa" in (r.stdout + r.stderr)
        site.advance("5m")
        site.og("arm", "finance", input="2468\n")
        assert site.zone("finance") == "arming"
    finally:
        site.stop()
