"""Home Assistant MQTT discovery: every payload checked against a schema written from Home
Assistant's documentation, templates rendered against the controller's real state payloads,
removal of entities that left the config, and the runtime class against a real Mosquitto."""

from __future__ import annotations

import asyncio
import json
import typing
from collections.abc import Callable
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import jsonschema
import paho.mqtt.client as paho
import pytest
import yaml
from paho.mqtt.enums import CallbackAPIVersion

from controller import __version__
from controller.config import SiteConfig, load_config, parse_config
from controller.engine.model import ZoneStateName
from controller.journal import Journal
from controller.reporting.discovery import (
    COMMAND_TEMPLATE,
    DEVICE_CLASS,
    STATE_KEY,
    Discovery,
    discovery_configs,
    discovery_messages,
)
from controller.reporting.mqtt import MqttLink
from tests.conftest import REFERENCE, ROOT, Harness, reference_text
from tests.ha_discovery_schema import (
    ALARM_ACTIONS,
    ALARM_STATES,
    DISCOVERY_TOPIC,
    SCHEMAS,
    render,
)
from tests.mqtt_broker import Broker, Recorder, until, wait_for

DEMO = ROOT / "config" / "demo.yaml"
TZ = ZoneInfo("Asia/Ho_Chi_Minh")
TS = "2026-02-17T01:30:00+07:00"


def cfg_from(data: dict[str, Any]) -> SiteConfig:
    return parse_config(yaml.safe_dump(data, allow_unicode=True)).config


def ref_data() -> dict[str, Any]:
    data = yaml.safe_load(reference_text())
    assert isinstance(data, dict)
    return data


def without_finance(data: dict[str, Any]) -> dict[str, Any]:
    """The reference site after the finance room (zone, door, safe sensor) left the config."""
    d: dict[str, Any] = json.loads(json.dumps(data))
    d["zones"] = [z for z in d["zones"] if z["id"] != "finance"]
    d["sensors"] = [s for s in d["sensors"] if s["zone"] != "finance"]
    for key in ("sirens", "keypads", "users", "schedules"):
        for item in d.get(key, []):
            if "zones" in item and item["zones"]:
                item["zones"] = [z for z in item["zones"] if z != "finance"]
    return d


def payloads(msgs: list[tuple[str, str]]) -> dict[str, dict[str, Any]]:
    return {t: json.loads(p) for t, p in msgs if p}


# ----------------------------------------------------------------------------- schema


@pytest.mark.parametrize("path", [REFERENCE, DEMO], ids=["reference", "demo"])
def test_every_payload_validates_against_home_assistants_documented_schema(path: Path) -> None:
    cfg = load_config(path).config
    msgs = discovery_messages(cfg, [])
    assert all(p for _, p in msgs)  # nothing to remove on a first announce
    by_component: dict[str, int] = {}
    for topic, payload in msgs:
        m = DISCOVERY_TOPIC.match(topic)
        assert m, topic
        assert m["prefix"] == "homeassistant" and m["node"] == f"officeguard_{cfg.site.id}"
        component = m["component"]
        by_component[component] = by_component.get(component, 0) + 1
        conf = json.loads(payload)
        jsonschema.Draft202012Validator(SCHEMAS[component]).validate(conf)
        # the key Home Assistant stopped honouring in 2026.4 is not used
        assert "object_id" not in conf and conf["default_entity_id"].startswith(component + ".")
    zones, sensors, detectors = len(cfg.zones), len(cfg.sensors), len(cfg.drone_detectors)
    assert by_component == {
        "alarm_control_panel": zones,
        "binary_sensor": sensors + 2 * detectors + 1,  # + drone, connectivity; + trouble
        "sensor": detectors,  # tracks
    }


