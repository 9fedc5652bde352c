"""Home Assistant entities and retained state of supervised wiring and power.

Per supervised loop a `sensor` (device class `enum`) with the loop's state (normal, alarm, cut,
short, trouble, unknown) from `P/wiring/<sensor>/state`; the sensor's own `binary_sensor` stays
as it is. With a `power` section: a `binary_sensor` mains (device class `power`), a
`binary_sensor` battery (device class `battery`: on when low or missing) and a `sensor` with the
battery's volts, a `binary_sensor` problem per supervised siren line, all from `P/power/state`.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from controller import texts
from controller.config import SiteConfig

LOOP_STATES = ["normal", "alarm", "cut", "short", "trouble", "unknown"]

texts.register(
    {
        "ha.wiring": {"vi": "Dây vòng", "en": "Wiring"},
        "ha.mains": {"vi": "Điện lưới", "en": "Mains power"},
        "ha.battery": {"vi": "Ắc quy yếu", "en": "Battery low"},
        "ha.battery_volts": {"vi": "Điện áp ắc quy", "en": "Battery voltage"},
        "ha.siren_line": {"vi": "Lỗi đường dây còi", "en": "Siren line fault"},
    }
)

Ids = Callable[..., dict[str, Any]]


def supervision_entities(
    cfg: SiteConfig, prefix: str, ids: Ids, base: dict[str, Any], online: dict[str, Any]
) -> list[tuple[str, str, dict[str, Any]]]:
    lang = cfg.site.language
    out: list[tuple[str, str, dict[str, Any]]] = []
    common = {**base, "availability": [online], "qos": 1}
    for s in cfg.sensors:
        if s.loop is None:
            continue
        st = f"{prefix}/wiring/{s.id}/state"
        out.append(
            (
                "sensor",
                f"wiring_{s.id}",
                {
                    "name": f"{s.name or s.id} – {texts.render(lang, 'ha.wiring')}",
                    **ids("sensor", "wiring", s.id),
                    **common,
                    "device_class": "enum",
                    "options": list(LOOP_STATES),
                    "entity_category": "diagnostic",
                    "state_topic": st,
                    "value_template": "{{ value_json.state }}",
                    "json_attributes_topic": st,
                    "json_attributes_template": "{{ {'volts': value_json.volts} | tojson }}",
                },
            )
        )
    p = cfg.power
    if p is None:
        return out
    pt = f"{prefix}/power/state"
    if p.mains is not None:
        out.append(
            (
                "binary_sensor",
                "power_mains",
                {
                    "name": texts.render(lang, "ha.mains"),
                    **ids("binary_sensor", "power", "mains"),
                    **common,
                    "device_class": "power",
                    "state_topic": pt,
                    "value_template": "{{ 'ON' if value_json.mains == 'on' else 'OFF' }}",
                },
            )
        )
    if p.battery is not None:
        out.append(
            (
                "binary_sensor",
                "power_battery",
                {
                    "name": texts.render(lang, "ha.battery"),
                    **ids("binary_sensor", "power", "battery"),
                    **common,
                    "device_class": "battery",
                    "state_topic": pt,
                    "value_template": "{{ 'OFF' if value_json.battery.state == 'ok' else 'ON' }}",
                },
            )
        )
        out.append(
            (
                "sensor",
                "power_battery_volts",
                {
                    "name": texts.render(lang, "ha.battery_volts"),
                    **ids("sensor", "power", "battery", "volts"),
                    **common,
                    "device_class": "voltage",
                    "unit_of_measurement": "V",
                    "state_class": "measurement",
                    "state_topic": pt,
                    "value_template": "{{ value_json.battery.volts }}",
                },
            )
        )
    for line in p.sirens:
        out.append(
            (
                "binary_sensor",
                f"power_siren_{line.siren}",
                {
                    "name": f"{texts.render(lang, 'ha.siren_line')} {line.siren}",
                    **ids("binary_sensor", "siren_line", line.siren),
                    **common,
                    "device_class": "problem",
                    "state_topic": pt,
                    "value_template": (
                        "{{ 'OFF' if value_json.sirens['" + line.siren + "'] == 'ok' else 'ON' }}"
                    ),
                },
            )
        )
    return out


def supervision_state(status: dict[str, Any] | None, prefix: str) -> list[tuple[str, dict[str, Any]]]:
    """The retained (topic, body) pairs from the component's status entry."""
    if not status:
        return []
    out = [
        (f"{prefix}/wiring/{sid}/state", {"state": loop["state"], "volts": loop["volts"]})
        for sid, loop in status.get("loops", {}).items()
    ]
    if status.get("power"):
        out.append((f"{prefix}/power/state", dict(status["power"])))
    return out
