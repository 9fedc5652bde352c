"""SIGHUP: a broken config changes nothing; a good one applies while armed; SIGTERM is clean."""

from __future__ import annotations

import shutil
import signal
import sqlite3
import time

import pytest

from tests.e2e import DEMO_CONFIG, Site

pytestmark = pytest.mark.integration


def wait_for(pred, timeout=10.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if pred():
            return True
        time.sleep(0.05)
    return False


def test_sighup_bad_config_is_refused_good_config_applies_while_armed(tmp_path):
    cfg = tmp_path / "site.yaml"
    shutil.copy(DEMO_CONFIG, cfg)
    site = Site(tmp_path / "state", config=cfg)
    site.start("2026-03-04T12:00:00+07:00")
    try:
        site.og("arm", "leadership", input="2468\n")
        site.advance("61s")
        site.og("sim", "set", "gate.main", "active")  # perimeter disarmed: nothing
        text = cfg.read_text(encoding="utf-8")
        cfg.write_text(
            text.replace("entry_delay: 30s", "entry_delay: soon").replace("pin: 24", "pin: 22"),
            encoding="utf-8",
        )
        site.proc.send_signal(signal.SIGHUP)
        assert wait_for(lambda: any(e["detail"].get("reload") == "refused" for e in site.events()))
        refused = next(e for e in site.events() if e["detail"].get("reload") == "refused")
        assert len(refused["detail"]["problems"]) == 2
        assert site.zone("leadership") == "armed_away"
        # the running config still has the 30 s entry delay

        cfg.write_text(text.replace("entry_delay: 30s", "entry_delay: 10s"), encoding="utf-8")
        site.proc.send_signal(signal.SIGHUP)
        assert wait_for(lambda: any(e["detail"].get("reload") == "applied" for e in site.events()))
        assert site.zone("leadership") == "armed_away"
        site.og("sim", "set", "door.director", "active")
        assert site.zone("leadership") == "pending"
        site.advance("10s")
        assert site.zone("leadership") == "triggered"  # the new entry delay is in force
        assert site.outputs()["siren.hall"] is True
        assert site.stop() == 0
        st = sqlite3.connect(site.state_dir / "journal.db")
        assert st.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        kinds = [r[0] for r in st.execute("SELECT kind FROM events ORDER BY seq")]
        assert kinds[-1] == "system"  # the clean stop is in the logbook
    finally:
        site.stop()