def test_the_schema_refuses_what_home_assistant_would_not_take() -> None:
    cfg = load_config(REFERENCE).config
    confs = {c["unique_id"]: c for _, c in discovery_configs(cfg)}
    panel = dict(confs["officeguard:office-a:zone:leadership"])
    door = dict(confs["officeguard:office-a:sensor:door.director"])
    bad = [
        ("alarm_control_panel", {**panel, "supported_features": ["arm_away", "arm_holiday"]}),
        ("alarm_control_panel", {k: v for k, v in panel.items() if k != "command_topic"}),
        ("alarm_control_panel", {**panel, "state_topc": panel["state_topic"]}),  # a typo
        ("binary_sensor", {**door, "device_class": "contact"}),
        ("binary_sensor", {**door, "default_entity_id": "binary_sensor.a__b"}),
        ("binary_sensor", {**door, "device": {"name": "no identifiers"}}),
        ("binary_sensor", {**door, "availability_mode": "most"}),
    ]
    for component, conf in bad:
        with pytest.raises(jsonschema.ValidationError):
            jsonschema.Draft202012Validator(SCHEMAS[component]).validate(conf)


def test_one_device_per_site_shared_by_every_entity() -> None:
    cfg = load_config(REFERENCE).config
    devices = [c["device"] for _, c in discovery_configs(cfg)]
    assert all(d == devices[0] for d in devices)
    assert devices[0] == {
        "identifiers": ["officeguard_office-a"],
        "name": "Trụ sở cơ quan - Khu nhà A",
        "manufacturer": "OfficeGuard",
        "model": "OfficeGuard alarm controller",
        "sw_version": __version__,
    }
    origins = {json.dumps(c["origin"]) for _, c in discovery_configs(cfg)}
    assert len(origins) == 1 and json.loads(origins.pop())["name"] == "OfficeGuard"


def test_alarm_panel_per_zone_with_remote_code_and_the_controllers_topics() -> None:
    cfg = load_config(REFERENCE).config
    panels = {c["unique_id"]: (t, c) for t, c in discovery_configs(cfg) if "command_topic" in c}
    assert set(panels) == {f"officeguard:office-a:zone:{z.id}" for z in cfg.zones}
    topic, c = panels["officeguard:office-a:zone:leadership"]
    assert topic == "homeassistant/alarm_control_panel/officeguard_office-a/zone_leadership/config"
    assert c["name"] == "Phòng lãnh đạo"
    assert c["state_topic"] == "officeguard/office-a/zone/leadership/state"
    assert c["command_topic"] == "officeguard/office-a/zone/leadership/set"
    assert c["value_template"] == "{{ value_json.state }}"
    assert c["code"] == "REMOTE_CODE"
    assert c["code_arm_required"] is True and c["code_disarm_required"] is True
    assert c["supported_features"] == ["arm_away", "arm_home", "arm_night"]
    assert c["retain"] is False  # a retained arm command would fire again on every reconnect
    assert c["availability"] == [
        {
            "topic": "officeguard/office-a/status",
            "value_template": "{{ 'online' if value_json.online else 'offline' }}",
        }
    ]
    assert c["default_entity_id"] == "alarm_control_panel.officeguard_office_a_leadership"


def test_binary_sensor_device_class_follows_the_sensor_type() -> None:
    assert DEVICE_CLASS == {
        "door": "door",
        "window": "window",
        "motion": "motion",
        "vibration": "vibration",
        "tamper": "tamper",
        "fire": "smoke",
        "panic": "safety",
    }
    data = ref_data()
    pins = iter([4, 7, 8, 9, 10, 11, 14])
    data["sensors"] = [
        {"id": f"s.{t}", "type": t, "zone": "leadership", "pin": next(pins)}
        for t in ("door", "window", "motion", "vibration", "tamper", "fire", "panic")
    ]
    cfg = cfg_from(data)
    got = {
        c["unique_id"].rsplit(":", 1)[1]: c["device_class"]
        for _, c in discovery_configs(cfg)
        if ":sensor:" in c["unique_id"]
    }
    assert got == {f"s.{t}": dc for t, dc in DEVICE_CLASS.items()}
    for topic, payload in discovery_messages(cfg, []):
        component = topic.split("/")[1]
        jsonschema.Draft202012Validator(SCHEMAS[component]).validate(json.loads(payload))


