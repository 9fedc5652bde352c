"""Sensor types are described once (controller/sensor_types.py), and the config, the engine, the
discovery and the installer's pages all agree with that description."""

from __future__ import annotations

import re
from typing import get_args

import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from controller import texts
from controller.config import ConfigError, Response, SensorType, parse_config
from controller.engine import Arm, SensorChange
from controller.engine import messages as _messages  # noqa: F401  (registers the engine's texts)
from controller.reporting.discovery import discovery_configs
from controller.sensor_types import SENSOR_TYPES, SensorSpec
from tests.conftest import ROOT, Harness, reference_text

TYPES: tuple[str, ...] = get_args(SensorType)
RESPONSES: tuple[str, ...] = get_args(Response)

# The engine's Contact ID codes before the registry, as its tables and tests had them: the
# behaviour the descriptions must keep.
OWN_CID = {"door": 131, "window": 131, "motion": 132, "vibration": 133, "tamper": 137,
           "fire": 110, "panic": 120}
INSTANT_CID = {"door": 131, "window": 131, "motion": 132}  # others: 130
CID_24H = {"fire": 110, "panic": 120, "vibration": 133, "tamper": 137}  # others: 133


def _site(sensor: dict[str, object]) -> Harness:
    """The reference site with one more sensor, `x`, in a zone of its own without delays."""
    data = yaml.safe_load(reference_text())
    data["zones"].append({"id": "z", "name": "Z", "entry_delay": "0s", "exit_delay": "0s"})
    data["sirens"][0]["zones"].append("z")
    data["sensors"].append({"id": "x", "name": "X", "zone": "z", "pin": 4, **sensor})
    return Harness.boot(parse_config(yaml.safe_dump(data, allow_unicode=True)).config)


@given(st.sampled_from(TYPES))
def test_every_type_the_config_accepts_has_one_description(name: str) -> None:
    spec = SENSOR_TYPES[name]
    assert spec.name == name
    h = _site({"type": name})
    sensor = h.engine.sensor_cfg["x"]
    assert sensor.spec is spec
    assert sensor.effective_response == spec.default_response
    assert sensor.effective_wiring == spec.default_wiring
    assert sensor.is_silent == spec.silent
    classes = {c["unique_id"]: c.get("device_class") for _, c in discovery_configs(h.engine.cfg)}
    assert classes["officeguard:office-a:sensor:x"] == spec.device_class


def test_the_registry_describes_exactly_the_types_of_the_config() -> None:
    assert set(SENSOR_TYPES) == set(TYPES)
    assert all(isinstance(s, SensorSpec) for s in SENSOR_TYPES.values())


def test_every_text_a_description_names_is_a_registered_message() -> None:
    known = texts.known()
    keys = [s.text for s in SENSOR_TYPES.values()]
    keys += [s.text_sustained for s in SENSOR_TYPES.values() if s.text_sustained]
    assert [k for k in keys if k not in known] == []
    assert all(s.text_sustained for s in SENSOR_TYPES.values() if s.counts_knocks)


@settings(max_examples=60, deadline=None)
@given(st.sampled_from(TYPES), st.sampled_from(RESPONSES), st.sampled_from([None, True, False]))
def test_a_trip_in_an_armed_zone_alarms_with_the_code_it_had_before_the_registry(
    name: str, response: str, silent: bool | None
) -> None:
    extra = {} if silent is None else {"silent": silent}
    h = _site({"type": name, "response": response, **extra})
    h.feed(Arm(("z",), "away", user="u"))
    n = len(h.events)
    knocks = 3 if name == "vibration" else 1
    for _ in range(knocks):
        h.feed(SensorChange("x", True))
        h.wait(0.1)
        h.feed(SensorChange("x", False))
        h.wait(0.1)
    alarms = [e for e in h.events[n:] if e.kind == "alarm"]
    restores = [e for e in h.events[n:] if e.kind == "alarm_restore"]
    if name in ("vibration", "tamper"):
        code = OWN_CID[name]  # their own rules, whatever the response
    elif response == "entry":
        code = 134  # no entry delay in zone z: at once, as entry/exit
    elif response == "24h":
        code = CID_24H.get(name, 133)
    else:
        code = INSTANT_CID.get(name, 130)
    assert [e.cid for e in alarms][:1] == [f"E{code:03d}"]
    restore = 134 if response == "entry" and name in ("door", "window") else OWN_CID[name]
    assert [e.cid for e in restores] == [f"R{restore:03d}"]
    # `silent` holds only on the 24h response path (a knock or tamper alarm always sounds)
    quiet = silent if silent is not None else name == "panic"
    audible = not (quiet and response == "24h" and name not in ("vibration", "tamper"))
    assert alarms[0].detail["audible"] is audible


