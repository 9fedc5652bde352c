"""Home Assistant MQTT discovery: the site appears in Home Assistant by itself.

One Home Assistant *device* per site, holding:
- an `alarm_control_panel` per zone (state from `P/zone/<zone>/state`, commands to
  `P/zone/<zone>/set` as `{"action": "ARM_AWAY", "code": "..."}`; the code is asked for in Home
  Assistant and checked here, by the controller, never by Home Assistant: `code: REMOTE_CODE`);
- a `binary_sensor` per sensor, with the device class that fits its type (door, window, motion,
  vibration, tamper, smoke for fire, safety for panic) and `bypassed` as an attribute;
- per drone detector: a `binary_sensor` "drone detected" (device class occupancy: on while the
  detector follows at least one track), a `sensor` with the number of tracks, and a connectivity
  `binary_sensor` saying whether the detector itself is online;
- one `binary_sensor` "trouble" (device class problem) from `P/trouble/state`, with the list of
  troubles as an attribute.

Every entity is unavailable while the controller is offline (its retained status / last will on
`P/status`); the detector's entities also while the detector is offline.

Each entity has its own retained config topic, `<discovery_prefix>/<component>/officeguard_<site>/
<object>/config`. The topics announced are remembered in the journal, so when a zone or sensor
leaves the config (after a reload or a restart), or discovery is switched off, an empty retained
payload on its old topic removes it from Home Assistant.

Keys are the full (unabbreviated) names from Home Assistant's MQTT documentation
(alarm_control_panel.mqtt, binary_sensor.mqtt, sensor.mqtt). `default_entity_id` is used, not
`object_id`, which Home Assistant deprecated in 2025.10 and stopped honouring in 2026.4.

`discovery_messages()` is pure; `Discovery` publishes its result through the MQTT link.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import logging
import re
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

from controller import __version__, texts
from controller.config import SiteConfig
from controller.sensor_types import SENSOR_TYPES
from controller.supervision.ha import supervision_entities

if TYPE_CHECKING:
    from controller.journal import Journal
    from controller.reporting.mqtt import MqttLink

log = logging.getLogger(__name__)

STATE_KEY = "ha_discovery"  # journal state: the config topics announced last time
MANUFACTURER = "OfficeGuard"
MODEL = "OfficeGuard alarm controller"
SUPPORT_URL = "https://github.com/officeguard/officeguard"

# sensor type -> Home Assistant binary_sensor device class (from controller/sensor_types.py)
DEVICE_CLASS: dict[str, str] = {name: t.device_class for name, t in SENSOR_TYPES.items()}

# the arming modes the controller supports, as Home Assistant names them
SUPPORTED_FEATURES = ["arm_away", "arm_home", "arm_night"]

# The command Home Assistant publishes on P/zone/<zone>/set. `tojson` quotes the code as a JSON
# string whatever it holds, so the payload is always valid JSON (with null, not the string "None",
# when there is no code); for a numeric code it reads
# {"action": "ARM_AWAY", "code": "1234"}, the form of Home Assistant's own REMOTE_CODE example.
COMMAND_TEMPLATE = '{"action": "{{ action }}", "code": {{ code | tojson }}}'

ONLINE_TEMPLATE = "{{ 'online' if value_json.online else 'offline' }}"

# a patrol plan's sensor (P/patrol/<plan>): its state, with the next round due and the last one
PATROL_ATTRIBUTES = (
    "{{ {'next_due': value_json.next_due, 'last_round': value_json.last_round} | tojson }}"
)

COMPONENTS = ("alarm_control_panel", "binary_sensor", "sensor")
_TOPIC_SEGMENT = re.compile(r"[^A-Za-z0-9_-]")
_OUR_TOPIC = re.compile(
    r"^[^#+\0]+/(alarm_control_panel|binary_sensor|sensor)/officeguard_[A-Za-z0-9_-]+/"
    r"[A-Za-z0-9_-]+/config$"
)

texts.register(
    {
        "ha.drone": {"vi": "Phát hiện drone", "en": "Drone detected"},
        "ha.tracks": {"vi": "Số drone đang theo dõi", "en": "Drone tracks"},
        "ha.detector_online": {"vi": "Kết nối", "en": "Connection"},
        "ha.trouble": {"vi": "Sự cố", "en": "Trouble"},
        "ha.patrol": {"vi": "Tuần tra", "en": "Patrol"},
    }
)


def _segment(s: str) -> str:
    """A topic level Home Assistant accepts for node and object ids: [a-zA-Z0-9_-]."""
    return _TOPIC_SEGMENT.sub("_", s)


def _entity_slug(s: str) -> str:
    """The object part of an entity id: lowercase [a-z0-9_], no leading, trailing or double _."""
    return re.sub(r"_+", "_", re.sub(r"[^a-z0-9]", "_", s.lower())).strip("_") or "x"


def topics_prefix(cfg: SiteConfig) -> str:
    return f"{cfg.mqtt.topic_prefix}/{cfg.site.id}"


def device_info(cfg: SiteConfig) -> dict[str, Any]:
    return {
        "identifiers": [f"officeguard_{cfg.site.id}"],
        "name": cfg.site.name or cfg.site.id,
        "manufacturer": MANUFACTURER,
        "model": MODEL,
        "sw_version": __version__,
    }


def origin_info() -> dict[str, Any]:
    return {"name": "OfficeGuard", "sw_version": __version__, "support_url": SUPPORT_URL}


def _entities(cfg: SiteConfig) -> list[tuple[str, str, dict[str, Any]]]:
    """(component, object key, config) for every entity of the site, in config order."""
    p = topics_prefix(cfg)
    site = cfg.site.id
    lang = cfg.site.language
    base = {"device": device_info(cfg), "origin": origin_info()}
    site_online = {"topic": f"{p}/status", "value_template": ONLINE_TEMPLATE}

    def ids(component: str, kind: str, ident: str, suffix: str = "") -> dict[str, Any]:
        tail = f":{suffix}" if suffix else ""
        slug = _entity_slug(f"officeguard_{site}_{ident}{'_' + suffix if suffix else ''}")
        return {
            "unique_id": f"officeguard:{site}:{kind}:{ident}{tail}",
            "default_entity_id": f"{component}.{slug}",
        }

    out: list[tuple[str, str, dict[str, Any]]] = []
    for z in cfg.zones:
        st = f"{p}/zone/{z.id}/state"
        out.append(
            (
                "alarm_control_panel",
                f"zone_{z.id}",
                {
                    "name": z.name or z.id,
                    **ids("alarm_control_panel", "zone", z.id),
                    **base,
                    "availability": [site_online],
                    "state_topic": st,
                    "value_template": "{{ value_json.state }}",
                    "json_attributes_topic": st,
                    "json_attributes_template": "{{ {'alarm': value_json.alarm} | tojson }}",
                    "command_topic": f"{p}/zone/{z.id}/set",
                    "command_template": COMMAND_TEMPLATE,
                    "code": "REMOTE_CODE",
                    "code_arm_required": True,
                    "code_disarm_required": True,
                    "supported_features": list(SUPPORTED_FEATURES),
                    "qos": 1,
                    "retain": False,
                },
            )
        )
    for s in cfg.sensors:
        st = f"{p}/sensor/{s.id}/state"
        out.append(
            (
                "binary_sensor",
                f"sensor_{s.id}",
                {
                    "name": s.name or s.id,
                    **ids("binary_sensor", "sensor", s.id),
                    **base,
                    "availability": [site_online],
                    "device_class": s.spec.device_class,
                    "state_topic": st,
                    "value_template": "{{ 'ON' if value_json.active else 'OFF' }}",
                    "json_attributes_topic": st,
                    "json_attributes_template": "{{ {'bypassed': value_json.bypassed} | tojson }}",
                    "qos": 1,
                },
            )
        )
    for d in cfg.drone_detectors:
        st = f"{p}/detector/{d.id}/state"
        label = d.name or d.id
        both_online = [site_online, {"topic": st, "value_template": ONLINE_TEMPLATE}]
        out.append(
            (
                "binary_sensor",
                f"detector_{d.id}_drone",
                {
                    "name": f"{label} – {texts.render(lang, 'ha.drone')}",
                    **ids("binary_sensor", "detector", d.id, "drone"),
                    **base,
                    "availability": both_online,
                    "availability_mode": "all",
                    "device_class": "occupancy",
                    "icon": "mdi:quadcopter",
                    "state_topic": st,
                    "value_template": "{{ 'ON' if value_json.tracks > 0 else 'OFF' }}",
                    "qos": 1,
                },
            )
        )
        out.append(
            (
                "sensor",
                f"detector_{d.id}_tracks",
                {
                    "name": f"{label} – {texts.render(lang, 'ha.tracks')}",
                    **ids("sensor", "detector", d.id, "tracks"),
                    **base,
                    "availability": both_online,
                    "availability_mode": "all",
                    "icon": "mdi:quadcopter",
                    "state_class": "measurement",
                    "state_topic": st,
                    "value_template": "{{ value_json.tracks }}",
                    "qos": 1,
                },
            )
        )
        out.append(
            (
                "binary_sensor",
                f"detector_{d.id}_online",
                {
                    "name": f"{label} – {texts.render(lang, 'ha.detector_online')}",
                    **ids("binary_sensor", "detector", d.id, "online"),
                    **base,
                    "availability": [site_online],
                    "device_class": "connectivity",
                    "entity_category": "diagnostic",
                    "state_topic": st,
                    "value_template": "{{ 'ON' if value_json.online else 'OFF' }}",
                    "qos": 1,
                },
            )
        )
    for plan in cfg.patrols:  # one sensor per patrol plan: its state, next due, last round
        pt = f"{p}/patrol/{plan.id}"
        out.append(
            (
                "sensor",
                f"patrol_{plan.id}",
                {
                    "name": f"{texts.render(lang, 'ha.patrol')} {plan.name or plan.id}",
                    **ids("sensor", "patrol", plan.id),
                    **base,
                    "availability": [site_online],
                    "icon": "mdi:shield-account",
                    "state_topic": pt,
                    "value_template": "{{ value_json.state }}",
                    "json_attributes_topic": pt,
                    "json_attributes_template": PATROL_ATTRIBUTES,
                    "qos": 1,
                },
            )
        )
    out += supervision_entities(cfg, p, ids, base, site_online)
    tt = f"{p}/trouble/state"
    out.append(
        (
            "binary_sensor",
            "trouble",
            {
                "name": texts.render(lang, "ha.trouble"),
                "unique_id": f"officeguard:{site}:trouble",
                "default_entity_id": f"binary_sensor.{_entity_slug(f'officeguard_{site}_trouble')}",
                **base,
                "availability": [site_online],
                "device_class": "problem",
                "state_topic": tt,
                "value_template": "{{ 'ON' if value_json.troubles else 'OFF' }}",
                "json_attributes_topic": tt,
                "json_attributes_template": "{{ {'troubles': value_json.troubles} | tojson }}",
                "qos": 1,
            },
        )
    )
    return out


def _config_topics(cfg: SiteConfig, entities: list[tuple[str, str, dict[str, Any]]]) -> list[str]:
    """One config topic per entity. Ids are made of [A-Za-z0-9_.-]; a '.' becomes '_' in a topic,
    and in the rare case two entities then meet on one topic (`a.b` and `a_b`), each of them gets
    a short hash of its unique id appended, so no entity ever overwrites another."""
    dp = cfg.mqtt.discovery_prefix
    node = f"officeguard_{_segment(cfg.site.id)}"
    keys = [(component, _segment(key)) for component, key, _ in entities]
    seen: dict[tuple[str, str], int] = {}
    for k in keys:
        seen[k] = seen.get(k, 0) + 1
    topics = []
    for (component, key), (_, _, conf) in zip(keys, entities, strict=True):
        if seen[(component, key)] > 1:
            digest = hashlib.sha1(conf["unique_id"].encode(), usedforsecurity=False).hexdigest()
            key = f"{key}_{digest[:8]}"
        topics.append(f"{dp}/{component}/{node}/{key}/config")
    return topics


def discovery_configs(cfg: SiteConfig) -> list[tuple[str, dict[str, Any]]]:
    """(config topic, config) for every entity of the site; empty when discovery is off."""
    if not cfg.mqtt.homeassistant_discovery:
        return []
    entities = _entities(cfg)
    return list(zip(_config_topics(cfg, entities), (c for _, _, c in entities), strict=True))


def is_discovery_topic(topic: object) -> bool:
    """A config topic this module could have announced (anything else is never cleared)."""
    return isinstance(topic, str) and bool(_OUR_TOPIC.match(topic))


def discovery_messages(cfg: SiteConfig, previously: Iterable[str]) -> list[tuple[str, str]]:
    """Everything to publish (retained) to bring Home Assistant in line with `cfg`: first an
    empty payload for each topic of `previously` that `cfg` no longer produces (the entity is
    removed), then one JSON config per entity. With discovery off, only the removals."""
    configs = discovery_configs(cfg)
    current = {t for t, _ in configs}
    removals: list[tuple[str, str]] = []
    for t in dict.fromkeys(previously):  # keeps order, drops duplicates
        if t not in current and is_discovery_topic(t):
            removals.append((t, ""))
    return removals + [
        (t, json.dumps(c, ensure_ascii=False, separators=(",", ":"))) for t, c in configs
    ]


class Discovery:
    """Publishes the discovery messages through the link, retained, QoS 1.

    Wiring (in reporting): `start()` once, `announce()` after every (re)connect, `update(cfg)`
    after a config reload. Home Assistant's own `online` on `<discovery_prefix>/status` (its
    birth message, sent when it starts) triggers a re-announce by itself.
    """

    def __init__(self, link: MqttLink, cfg: SiteConfig, journal: Journal) -> None:
        self.link = link
        self.cfg = cfg
        self.journal = journal
        self._subscribed: set[str] = set()
        self._lock = asyncio.Lock()
        self._tasks: set[asyncio.Task[bool]] = set()
        self._queued: asyncio.Task[bool] | None = None  # created, not yet publishing
        self.announcements = 0  # completed announces that published something

    # ------------------------------------------------------------------ wiring

    def start(self) -> None:
        """Listen for Home Assistant's birth message (only while discovery is on)."""
        self._ensure_subscribed()

    def update(self, cfg: SiteConfig) -> asyncio.Task[bool] | None:
        """A reloaded config: announce what changed, remove what left (and everything, once,
        when discovery was switched off)."""
        self.cfg = cfg
        self._ensure_subscribed()
        return self.announce()

    def announce(self) -> asyncio.Task[bool] | None:
        """Publish every config (and the removals) now, in the background. Returns the task
        (True when the broker acknowledged everything), or None while the link is down (the
        next connect announces)."""
        if not self.link.connected:
            return None
        if self._queued is not None and not self._queued.done():
            return self._queued  # one is already waiting to start: it will read the latest cfg
        task = asyncio.ensure_future(self._announce())
        self._queued = task
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return task

    async def close(self) -> None:
        for t in list(self._tasks):
            t.cancel()
        for t in list(self._tasks):
            with contextlib.suppress(asyncio.CancelledError):
                await t

    # ------------------------------------------------------------------ internals

    @property
    def status_topic(self) -> str:
        return f"{self.cfg.mqtt.discovery_prefix}/status"

    def _ensure_subscribed(self) -> None:
        topic = self.status_topic
        if self.cfg.mqtt.homeassistant_discovery and topic not in self._subscribed:
            self._subscribed.add(topic)
            self.link.subscribe(topic, self._on_ha_status, qos=1)

    def _on_ha_status(self, topic: str, payload: bytes) -> None:
        # a subscription for an earlier discovery prefix stays on the link: ignore it
        if topic != self.status_topic or not self.cfg.mqtt.homeassistant_discovery:
            return
        if payload.strip().lower() == b"online":
            log.info("home assistant is online: announcing discovery configs again")
            self.announce()

    def _previously(self) -> list[str]:
        try:
            saved = self.journal.load_state(STATE_KEY)
        except Exception as e:  # a damaged journal must not stop reporting
            log.warning("discovery: cannot read the announced topics: %s", e)
            return []
        if saved is None:
            return []
        if not isinstance(saved, list):
            log.warning("discovery: ignoring a malformed list of announced topics")
            return []
        return [t for t in saved if is_discovery_topic(t)]

    def _save(self, topics: list[str]) -> None:
        try:
            self.journal.save_state(STATE_KEY, topics)
        except Exception as e:
            log.warning("discovery: cannot store the announced topics: %s", e)

    async def _announce(self) -> bool:
        async with self._lock:  # one announce at a time, each reading what the last one stored
            if self._queued is asyncio.current_task():
                self._queued = None
            cfg = self.cfg
            previously = self._previously()
            messages = discovery_messages(cfg, previously)
            if not messages:
                return True
            current = [t for t, payload in messages if payload]
            # remember the union first: a removal interrupted by a disconnect or a crash is
            # sent again by the next announce
            self._save(list(dict.fromkeys([*previously, *current])))
            futures = [
                self.link.publish(topic, payload, qos=1, retain=True) for topic, payload in messages
            ]
            results = await asyncio.gather(*futures)
            if all(results):
                self._save(current)
                self.announcements += 1
                log.info(
                    "discovery: %d config(s) announced, %d removed",
                    len(current),
                    len(messages) - len(current),
                )
                return True
            log.warning(
                "discovery: %d of %d message(s) not acknowledged; announcing again on reconnect",
                results.count(False),
                len(results),
            )
            return False