# ----------------------------------------------------------------------------- templates


def test_templates_turn_the_controllers_real_payloads_into_home_assistant_states() -> None:
    cfg = load_config(REFERENCE).config
    confs = {c["unique_id"]: c for _, c in discovery_configs(cfg)}
    # zone states: every state the engine can publish is one Home Assistant accepts
    panel = confs["officeguard:office-a:zone:leadership"]
    for state in typing.get_args(ZoneStateName):
        value_json = {"state": state, "alarm": state == "triggered", "ts": TS}
        assert render(panel["value_template"], value_json=value_json) == state
        assert state in ALARM_STATES
        attrs = json.loads(render(panel["json_attributes_template"], value_json=value_json))
        assert attrs == {"alarm": state == "triggered"}
    # the payloads the engine really produces (as reporting publishes them)
    h = Harness.boot(cfg, sensors={"door.director": True})
    st = h.engine.status()
    for zid, z in st["zones"].items():
        c = confs[f"officeguard:office-a:zone:{zid}"]
        v = {"state": z["state"], "alarm": z["alarm"], "ts": TS}
        assert render(c["value_template"], value_json=v) in ALARM_STATES
    for sid, s in st["sensors"].items():
        c = confs[f"officeguard:office-a:sensor:{sid}"]
        v = {"active": s["active"], "bypassed": s["bypassed"], "ts": TS}
        want = "ON" if s["active"] else "OFF"
        assert render(c["value_template"], value_json=v) == want
        assert json.loads(render(c["json_attributes_template"], value_json=v)) == {
            "bypassed": s["bypassed"]
        }
    assert st["sensors"]["door.director"]["active"] is True  # so both ON and OFF were seen
    # availability from the controller's status and last will
    avail = panel["availability"][0]["value_template"]
    assert render(avail, value_json={"online": True, "version": "0.1.0", "ts": TS}) == "online"
    assert render(avail, value_json={"online": False}) == "offline"
    assert render(avail, value_json={"online": False, "ts": TS, "reason": "stop"}) == "offline"


def test_drone_and_trouble_entities_follow_their_state_topics() -> None:
    cfg = load_config(REFERENCE).config
    confs = {c["unique_id"]: c for _, c in discovery_configs(cfg)}
    drone = confs["officeguard:office-a:detector:rf.roof:drone"]
    tracks = confs["officeguard:office-a:detector:rf.roof:tracks"]
    online = confs["officeguard:office-a:detector:rf.roof:online"]
    for c in (drone, tracks, online):
        assert c["state_topic"] == "officeguard/office-a/detector/rf.roof/state"
    assert drone["device_class"] == "occupancy"
    assert online["device_class"] == "connectivity"
    # drone entities are unavailable while the controller or the detector is offline
    assert [a["topic"] for a in drone["availability"]] == [
        "officeguard/office-a/status",
        "officeguard/office-a/detector/rf.roof/state",
    ]
    assert drone["availability_mode"] == "all"
    for n, want in ((0, "OFF"), (1, "ON"), (3, "ON")):
        v = {"online": True, "tracks": n, "ts": TS}
        assert render(drone["value_template"], value_json=v) == want
        assert int(render(tracks["value_template"], value_json=v)) == n
        for a in drone["availability"]:
            assert render(a["value_template"], value_json=v) == "online"
    offline = {"online": False, "tracks": 0, "ts": TS}
    assert render(drone["availability"][1]["value_template"], value_json=offline) == "offline"
    assert render(online["value_template"], value_json=offline) == "OFF"

    trouble = confs["officeguard:office-a:trouble"]
    assert trouble["state_topic"] == "officeguard/office-a/trouble/state"
    assert trouble["device_class"] == "problem"
    assert trouble["name"] == "Sự cố"  # the site's language
    none: dict[str, Any] = {"troubles": [], "ts": TS}
    assert render(trouble["value_template"], value_json=none) == "OFF"
    listed = [{"source": "rf.roof", "cid": "E350", "what": "offline"}]
    some = {"troubles": listed, "ts": TS}
    assert render(trouble["value_template"], value_json=some) == "ON"
    assert json.loads(render(trouble["json_attributes_template"], value_json=some)) == {
        "troubles": listed
    }


