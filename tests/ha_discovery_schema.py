"""JSON Schemas of Home Assistant's MQTT discovery payloads, written from its documentation
(home-assistant.io: integrations/mqtt "MQTT Discovery", alarm_control_panel.mqtt,
binary_sensor.mqtt, sensor.mqtt, binary_sensor "Device class"), for the three platforms the
controller announces. Only documented keys are allowed (`additionalProperties: false`; Home
Assistant itself ignores unknown keys, so a typo would otherwise go unnoticed), required keys
are required, and enumerated values (device classes, supported features, availability modes,
entity categories, state classes, QoS) are checked.

`default_entity_id` replaced `object_id` in Home Assistant 2025.10 (object_id stopped working in
2026.4); both are documented keys, the test of the controller checks it uses the new one.

Also here: the states and payloads Home Assistant accepts, and a small renderer for the Jinja
templates of a config (jinja2 when installed, else an evaluator for the expression subset the
controller uses), so the tests can check what a template gives for a real state payload.
"""

from __future__ import annotations

import json
import re
from typing import Any

# alarm_control_panel.mqtt: "Valid state payloads are ..."
ALARM_STATES = {
    "armed_away",
    "armed_custom_bypass",
    "armed_home",
    "armed_night",
    "armed_vacation",
    "arming",
    "disarmed",
    "disarming",
    "pending",
    "triggered",
}
# alarm_control_panel.mqtt: payload_* defaults, the `action` variable of command_template
ALARM_ACTIONS = {
    "arm_away": "ARM_AWAY",
    "arm_home": "ARM_HOME",
    "arm_night": "ARM_NIGHT",
    "arm_vacation": "ARM_VACATION",
    "arm_custom_bypass": "ARM_CUSTOM_BYPASS",
    "trigger": "TRIGGER",
}
ALARM_FEATURES = list(ALARM_ACTIONS)

# binary_sensor: "The following device classes are supported for binary sensors"
BINARY_SENSOR_DEVICE_CLASSES = [
    "battery", "battery_charging", "carbon_monoxide", "cold", "connectivity", "door",
    "garage_door", "gas", "heat", "light", "lock", "moisture", "motion", "moving", "occupancy",
    "opening", "plug", "power", "presence", "problem", "running", "safety", "smoke", "sound",
    "tamper", "update", "vibration", "window",
]  # fmt: skip
# sensor entity developer docs: available state classes
SENSOR_STATE_CLASSES = ["measurement", "measurement_angle", "total", "total_increasing"]

_TOPIC = {"type": "string", "minLength": 1, "pattern": r"^[^#+\u0000]+$"}
_TEMPLATE = {"type": "string", "pattern": r"\{\{.*\}\}|\{%.*%\}"}
_QOS = {"enum": [0, 1, 2]}


def _default_entity_id(component: str) -> dict[str, Any]:
    # Home Assistant's valid entity id: <domain>.<object>, [a-z0-9_], no leading, trailing or
    # double underscore
    return {"type": "string", "pattern": rf"^{component}\.(?!_)(?!.*__)[a-z0-9_]+(?<!_)$"}


DEVICE = {
    "type": "object",
    "additionalProperties": False,
    "properties": {
        "configuration_url": {"type": "string", "pattern": r"^(https?|homeassistant)://"},
        "connections": {
            "type": "array",
            "items": {"type": "array", "minItems": 2, "maxItems": 2, "items": {"type": "string"}},
        },
        "hw_version": {"type": "string"},
        "identifiers": {
            "anyOf": [
                {"type": "string", "minLength": 1},
                {"type": "array", "minItems": 1, "items": {"type": "string", "minLength": 1}},
            ]
        },
        "manufacturer": {"type": "string"},
        "model": {"type": "string"},
        "model_id": {"type": "string"},
        "name": {"type": "string", "minLength": 1},
        "serial_number": {"type": "string"},
        "suggested_area": {"type": "string"},
        "sw_version": {"type": "string"},
        "via_device": {"type": "string"},
    },
    # "At least one of identifiers or connections must be present to identify the device."
    "anyOf": [{"required": ["identifiers"]}, {"required": ["connections"]}],
}

