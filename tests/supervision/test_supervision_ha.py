"""Home Assistant entities of supervised wiring and power: they validate against Home
Assistant's documented schema, and their templates turn the retained payloads the daemon
publishes (from the component's status) into Home Assistant states."""

from __future__ import annotations

import jsonschema
import yaml

from controller.config import parse_config
from controller.reporting.discovery import discovery_configs, discovery_messages
from controller.supervision.ha import LOOP_STATES, supervision_state
from tests.conftest import reference_text
from tests.ha_discovery_schema import DISCOVERY_TOPIC, SCHEMAS, render


def _cfg():  # type: ignore[no-untyped-def]
    data = yaml.safe_load(reference_text())
    data["adc"] = {"chip": "mcp3208"}
    data["sensors"].append(
        {"id": "door.archive", "type": "door", "zone": "finance", "loop": {"channel": 0}}
    )
    data["power"] = {
        "mains": {"channel": 5},
        "battery": {"channel": 6},
        "sirens": [{"siren": "siren.hall", "channel": 7}],
    }
    return parse_config(yaml.safe_dump(data, allow_unicode=True)).config


def test_the_wiring_and_power_entities_validate_against_home_assistants_schema() -> None:
    cfg = _cfg()
    added = []
    for topic, payload in discovery_messages(cfg, []):
        m = DISCOVERY_TOPIC.match(topic)
        assert m, topic
        conf = yaml.safe_load(payload)
        jsonschema.Draft202012Validator(SCHEMAS[m["component"]]).validate(conf)
        if ":wiring:" in conf["unique_id"] or ":power:" in conf["unique_id"] or ":siren_line:" in conf["unique_id"]:
            added.append((m["component"], conf.get("device_class")))
    assert sorted(added) == sorted(
        [("sensor", "enum"), ("binary_sensor", "power"), ("binary_sensor", "battery"),
         ("sensor", "voltage"), ("binary_sensor", "problem")]
    )


def test_the_templates_read_the_payloads_the_daemon_publishes() -> None:
    cfg = _cfg()
    confs = {c["unique_id"]: c for _, c in discovery_configs(cfg)}
    status = {
        "adc": "ok",
        "loops": {"door.archive": {"state": "cut", "volts": 3.3, "channel": 0}},
        "power": {"mains": "off", "battery": {"state": "low", "volts": 11.2},
                  "sirens": {"siren.hall": "open"}},
    }
    bodies = dict(supervision_state(status, "officeguard/office-a"))
    wiring = confs["officeguard:office-a:wiring:door.archive"]
    assert wiring["state_topic"] == "officeguard/office-a/wiring/door.archive/state"
    assert render(wiring["value_template"], value_json=bodies[wiring["state_topic"]]) == "cut"
    assert set(wiring["options"]) == set(LOOP_STATES)
    power = bodies["officeguard/office-a/power/state"]
    assert render(confs["officeguard:office-a:power:mains"]["value_template"], value_json=power) == "OFF"
    assert render(confs["officeguard:office-a:power:battery"]["value_template"], value_json=power) == "ON"
    assert render(confs["officeguard:office-a:power:battery:volts"]["value_template"], value_json=power) == "11.2"
    line = confs["officeguard:office-a:siren_line:siren.hall"]
    assert render(line["value_template"], value_json=power) == "ON"


def test_the_office_console_keeps_each_sites_power_state() -> None:
    import json

    from controller.console.model import Console

    c = Console("officeguard")
    body = {"mains": "off", "battery": {"state": "low", "volts": 11.2}, "ts": "t"}
    c.ingest("officeguard/office-a/power/state", json.dumps(body).encode(), 0)
    assert c.snapshot(0)["sites"]["office-a"]["power"] == body
    c.ingest("officeguard/office-a/power/state", b"", 1)  # cleared
    assert c.snapshot(1)["sites"]["office-a"]["power"] is None
    c.ingest("officeguard/office-a/power/state", b"[1]", 2)
    assert c.malformed == 1