def test_entity_names_in_english_for_an_english_site() -> None:
    data = ref_data()
    data["site"]["language"] = "en"
    confs = {c["unique_id"]: c for _, c in discovery_configs(cfg_from(data))}
    assert confs["officeguard:office-a:trouble"]["name"] == "Trouble"
    assert confs["officeguard:office-a:detector:rf.roof:drone"]["name"].endswith("Drone detected")


@pytest.mark.parametrize("feature", ["arm_away", "arm_home", "arm_night", "disarm"])
def test_command_template_renders_the_json_command_the_daemon_takes(feature: str) -> None:
    action = ALARM_ACTIONS.get(feature, "DISARM")
    out = render(COMMAND_TEMPLATE, action=action, code="1234")
    assert json.loads(out) == {"action": action, "code": "1234"}
    assert action in ("ARM_AWAY", "ARM_HOME", "ARM_NIGHT", "DISARM")
    # and the daemon's own parser of P/zone/<zone>/set reads it as meant
    commands = pytest.importorskip("controller.remote.commands")
    cmd, raw = commands.parse_zone_set("leadership", out.encode())
    assert raw == {"action": action, "code": "1234"}
    assert cmd.zones == ("leadership",) and cmd.code == "1234"
    want = {"arm_away": "away", "arm_home": "home", "arm_night": "night"}.get(feature)
    assert (cmd.action, cmd.mode) == (("arm", want) if want else ("disarm", None))


def test_command_template_stays_valid_json_whatever_the_code() -> None:
    for code in ('12"34', "12\\34", "0042", "<&>'"):
        assert json.loads(render(COMMAND_TEMPLATE, action="DISARM", code=code)) == {
            "action": "DISARM",
            "code": code,
        }
    # no code at all: null (not the string "None", which would read as a wrong code)
    assert json.loads(render(COMMAND_TEMPLATE, action="ARM_AWAY", code=None)) == {
        "action": "ARM_AWAY",
        "code": None,
    }


# ----------------------------------------------------------------------------- identity, removal


def test_unique_ids_and_topics_are_unique_and_stable() -> None:
    cfg = load_config(REFERENCE).config
    first = discovery_configs(cfg)
    uids = [c["unique_id"] for _, c in first]
    topics = [t for t, _ in first]
    entity_ids = [c["default_entity_id"] for _, c in first]
    assert len(set(uids)) == len(uids) and len(set(topics)) == len(topics)
    assert len(set(entity_ids)) == len(entity_ids)
    # the same config gives the same messages, byte for byte
    assert discovery_messages(cfg, []) == discovery_messages(load_config(REFERENCE).config, [])
    # adding a zone and a sensor changes nothing for the others
    data = ref_data()
    data["zones"].append({"id": "archive", "name": "Kho lưu trữ"})
    data["sensors"].append({"id": "door.archive", "type": "door", "zone": "archive", "pin": 4})
    grown = dict((c["unique_id"], (t, c)) for t, c in discovery_configs(cfg_from(data)))
    for t, c in first:
        assert grown[c["unique_id"]] == (t, c)
    assert "officeguard:office-a:zone:archive" in grown


def test_ids_that_meet_on_one_topic_get_distinct_topics() -> None:
    data = ref_data()
    data["sensors"] += [
        {"id": "win.a", "type": "window", "zone": "finance", "pin": 4},
        {"id": "win_a", "type": "window", "zone": "finance", "pin": 7},
    ]
    cfg = cfg_from(data)
    topics = {c["unique_id"]: t for t, c in discovery_configs(cfg)}
    a, b = topics["officeguard:office-a:sensor:win.a"], topics["officeguard:office-a:sensor:win_a"]
    assert a != b
    for t in (a, b):
        assert DISCOVERY_TOPIC.match(t)
    assert topics == {c["unique_id"]: t for t, c in discovery_configs(cfg_from(data))}


