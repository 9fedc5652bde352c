"""Sensor types: what each `type:` of the config means, described once.

One `SensorSpec` per type gives everything the rest of the daemon needs to know about it: its
default response and wiring, its Contact ID code and engine text, its Home Assistant device
class, and the rules it follows (life safety, silent, tamper loop, knock counting). The config,
the engine and the discovery read these descriptions instead of comparing type names, so adding
a sensor type is one entry here (plus its texts in controller/engine/messages.py).

Pure data: no I/O, no imports from the rest of the daemon.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal, get_args

SensorType = Literal["door", "window", "motion", "vibration", "tamper", "fire", "panic"]
Response = Literal["entry", "instant", "follower", "24h"]
Wiring = Literal["nc", "no", "active_high", "active_low"]

# a sensor used against its nature (a door set to `24h`, a fire sensor set to `instant`) alarms
# with the generic code and text of the response instead of its own
GENERIC_INSTANT = (130, "engine.alarm_open")
GENERIC_24H = (133, "engine.alarm_24h")
ENTRY_EXIT_CID = 134  # the restore of a perimeter sensor on the entry route


@dataclass(frozen=True, slots=True)
class SensorSpec:
    """One sensor type: its defaults, its codes and texts, and which rules apply to it."""

    name: str
    default_response: Response
    # how it is usually wired (hardware/README.md): nc/no contact to GND on the internal
    # pull-up, or a module's push-pull output (active_high/active_low)
    default_wiring: Wiring
    device_class: str  # Home Assistant binary_sensor device class
    cid: int  # its own Contact ID alarm code (and restore code)
    text: str  # the engine's text key for its own alarm
    # a door or window: its alarm restore on the entry route is reported as entry/exit (E134)
    perimeter: bool = False
    life_safety: bool = False  # fire, panic: never shut down by the swinger limit
    silent: bool = False  # no siren unless the config says `silent: false`
    # a tamper loop: reported whenever it opens (a `tamper` event, a trouble until it closes),
    # an alarm when its zone is armed
    tamper: bool = False
    # knock counting: `pulses` within `window` (or one vibration lasting the window) alarm
    counts_knocks: bool = False
    text_sustained: str | None = None  # the text of a vibration lasting the whole window

    @property
    def follows_response(self) -> bool:
        """Its trips go through its response (entry, instant, follower, 24h); a tamper loop and
        a knock counter have rules of their own."""
        return not (self.tamper or self.counts_knocks)

    def alarm(self, response: Response) -> tuple[int, str]:
        """The Contact ID code and text key of its alarm under this response: its own where the
        response is of its nature (24h for a 24h type, the others for the others), the
        response's generic ones where it is not."""
        own_24h = self.default_response == "24h"
        if (response == "24h") == own_24h:
            return self.cid, self.text
        return GENERIC_24H if response == "24h" else GENERIC_INSTANT

    def restore_cid(self, response: Response) -> int:
        """The Contact ID code its `alarm_restore` carries."""
        return ENTRY_EXIT_CID if self.perimeter and response == "entry" else self.cid


SENSOR_TYPES: dict[str, SensorSpec] = {
    s.name: s
    for s in (
        SensorSpec(
            "door", "entry", "nc", "door", 131, "engine.alarm_open", perimeter=True
        ),
        SensorSpec(
            "window", "entry", "nc", "window", 131, "engine.alarm_open", perimeter=True
        ),
        SensorSpec("motion", "follower", "active_high", "motion", 132, "engine.alarm_motion"),
        SensorSpec(
            "vibration",
            "24h",
            "active_high",
            "vibration",
            133,
            "engine.alarm_safe",
            counts_knocks=True,
            text_sustained="engine.alarm_safe_sustained",
        ),
        SensorSpec("tamper", "24h", "nc", "tamper", 137, "engine.alarm_tamper", tamper=True),
        SensorSpec("fire", "24h", "nc", "smoke", 110, "engine.alarm_fire", life_safety=True),
        SensorSpec(
            "panic",
            "24h",
            "no",
            "safety",
            120,
            "engine.alarm_panic",
            life_safety=True,
            silent=True,
        ),
    )
}

if set(get_args(SensorType)) != set(SENSOR_TYPES):  # pragma: no cover - caught at import
    raise RuntimeError("SensorType and SENSOR_TYPES name different sensor types")

# the types that take `pulses` and `window`, for the config's message
KNOCK_TYPES: tuple[str, ...] = tuple(n for n, s in SENSOR_TYPES.items() if s.counts_knocks)