ORIGIN = {
    "type": "object",
    "additionalProperties": False,
    "required": ["name"],
    "properties": {
        "name": {"type": "string", "minLength": 1},
        "sw_version": {"type": "string"},
        "support_url": {"type": "string", "pattern": r"^https?://"},
    },
}

AVAILABILITY_ITEM = {
    "type": "object",
    "additionalProperties": False,
    "required": ["topic"],
    "properties": {
        "topic": _TOPIC,
        "payload_available": {"type": "string"},
        "payload_not_available": {"type": "string"},
        "value_template": _TEMPLATE,
    },
}


def _common(component: str) -> dict[str, Any]:
    """Options every one of the three MQTT platforms documents."""
    return {
        "availability": {"type": "array", "minItems": 1, "items": AVAILABILITY_ITEM},
        "availability_mode": {"enum": ["all", "any", "latest"]},
        "availability_template": _TEMPLATE,
        "availability_topic": _TOPIC,
        "default_entity_id": _default_entity_id(component),
        "device": DEVICE,
        "enabled_by_default": {"type": "boolean"},
        "encoding": {"type": "string"},
        "entity_picture": {"type": "string"},
        "icon": {"type": "string", "pattern": r"^[a-z0-9-]+:[a-z0-9-]+$"},
        "json_attributes_template": _TEMPLATE,
        "json_attributes_topic": _TOPIC,
        "name": {"type": ["string", "null"]},
        "object_id": {"type": "string", "pattern": r"^[A-Za-z0-9_-]+$"},
        "origin": ORIGIN,
        "payload_available": {"type": "string"},
        "payload_not_available": {"type": "string"},
        "qos": _QOS,
        "state_topic": _TOPIC,
        "unique_id": {"type": "string", "minLength": 1},
        "value_template": _TEMPLATE,
    }


_NOT_BOTH_AVAILABILITY = {"not": {"required": ["availability", "availability_topic"]}}

ALARM_CONTROL_PANEL = {
    "type": "object",
    "additionalProperties": False,
    "required": ["state_topic", "command_topic"],
    "properties": {
        **_common("alarm_control_panel"),
        "entity_category": {"enum": ["config", "diagnostic"]},
        "code": {"type": "string"},
        "code_arm_required": {"type": "boolean"},
        "code_disarm_required": {"type": "boolean"},
        "code_trigger_required": {"type": "boolean"},
        "command_template": _TEMPLATE,
        "command_topic": _TOPIC,
        "payload_arm_away": {"type": "string"},
        "payload_arm_home": {"type": "string"},
        "payload_arm_night": {"type": "string"},
        "payload_arm_vacation": {"type": "string"},
        "payload_arm_custom_bypass": {"type": "string"},
        "payload_disarm": {"type": "string"},
        "payload_trigger": {"type": "string"},
        "retain": {"type": "boolean"},
        "supported_features": {
            "type": "array",
            "uniqueItems": True,
            "items": {"enum": ALARM_FEATURES},
        },
    },
    "allOf": [_NOT_BOTH_AVAILABILITY],
}

BINARY_SENSOR = {
    "type": "object",
    "additionalProperties": False,
    "required": ["state_topic"],
    "properties": {
        **_common("binary_sensor"),
        "device_class": {"enum": [*BINARY_SENSOR_DEVICE_CLASSES, None]},
        # "When set, the entity category must be diagnostic for sensors."
        "entity_category": {"enum": ["diagnostic"]},
        "expire_after": {"type": "integer", "minimum": 0},
        "force_update": {"type": "boolean"},
        "off_delay": {"type": "integer", "minimum": 0},
        "payload_off": {"type": "string"},
        "payload_on": {"type": "string"},
    },
    "allOf": [_NOT_BOTH_AVAILABILITY],
}