def test_a_zone_or_sensor_that_left_the_config_gets_an_empty_payload() -> None:
    full = load_config(REFERENCE).config
    before = [t for t, _ in discovery_messages(full, [])]
    smaller = cfg_from(without_finance(ref_data()))
    msgs = discovery_messages(smaller, before)
    removed = [t for t, p in msgs if p == ""]
    assert sorted(removed) == sorted(
        [
            "homeassistant/alarm_control_panel/officeguard_office-a/zone_finance/config",
            "homeassistant/binary_sensor/officeguard_office-a/sensor_door_finance/config",
            "homeassistant/binary_sensor/officeguard_office-a/sensor_vib_safe1/config",
        ]
    )
    # removals come first, then every remaining entity (unchanged)
    assert [p for _, p in msgs[: len(removed)]] == [""] * len(removed)
    kept = payloads(msgs)
    assert set(kept) == set(before) - set(removed)
    assert kept == {t: c for t, c in payloads(discovery_messages(full, [])).items() if t in kept}
    # once removed, not removed again; duplicates and foreign topics in `previously` ignored
    now = [t for t, p in msgs if p]
    foreign = ["officeguard/office-a/status", "homeassistant/light/other/lamp/config", "x/#"]
    again = discovery_messages(smaller, now + now + foreign)
    assert [t for t, p in again if p == ""] == []


def test_discovery_off_publishes_nothing_but_removes_what_was_announced() -> None:
    full = load_config(REFERENCE).config
    before = [t for t, _ in discovery_messages(full, [])]
    data = ref_data()
    data["mqtt"]["homeassistant_discovery"] = False
    off = cfg_from(data)
    assert discovery_messages(off, []) == []
    msgs = discovery_messages(off, before)
    assert msgs == [(t, "") for t in before]


def test_custom_discovery_prefix_moves_every_topic() -> None:
    data = ref_data()
    data["mqtt"]["discovery_prefix"] = "ha-test/disc"
    cfg = cfg_from(data)
    old = [t for t, _ in discovery_messages(load_config(REFERENCE).config, [])]
    msgs = discovery_messages(cfg, old)
    assert all(t.startswith("ha-test/disc/") for t, p in msgs if p)
    assert sorted(t for t, p in msgs if p == "") == sorted(old)  # the old prefix is cleaned up


# ----------------------------------------------------------------------------- runtime, fake link


class FakeLink:
    """Acknowledges or refuses publishes as told; records them."""

    def __init__(self) -> None:
        self.connected = True
        self.ack = True
        self.sent: list[tuple[str, str, bool]] = []
        self.subs: dict[str, Callable[[str, bytes], None]] = {}

    def publish(
        self, topic: str, payload: str | bytes, qos: int = 1, retain: bool = False
    ) -> asyncio.Future[bool]:
        assert qos == 1
        fut: asyncio.Future[bool] = asyncio.get_running_loop().create_future()
        fut.set_result(self.ack and self.connected)
        self.sent.append((topic, str(payload), retain))
        return fut

    def subscribe(self, flt: str, handler: Callable[[str, bytes], None], qos: int = 1) -> None:
        self.subs[flt] = handler


