"""End to end: what a hostile client with a login on the site's broker tries, through a real
Mosquitto against the real daemon process, and what it gets (docs/security.md)."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from controller.remote.commands import sign
from tests.e2e import ROOT, Site
from tests.mqtt_broker import Recorder, wait_for
from tests.remote.test_e2e_commands import Office, P, site_config, start

pytestmark = pytest.mark.integration

KEY = b"a-long-random-site-key-0123456789"


def keyed(tmp_path: Path) -> str:
    key = tmp_path / "command.key"
    key.write_bytes(KEY + b"\n")
    key.chmod(0o600)
    return f"\n  command_key_file: {key}"


def signed(site: Site, body: dict[str, Any], nonce: str) -> bytes:
    obj = {**body, "ts": site.status()["time"], "nonce": nonce}
    obj["sig"] = sign(KEY, f"{P}/cmd", obj)
    return json.dumps(obj).encode()


def test_a_captured_disarm_replayed_later_is_refused_by_default(tmp_path, broker):
    # the reference site's settings: no require_signature line, no key
    site, office = start(tmp_path, broker)
    try:
        site.advance("24h")  # a day after the capture (the schedule moves the zones meanwhile)
        r = office.send({"action": "arm", "zone": "perimeter", "code": "2468"})
        assert r["ok"] is True  # arming with a code alone still works
        captured = {"id": "cap1", "action": "disarm", "zone": "perimeter", "code": "2468"}
        r = office.send(captured)
        assert r["ok"] is False and r["id"] == "cap1" and "signed" in r["error"]
        assert site.zone("perimeter") == "armed_away"
        r = office.send(
            json.dumps({"id": "ha1", "action": "DISARM", "code": "2468"}).encode(),
            "zone/perimeter/set",
        )
        assert r["ok"] is False and r["id"] == "ha1"
        assert site.zone("perimeter") == "armed_away"
    finally:
        site.stop()
        office.rec.close()


def test_a_retained_command_does_not_run_again_at_start(tmp_path, broker):
    rec = Recorder(broker.port, f"{P}/#", client_id="office-retained")
    try:
        arm = {"id": "ret1", "action": "arm", "zone": "perimeter", "code": "2468"}
        rec.client.publish(f"{P}/cmd", json.dumps(arm), qos=1, retain=True).wait_for_publish(5)
        site = Site(tmp_path / "state", config=site_config(tmp_path, broker))
        site.start("2026-03-04T12:00:00+07:00")
        try:
            assert wait_for(lambda: site.status()["broker"]["connected"], timeout=10)
            time.sleep(1.0)  # the broker has handed over its retained messages by now
            assert site.zone("perimeter") == "disarmed"
            assert not any(t == f"{P}/cmd/result" for t, _, _ in rec.snapshot())
            # ... and a live one still runs
            office = Office(rec)
            r = office.send({"action": "arm", "zone": "perimeter", "code": "2468"})
            assert r["ok"] is True
        finally:
            site.stop()
    finally:
        rec.client.publish(f"{P}/cmd", b"", qos=1, retain=True)
        rec.close()


def test_junk_on_the_unsigned_path_never_locks_out_the_signed_console(tmp_path, broker):
    site, office = start(tmp_path, broker, keyed(tmp_path))
    try:
        r = office.send({"action": "arm", "zone": "perimeter", "code": "2468"})
        assert r["ok"] is True
        for _ in range(5):  # anyone on the broker: wrong codes, unsigned
            r = office.send({"action": "arm", "zone": "finance", "code": "0000"})
            assert r["ok"] is False
        r = office.send({"action": "arm", "zone": "finance", "code": "2468"})
        assert r["reason"] == "locked_out"  # the unsigned source is locked...
        body = {"id": "console-1", "action": "disarm", "zone": "perimeter", "code": "2468"}
        r = office.send(signed(site, body, "nonce-console-1"))
        assert r["ok"] is True and r["id"] == "console-1"  # ... the office's console is not
        assert site.zone("perimeter") == "disarmed"
        # twenty more attempts during the lockout: no event for each, one when it ends
        before = len(site.events())
        for _ in range(20):
            office.send({"action": "arm", "zone": "finance", "code": "0000"})
        assert len(site.events()) == before
        site.advance("5m")
        ended = [e for e in site.events() if e["detail"].get("reason") == "lockout_ended"]
        assert len(ended) == 1 and ended[0]["detail"]["refused"] >= 20
    finally:
        site.stop()
        office.rec.close()


def test_a_signed_command_replayed_after_a_restart_is_refused(tmp_path, broker):
    site, office = start(tmp_path, broker, keyed(tmp_path))
    try:
        body = {"id": "s1", "action": "arm", "zone": "perimeter", "code": "2468"}
        message = signed(site, body, "nonce-restart-1")
        r = office.send(message)
        assert r["ok"] is True
        site.og("disarm", "perimeter", input="2468\n")
        site.stop()
        site.start("2026-03-04T12:00:10+07:00")  # the same minute: inside the time window
        assert wait_for(lambda: site.status()["broker"]["connected"], timeout=10)
        r = office.send(message)
        assert r["ok"] is False and "replayed" in r["error"] and r["id"] == "s1"
        assert site.zone("perimeter") == "disarmed"
    finally:
        site.stop()
        office.rec.close()


def test_an_id_that_is_not_text_is_refused_and_the_next_command_still_runs(tmp_path, broker):
    site, office = start(tmp_path, broker)
    try:
        r = office.send(b'{"id": "\\ud800", "action": "arm", "zone": "finance", "code": "2468"}')
        assert r["ok"] is False and "id must be" in r["error"]
        r = office.send({"action": "arm", "zone": "finance", "code": "2468"})
        assert r["ok"] is True
        assert "never retrieved" not in site.log()
    finally:
        site.stop()
        office.rec.close()


def test_every_answer_to_a_burst_carries_its_command_id(tmp_path, broker):
    site, office = start(tmp_path, broker)
    try:
        ids = {f"b{i}" for i in range(24)}
        for cid in sorted(ids):
            body = {"id": cid, "action": "arm", "zone": "finance", "code": "0000"}
            office.rec.client.publish(f"{P}/cmd", json.dumps(body), qos=1)

        def answers() -> list[dict[str, Any]]:
            return office.messages("cmd/result")

        assert wait_for(lambda: len(answers()) >= 16, timeout=20)
        time.sleep(0.5)
        assert all(a["id"] in ids for a in answers()), answers()
    finally:
        site.stop()
        office.rec.close()


def _peak_rss_kb(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1])
    raise AssertionError("no VmHWM")


def test_a_huge_command_is_refused_by_the_broker_before_it_reaches_the_daemon(tmp_path, broker):
    site, office = start(tmp_path, broker)
    try:
        assert site.proc is not None
        before = _peak_rss_kb(site.proc.pid)
        huge = b'{"action": "arm", "zone": "finance", "pad": "' + b"x" * (40 << 20) + b'"}'
        office.rec.client.publish(f"{P}/cmd", huge, qos=1)
        r = office.send({"action": "arm", "zone": "finance", "code": "2468"})
        assert r["ok"] is True and r["id"] == "c1"  # the first answer is the next command's
        assert _peak_rss_kb(site.proc.pid) - before < 10_000  # never buffered whole
    finally:
        site.stop()
        office.rec.close()


def test_sim_commands_need_simulate_even_on_a_simulated_backend(tmp_path):
    text = (ROOT / "config" / "demo.yaml").read_text(encoding="utf-8")
    assert "backend: simulated" in text
    cfg = tmp_path / "site.yaml"
    cfg.write_text(text, encoding="utf-8")
    state = tmp_path / "state"
    proc = subprocess.Popen(
        [sys.executable, "-m", "controller", "run", "-c", str(cfg), "--state-dir", str(state)],
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    site = Site(state, config=cfg)
    try:
        assert wait_for(lambda: site.og("status", "--json", check=False).returncode == 0, 30)
        r = site.og("sim", "set", "gate.main", "active", check=False)
        assert r.returncode != 0 and "--simulate" in r.stdout + r.stderr
        r = site.og("sim", "advance", "1h", check=False)
        assert r.returncode != 0
    finally:
        proc.terminate()
        proc.wait(timeout=30)
