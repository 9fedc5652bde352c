"""What goes into the alarm engine (inputs), what comes out (effects), and what it remembers.

Everything here is plain data. Times are timezone-aware UTC datetimes passed in by the daemon.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Literal

from controller.events import EventDraft

Mode = Literal["away", "home", "night"]
ArmPhase = Literal["disarmed", "arming", "armed"]
# Home Assistant's alarm_control_panel states, as published on P/zone/<zone>/state
ZoneStateName = Literal[
    "disarmed", "arming", "armed_away", "armed_home", "armed_night", "pending", "triggered"
]

# --------------------------------------------------------------------------- inputs


@dataclass(frozen=True)
class SensorChange:
    """A debounced input changed (door opened, PIR saw motion, safe vibrated...)."""

    sensor: str
    active: bool


@dataclass(frozen=True)
class Arm:
    zones: tuple[str, ...]
    mode: Mode = "away"
    user: str | None = None
    source: str = "local"  # keypad id, "mqtt", "cli", "schedule"
    force: bool = False  # bypass open sensors for this arming period
    automatic: bool = False  # by schedule (R403)
    instant: bool = False  # no exit delay (remote arming of an empty building, schedules)


@dataclass(frozen=True)
class Disarm:
    zones: tuple[str, ...]
    user: str | None = None
    source: str = "local"
    automatic: bool = False  # by schedule (E403)


@dataclass(frozen=True)
class Bypass:
    sensor: str
    bypass: bool = True  # False: unbypass
    user: str | None = None
    source: str = "local"


@dataclass(frozen=True)
class Silence:
    """Silence the sirens of these zones (the alarm stays in memory, the zone stays armed)."""

    zones: tuple[str, ...]
    user: str | None = None
    source: str = "local"


@dataclass(frozen=True)
class OutputFault:
    """The daemon could not drive an output (siren relay, buzzer)."""

    output: str
    fault: bool
    reason: str = ""


@dataclass(frozen=True)
class ExternalAlarm:
    """An alarm raised outside the sensors (a drone detector configured to sound sirens)."""

    zone: str
    source: str
    cid_code: int
    text: str
    audible: bool = True


Input = SensorChange | Arm | Disarm | Bypass | Silence | OutputFault | ExternalAlarm

# --------------------------------------------------------------------------- effects


@dataclass(frozen=True)
class SetOutput:
    output: str
    on: bool


@dataclass(frozen=True)
class Emit:
    event: EventDraft


Effect = SetOutput | Emit

# --------------------------------------------------------------------------- state


@dataclass
class SensorState:
    active: bool = False
    bypassed: bool = False  # manual bypass, until unbypassed
    force_bypassed: bool = False  # bypassed by a forced arming, until the zone is disarmed
    trips: int = 0  # alarms caused in this armed period (swinger shutdown)
    shutdown: bool = False  # swinger shutdown until the zone is disarmed/re-armed
    in_alarm: bool = False  # has caused an alarm not yet restored
    stuck: bool = False  # trouble: active across an arming or at boot in an armed zone
    pulses: list[datetime] = field(default_factory=list)  # vibration pulse times in the window
    sustain_due: datetime | None = None  # vibration active since; attack if still active then
    tamper_open: bool = False  # tamper loop open (reported)


@dataclass
class ZoneState:
    phase: ArmPhase = "disarmed"
    mode: Mode = "away"
    exit_due: datetime | None = None
    exit_restarted: bool = False
    exit_door_closed: bool = False  # an entry door closed during the exit delay (restart rule)
    entry_due: datetime | None = None
    entry_sensor: str | None = None
    exit_error: bool = False  # entry delay started because an exit door was left open
    armed_at: datetime | None = None
    alarm: bool = False  # alarm memory, until disarmed
    alarm_at: datetime | None = None
    alarm_until: datetime | None = None  # triggered until (siren time)
    audible: bool = False
    silenced: bool = False
    user: str | None = None  # who armed
    automatic: bool = False

    def ha_state(self) -> ZoneStateName:
        if self.alarm_until is not None:
            return "triggered"
        if self.entry_due is not None:
            return "pending"
        if self.phase == "arming":
            return "arming"
        if self.phase == "armed":
            if self.mode == "home":
                return "armed_home"
            if self.mode == "night":
                return "armed_night"
            return "armed_away"
        return "disarmed"