def test_unacknowledged_removal_is_sent_again_by_the_next_announce(tmp_path: Path) -> None:
    async def main() -> None:
        journal = Journal(tmp_path / "j.db", "office-a", TZ, synchronous="NORMAL")
        link = FakeLink()
        full = load_config(REFERENCE).config
        d = Discovery(link, full, journal)  # type: ignore[arg-type]
        d.start()
        assert "homeassistant/status" in link.subs
        task = d.announce()
        assert task is not None and await task is True
        announced = journal.load_state(STATE_KEY)
        assert sorted(announced) == sorted(t for t, _ in discovery_messages(full, []))
        assert all(retain for _, _, retain in link.sent)

        # the broker drops the connection in the middle of the removal
        link.ack = False
        link.sent.clear()
        smaller = cfg_from(without_finance(ref_data()))
        task = d.update(smaller)
        assert task is not None and await task is False
        gone = "homeassistant/alarm_control_panel/officeguard_office-a/zone_finance/config"
        assert (gone, "", True) in link.sent
        assert gone in journal.load_state(STATE_KEY)  # still to be removed

        # after a restart (a new Discovery on the same journal) it is removed for good
        link.ack = True
        link.sent.clear()
        d2 = Discovery(link, smaller, journal)  # type: ignore[arg-type]
        task = d2.announce()
        assert task is not None and await task is True
        assert (gone, "", True) in link.sent
        assert gone not in journal.load_state(STATE_KEY)
        link.sent.clear()
        task = d2.announce()
        assert task is not None and await task is True
        assert [t for t, p, _ in link.sent if p == ""] == []

        # not connected: nothing happens, nothing is stored
        link.connected = False
        assert d2.announce() is None
        journal.close()

    asyncio.run(main())


def test_a_damaged_announced_list_is_ignored_not_fatal(tmp_path: Path) -> None:
    async def main() -> None:
        journal = Journal(tmp_path / "j.db", "office-a", TZ, synchronous="NORMAL")
        journal.save_state(STATE_KEY, {"not": "a list"})
        link = FakeLink()
        d = Discovery(link, load_config(REFERENCE).config, journal)  # type: ignore[arg-type]
        task = d.announce()
        assert task is not None and await task is True
        assert all(p for _, p, _ in link.sent)
        assert isinstance(journal.load_state(STATE_KEY), list)
        journal.close()

    asyncio.run(main())


def test_home_assistant_birth_message_triggers_a_reannounce_only_when_online(
    tmp_path: Path,
) -> None:
    async def main() -> None:
        journal = Journal(tmp_path / "j.db", "office-a", TZ, synchronous="NORMAL")
        link = FakeLink()
        d = Discovery(link, load_config(REFERENCE).config, journal)  # type: ignore[arg-type]
        d.start()
        handler = link.subs["homeassistant/status"]
        handler("homeassistant/status", b"offline")
        await asyncio.sleep(0)
        assert link.sent == []
        handler("homeassistant/status", b"online")
        assert await until(lambda: d.announcements == 1)
        assert len(link.sent) == len(discovery_messages(d.cfg, []))
        journal.close()

    asyncio.run(main())


def test_announces_asked_for_at_once_are_coalesced(tmp_path: Path) -> None:
    async def main() -> None:
        journal = Journal(tmp_path / "j.db", "office-a", TZ, synchronous="NORMAL")
        link = FakeLink()
        cfg = load_config(REFERENCE).config
        d = Discovery(link, cfg, journal)  # type: ignore[arg-type]
        # a reconnect and Home Assistant's birth message in the same loop turn: one announce
        first, second = d.announce(), d.announce()
        assert first is not None and first is second
        assert await first is True
        assert len(link.sent) == len(discovery_messages(cfg, []))
        # once it has started publishing, a new request is a new announce (HA may have restarted)
        third = d.announce()
        assert third is not None and third is not first and await third is True
        assert d.announcements == 2
        journal.close()

    asyncio.run(main())


def test_discovery_switched_off_cleans_up_once_then_stays_silent(tmp_path: Path) -> None:
    async def main() -> None:
        journal = Journal(tmp_path / "j.db", "office-a", TZ, synchronous="NORMAL")
        link = FakeLink()
        full = load_config(REFERENCE).config
        d = Discovery(link, full, journal)  # type: ignore[arg-type]
        d.start()
        task = d.announce()
        assert task is not None and await task
        n = len(link.sent)
        link.sent.clear()
        data = ref_data()
        data["mqtt"]["homeassistant_discovery"] = False
        task = d.update(cfg_from(data))
        assert task is not None and await task
        assert len(link.sent) == n and all(p == "" for _, p, _ in link.sent)
        link.sent.clear()
        task = d.announce()
        assert task is not None and await task
        link.subs["homeassistant/status"]("homeassistant/status", b"online")
        await asyncio.sleep(0.01)
        assert link.sent == []
        journal.close()

    asyncio.run(main())


