"""End to end: a client floods the site's command topic through a real Mosquitto while a gate
opens on an armed zone. The alarm must reach the siren and the office during the flood, the
junk must get neither an answer nor a log line per message, and the link must stay healthy.
(The timing figures, beside a quiet run, are bench/flood.py's.)"""

from __future__ import annotations

import json
import time

import pytest

from tests.e2e import Site
from tests.flood import Flooder
from tests.mqtt_broker import Recorder, wait_for
from tests.remote.test_e2e_commands import P, site_config

pytestmark = pytest.mark.integration

FLOOD_SECONDS = 12.0
RATE = 26_000.0


def test_a_command_flood_neither_silences_the_alarm_nor_floods_answers_or_logs(tmp_path, broker):
    office = Recorder(broker.port, f"{P}/#", client_id="office-flood")
    site = Site(tmp_path / "state", config=site_config(tmp_path, broker))
    site.start("2026-03-04T12:00:00+07:00")
    flooder: Flooder | None = None
    try:
        assert wait_for(lambda: site.status()["broker"]["connected"], timeout=10)
        site.og("arm", "perimeter", input="2468\n")
        assert site.zone("perimeter") == "armed_away"
        log_before = len(site.log().splitlines())
        flooder = Flooder(broker.port, f"{P}/cmd", RATE, FLOOD_SECONDS)
        time.sleep(3.0)  # the flood is in full swing
        assert flooder.running()
        site.og("sim", "set", "gate.main", "active")
        assert site.outputs()["siren.hall"] is True

        def alarm_seen() -> bool:
            return any(
                t == f"{P}/event" and json.loads(p)["kind"] == "alarm"
                for t, p, _ in office.snapshot()
            )

        # the alarm reaches the office while the flood still runs (today: 21-35 s, or never)
        assert wait_for(lambda: alarm_seen() or not flooder.running(), timeout=FLOOD_SECONDS)
        assert alarm_seen(), "the alarm did not reach the office during the flood"
        assert flooder.running()
        sent = flooder.result()["sent"]
        assert sent > RATE * FLOOD_SECONDS / 4, sent  # the flood really was one
        # the link stays healthy: connected, and every event delivered once the flood is over
        assert wait_for(lambda: site.status()["outbox"] == 0, timeout=20)
        st = site.status()
        assert st["broker"]["connected"] is True
        # junk got no answer per message, and no log line per message
        results = [p for t, p, _ in office.snapshot() if t == f"{P}/cmd/result"]
        assert len(results) <= 10 + FLOOD_SECONDS * 2, len(results)
        assert all(json.loads(p)["ok"] is False for p in results)
        new_lines = site.log().splitlines()[log_before:]
        command_lines = [line for line in new_lines if "command" in line]
        assert len(command_lines) <= 30, command_lines[:40]
        # the flood was seen and not listened to (the broker dropped it, not the daemon)
        commands = st["commands"]
        assert commands["paused"] >= 1 and commands["over_rate"] >= 100, commands
        assert commands["received"] + commands["over_rate"] < sent / 10, commands
        # the office's own command goes through again once the pause is over
        assert wait_for(lambda: not site.status()["commands"]["not_listening"], timeout=70)
        office.client.publish(
            f"{P}/cmd",
            json.dumps({"id": "after", "action": "arm", "zone": "finance", "code": "2468"}),
            qos=1,
        )
        assert wait_for(
            lambda: any(
                t == f"{P}/cmd/result" and json.loads(p).get("id") == "after"
                for t, p, _ in office.snapshot()
            ),
            timeout=10,
        )
    finally:
        if flooder is not None:
            flooder.stop()
        site.stop()
        office.close()