@pytest.mark.parametrize("name", TYPES)
def test_only_fire_and_panic_are_never_shut_down_by_the_swinger_limit(name: str) -> None:
    h = _site({"type": name, "response": "24h"} if SENSOR_TYPES[name].follows_response else
              {"type": name})
    h.feed(Arm(("z",), "away", user="u"))
    for _ in range(4):
        for _ in range(3 if name == "vibration" else 1):
            h.feed(SensorChange("x", True))
            h.wait(0.1)
            h.feed(SensorChange("x", False))
            h.wait(0.1)
    shut_down = "E377" in h.cids()
    assert shut_down is (name not in ("fire", "panic"))
    assert SENSOR_TYPES[name].life_safety is (name in ("fire", "panic"))


@pytest.mark.parametrize("name", TYPES)
def test_pulses_and_window_are_refused_on_a_type_that_does_not_count_knocks(name: str) -> None:
    data = yaml.safe_load(reference_text())
    data["sensors"].append({"id": "x", "type": name, "zone": "finance", "pin": 4, "pulses": 2})
    text = yaml.safe_dump(data, allow_unicode=True)
    if SENSOR_TYPES[name].counts_knocks:
        assert parse_config(text).config.sensor("x").attack_pulses == 2
        return
    with pytest.raises(ConfigError) as err:
        parse_config(text)
    assert [p.message for p in err.value.problems] == [
        "pulses and window apply to vibration sensors only"
    ]


def _by_type(cell: str) -> dict[str, str]:
    """`door/window `entry`, motion `follower`` -> {"door": "entry", ...}."""
    out = {}
    for types, value in re.findall(r"([a-z/]+) `([a-z_0-9]+)`", cell):
        for t in types.split("/"):
            out[t] = value
    return out


def test_the_config_reference_gives_the_defaults_of_the_descriptions() -> None:
    page = (ROOT / "docs" / "config.md").read_text(encoding="utf-8")
    rows = {line.split("|")[1].strip(): line.split("by type: ", 1)[1].split(" |")[0]
            for line in page.splitlines()
            if line.startswith("| `response` |") or line.startswith("| `wiring` |")}
    assert _by_type(rows["`response`"]) == {n: s.default_response for n, s in SENSOR_TYPES.items()}
    assert _by_type(rows["`wiring`"]) == {n: s.default_wiring for n, s in SENSOR_TYPES.items()}


def test_the_wiring_page_gives_the_default_wiring_of_every_type() -> None:
    page = (ROOT / "hardware" / "README.md").read_text(encoding="utf-8")
    table = page.split("## How the controller reads a pin", 1)[1].split("\n## ", 1)[0]
    said: dict[str, str] = {}
    for line in table.splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        m = re.fullmatch(r"`(\w+)`", cells[0])
        if m and len(cells) == 5:
            for t in re.findall(r"[a-z]+", cells[4]):
                if t in SENSOR_TYPES:
                    said[t] = m.group(1)
    assert said == {n: s.default_wiring for n, s in SENSOR_TYPES.items()}