# ----------------------------------------------------------------------------- real broker



def site_cfg(data: dict[str, Any], url: str) -> SiteConfig:
    d = json.loads(json.dumps(data))
    d["mqtt"]["url"] = url
    return cfg_from(d)


def retained_configs(port: int, client_id: str, expect: int) -> dict[str, bytes]:
    """What a client subscribing now gets on the config topics (retained messages only): at
    least `expect` of them, plus any that would follow shortly after."""
    rec = Recorder(port, "homeassistant/+/+/+/config", client_id)
    try:
        assert wait_for(lambda: len(rec.snapshot()) >= expect, 10.0)
        seen: list[int] = []

        def settled() -> bool:  # no stray extra message right behind the expected ones
            seen.append(len(rec.snapshot()))
            return len(seen) > 20 and seen[-1] == seen[-20]

        wait_for(settled, 5.0, step=0.01)
        return {t: p for t, p, retained in rec.snapshot() if retained}
    finally:
        rec.close()


def make_link(cfg: SiteConfig) -> MqttLink:
    return MqttLink(cfg.mqtt, cfg.site.id, reconnect_min=0.05, reconnect_max=0.2)


@pytest.mark.integration
def test_with_mosquitto_announce_reannounce_and_removal(broker: Broker, tmp_path: Path) -> None:
    async def main() -> None:
        full = site_cfg(ref_data(), broker.url)
        journal = Journal(tmp_path / "j.db", "office-a", TZ, synchronous="NORMAL")
        link = make_link(full)
        d = Discovery(link, full, journal)
        d.start()
        link.start()
        assert await until(lambda: link.connected)
        task = d.announce()
        assert task is not None and await asyncio.wait_for(task, 10) is True

        # a fresh subscriber (Home Assistant starting) gets every config, retained
        expected = {t: p.encode() for t, p in discovery_messages(full, [])}
        got = await asyncio.to_thread(retained_configs, broker.port, "ha-1", len(expected))
        assert got == expected
        for topic, payload in got.items():
            jsonschema.Draft202012Validator(SCHEMAS[topic.split("/")[1]]).validate(
                json.loads(payload)
            )

        # Home Assistant's birth message: everything is announced again
        live = await asyncio.to_thread(Recorder, broker.port, "homeassistant/+/+/+/config", "live")
        assert await until(lambda: len(live.snapshot()) >= len(expected))
        live.messages.clear()
        ha = paho.Client(CallbackAPIVersion.VERSION2, client_id="ha-birth")
        ha.connect("127.0.0.1", broker.port)
        ha.loop_start()
        ha.publish("homeassistant/status", "offline", qos=1).wait_for_publish(5)
        ha.publish("homeassistant/status", "online", qos=1).wait_for_publish(5)
        assert await until(lambda: d.announcements == 2, 10)
        assert await until(lambda: len(live.snapshot()) >= len(expected))
        fresh = [(t, p) for t, p, retained in live.snapshot() if not retained]
        assert dict(fresh) == expected and len(fresh) == len(expected)
        ha.loop_stop()
        ha.disconnect()
        live.close()
        await link.close()

        # the daemon restarts with the finance room gone: a new link, a new Discovery
        smaller = site_cfg(without_finance(ref_data()), broker.url)
        link2 = make_link(smaller)
        d2 = Discovery(link2, smaller, journal)
        d2.start()
        link2.start()
        assert await until(lambda: link2.connected)
        task = d2.announce()
        assert task is not None and await asyncio.wait_for(task, 10) is True
        expected2 = {t: p.encode() for t, p in discovery_messages(smaller, [])}
        got2 = await asyncio.to_thread(retained_configs, broker.port, "ha-2", len(expected2))
        gone = "homeassistant/alarm_control_panel/officeguard_office-a/zone_finance/config"
        assert gone in expected and gone not in got2
        assert got2 == expected2
        await link2.close()
        journal.close()

    asyncio.run(main())