SENSOR = {
    "type": "object",
    "additionalProperties": False,
    "required": ["state_topic"],
    "properties": {
        **_common("sensor"),
        "device_class": {"type": ["string", "null"]},
        "entity_category": {"enum": ["diagnostic"]},
        "expire_after": {"type": "integer", "minimum": 0},
        "force_update": {"type": "boolean"},
        "last_reset_value_template": _TEMPLATE,
        "options": {"type": "array", "minItems": 1, "items": {"type": "string"}},
        "state_class": {"enum": SENSOR_STATE_CLASSES},
        "suggested_display_precision": {"type": "integer", "minimum": 0},
        "unit_of_measurement": {"type": ["string", "null"]},
    },
    "allOf": [
        _NOT_BOTH_AVAILABILITY,
        # "options ... cannot be used together with state_class or unit_of_measurement"
        {"not": {"required": ["options", "state_class"]}},
        {"not": {"required": ["options", "unit_of_measurement"]}},
    ],
}

SCHEMAS: dict[str, dict[str, Any]] = {
    "alarm_control_panel": ALARM_CONTROL_PANEL,
    "binary_sensor": BINARY_SENSOR,
    "sensor": SENSOR,
}

# <discovery_prefix>/<component>/[<node_id>/]<object_id>/config, ids in [a-zA-Z0-9_-]
DISCOVERY_TOPIC = re.compile(
    r"^(?P<prefix>[^#+]+)/(?P<component>[a-z_]+)/(?:(?P<node>[A-Za-z0-9_-]+)/)?"
    r"(?P<object>[A-Za-z0-9_-]+)/config$"
)


# ----------------------------------------------------------------------------- templates

try:  # the real engine when it is installed (Home Assistant's templates are Jinja2)
    from jinja2.sandbox import ImmutableSandboxedEnvironment

    _ENV: Any = ImmutableSandboxedEnvironment()
except ImportError:  # pragma: no cover - depends on the environment
    _ENV = None


class _Obj:
    """Jinja-like attribute access on JSON data (`value_json.state`)."""

    def __init__(self, data: Any) -> None:
        self._data = data

    def __getattr__(self, name: str) -> Any:
        v = self._data[name]
        return _Obj(v) if isinstance(v, dict) else v

    def __getitem__(self, name: str) -> Any:  # `value_json.sirens['siren.hall']`, as Jinja
        return self.__getattr__(name)


def _plain(v: Any) -> Any:
    if isinstance(v, _Obj):
        return {k: _plain(x) for k, x in v._data.items()}
    if isinstance(v, dict):
        return {k: _plain(x) for k, x in v.items()}
    if isinstance(v, list):
        return [_plain(x) for x in v]
    return v


def _eval(expr: str, variables: dict[str, Any]) -> str:
    expr = expr.strip()
    as_json = False
    if re.search(r"\|\s*tojson\s*$", expr):
        expr, as_json = re.sub(r"\|\s*tojson\s*$", "", expr), True
    env = {k: _Obj(v) if isinstance(v, dict) else v for k, v in variables.items()}
    value = eval(expr, {"__builtins__": {}}, env)  # our own templates, in a test
    if as_json:
        return json.dumps(_plain(value))
    return "" if value is None else str(value)


def render(template: str, **variables: Any) -> str:
    """Render a Home Assistant template with `value_json`, `action`, `code`... given."""
    if _ENV is not None:
        return str(_ENV.from_string(template).render(**variables))
    if "{%" in template:
        raise AssertionError(f"the fallback renderer only knows {{{{ }}}} expressions: {template}")
    return re.sub(r"\{\{(.*?)\}\}", lambda m: _eval(m.group(1), variables), template)


JINJA = _ENV is not None
