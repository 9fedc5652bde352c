"""Site configuration: the YAML format of the public contract, validated by pydantic.

`load_config(path)` returns a `Site` config or raises `ConfigError` listing *every* problem,
each with its path (`sensors[3].pin`) and, where the YAML gives one, its line number.
Warnings (plain codes in the file, ...) are returned beside the config, never the codes themselves.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import date, time, timedelta
from pathlib import Path
from typing import Annotated, Any, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import yaml
from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)

from controller.errors import OfficeGuardError

# sensor types, responses and wirings are described in controller/sensor_types.py (the Literals
# are re-exported: the config's models and their users name them from here)
from controller.sensor_types import KNOCK_TYPES, SENSOR_TYPES, SensorSpec
from controller.sensor_types import Response as Response
from controller.sensor_types import SensorType as SensorType
from controller.sensor_types import Wiring as Wiring
from controller.supervision.bands import Band, LoopWiring, band_problems, bands_from, wiring_bands

EXIT_CONFIG = 78  # EX_CONFIG from sysexits.h

# ----------------------------------------------------------------------------- durations

_DURATION_PART = re.compile(r"(\d+(?:\.\d+)?)(ms|s|m|h|d)")
_UNIT_SECONDS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0}


def parse_duration(value: object) -> timedelta:
    """`30s`, `4m`, `1h`, `1h30m`, `250ms`, `2d`. A number needs its unit (`10` could be
    seconds or minutes), except 0. The one parser of durations: the config and `sim advance`."""
    if isinstance(value, timedelta):
        return value
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        raise ValueError("a duration like 30s, 4m or 1h is expected")
    if isinstance(value, int | float):
        if value == 0:
            return timedelta(0)
        raise ValueError(f"bad duration {value!r}: give its unit, like {value:g}s or {value:g}m")
    text = value.strip().lower().replace(" ", "")
    if not text:
        raise ValueError("empty duration")
    try:
        return _checked_seconds(_parse_duration_text(value, text))
    except OverflowError:
        raise ValueError(_TOO_LONG) from None


_MAX_DURATION = timedelta(days=400)
_TOO_LONG = "a duration cannot be longer than 400 days"


def _checked_seconds(total: float) -> timedelta:
    if total != total:  # NaN
        raise ValueError("a duration must be a number")
    if total < 0:
        raise ValueError("a duration cannot be negative")
    if total > _MAX_DURATION.total_seconds():
        raise ValueError(_TOO_LONG)
    return timedelta(seconds=total)


def _parse_duration_text(value: str, text: str) -> float:
    pos = 0
    total = 0.0
    for m in _DURATION_PART.finditer(text):
        if m.start() != pos:
            break
        total += float(m.group(1)) * _UNIT_SECONDS[m.group(2)]
        pos = m.end()
    if pos != len(text) or not text:
        if text == "0":
            return 0.0
        raise ValueError(
            f"bad duration {value!r}: use a number with a unit, like 30s, 4m, 1h or 1h30m"
        )
    return total


def format_duration(td: timedelta) -> str:
    s = td.total_seconds()
    if s and s % 3600 == 0:
        return f"{int(s // 3600)}h"
    if s and s % 60 == 0:
        return f"{int(s // 60)}m"
    if s == int(s):
        return f"{int(s)}s"
    return f"{s:g}s"


Duration = Annotated[timedelta, BeforeValidator(parse_duration)]


def _parse_hhmm(value: object) -> time:
    if isinstance(value, time):
        return value
    if isinstance(value, int) and not isinstance(value, bool):
        # YAML 1.1 reads an unquoted 17:30 as the sexagesimal 1050
        return time(value // 60 % 24, value % 60)
    if not isinstance(value, str) or not re.fullmatch(r"\d{1,2}:\d{2}", value.strip()):
        raise ValueError(f'bad time of day {value!r}: use HH:MM, e.g. "17:30"')
    h, m = (int(x) for x in value.strip().split(":"))
    if h > 23 or m > 59:
        raise ValueError(f"bad time of day {value!r}: hours 00-23, minutes 00-59")
    return time(h, m)


TimeOfDay = Annotated[time, BeforeValidator(_parse_hhmm)]

Ident = Annotated[str, Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9][A-Za-z0-9_.\-]*$")]
BcmPin = Annotated[int, Field(ge=0, le=27)]


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)


# ----------------------------------------------------------------------------- sections

Mode = Literal["away", "home", "night"]


class Location(_Model):
    lat: float = Field(ge=-90, le=90)
    lon: float = Field(ge=-180, le=180)
    alt: float | None = None


class SiteInfo(_Model):
    id: Ident
    name: str = ""
    timezone: str = "Asia/Ho_Chi_Minh"
    location: Location | None = None
    language: Literal["vi", "en"] = "vi"
    # the periodic self-test (E602, "controller alive"); 0 = off
    self_test: Duration = timedelta(0)

    @field_validator("self_test")
    @classmethod
    def _self_test(cls, v: timedelta) -> timedelta:
        if timedelta(0) < v < timedelta(minutes=1):
            raise ValueError("a self-test more often than once a minute would flood the logbook")
        return v

    @field_validator("timezone")
    @classmethod
    def _tz(cls, v: str) -> str:
        try:
            ZoneInfo(v)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(
                f"unknown time zone {v!r} (use an IANA name like Asia/Ho_Chi_Minh)"
            ) from None
        return v

    @property
    def tz(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)


class Hardware(_Model):
    backend: Literal["gpio", "simulated"] = "gpio"
    debounce: Duration = timedelta(milliseconds=30)


def _topic_prefix(v: str) -> str:
    if not v or any(c in v for c in "+#\0") or v.startswith("/") or v.endswith("/"):
        raise ValueError("a topic prefix has no +, # and no leading or trailing /")
    return v


class BrokerLogin(_Model):
    """Where a broker is and how to log in to it: a site's `mqtt:` section and the station's
    `broker:` settings share these keys, and so their meaning and their checks."""

    url: str = "mqtt://127.0.0.1:1883"
    username: str | None = None
    password_file: str | None = None
    ca_file: str | None = None
    cert_file: str | None = None
    key_file: str | None = None
    client_id: str | None = None
    topic_prefix: str = "officeguard"
    keepalive: Duration = timedelta(seconds=30)

    @field_validator("url")
    @classmethod
    def _url(cls, v: str) -> str:
        if not re.fullmatch(r"(mqtts?|tcp|ssl)://[^\s/:]+(:\d{1,5})?/?", v):
            # websockets (ws://, wss://) are for browsers; the controller speaks MQTT over TCP/TLS
            raise ValueError(f"bad broker URL {v!r}: use mqtt://host:1883 or mqtts://host:8883")
        return v

    @field_validator("topic_prefix")
    @classmethod
    def _prefix(cls, v: str) -> str:
        return _topic_prefix(v)


class Mqtt(BrokerLogin):
    protocol: Literal["3.1.1", "5"] = "5"
    homeassistant_discovery: bool = True
    discovery_prefix: str = "homeassistant"
    heartbeat: Duration = timedelta(seconds=60)
    # remote commands: the per-site HMAC-SHA256 key (made by the installer) and whether commands
    # that lower the site's protection (disarm, bypass, silence) must be signed with it
    command_key_file: str | None = None
    require_signature: bool = True
    signature_window: Duration = timedelta(seconds=60)
    # the outbox keeps at most this many undelivered events on disk (a trouble is raised at 80 %)
    outbox_limit: int = Field(default=500_000, ge=1000)

    @field_validator("discovery_prefix")
    @classmethod
    def _discovery_prefix(cls, v: str) -> str:
        return _topic_prefix(v)

    # require_signature without command_key_file is not an error: the public reference site has
    # no key, and signed-only commands are then refused until it has one (check-config warns;
    # docs/security.md says why)


HexId = Annotated[str, Field(pattern=r"^[0-9A-F]{1,6}$")]


class Dc09Path(_Model):
    """One way to a receiving centre's receiver (docs/dc09.md)."""

    host: str = Field(min_length=1)
    port: int = Field(ge=1, le=65535)
    protocol: Literal["tcp", "udp"] = "tcp"
    # NULL (link test) message interval on this path; 0s: no polls
    poll: Duration = timedelta(seconds=60)
    # the message format this receiver wants; None: the section's `format`
    format: Literal["ADM-CID", "SIA-DCS"] | None = None


class Dc09(_Model):
    """Reporting to an alarm receiving centre over SIA DC-09 (docs/dc09.md)."""

    account: str = Field(pattern=r"^[0-9A-F]{3,16}$")
    receiver: HexId | None = "0"
    line: HexId = "0"
    primary: Dc09Path
    backup: Dc09Path | None = None
    format: Literal["ADM-CID", "SIA-DCS"] = "ADM-CID"  # a path's own `format` overrides it
    key_file: str | None = None
    key_format: Literal["hex", "text"] = "hex"
    ack_timeout: Duration = timedelta(seconds=10)
    attempts: int = Field(default=3, ge=1, le=20)  # sends on one path before the next
    retry_delay: Duration = timedelta(seconds=2)  # doubles after each round of both paths
    max_retry_delay: Duration = timedelta(minutes=2)
    partitions: dict[Ident, int] = Field(default_factory=dict)  # zone -> 0-99
    sensors: dict[Ident, int] = Field(default_factory=dict)  # sensor -> 0-999
    users: dict[Ident, int] = Field(default_factory=dict)  # user -> 0-999

    @model_validator(mode="after")
    def _ranges(self) -> Dc09:
        for name, table, top in (
            ("partitions", self.partitions, 99),
            ("sensors", self.sensors, 999),
            ("users", self.users, 999),
        ):
            for k, v in table.items():
                if not 0 <= v <= top:
                    raise ValueError(f"{name}.{k}: {v} is out of 0-{top}")
        if self.ack_timeout <= timedelta(0):
            raise ValueError("ack_timeout must be more than 0s")
        return self


class Zone(_Model):
    id: Ident
    name: str = ""
    entry_delay: Duration = timedelta(seconds=30)
    exit_delay: Duration = timedelta(seconds=60)
    siren_time: Duration = timedelta(minutes=4)
    abort_window: Duration = timedelta(seconds=30)
    recent_closing: Duration = timedelta(minutes=2)
    swinger_limit: int = Field(default=2, ge=1, le=10)
    exit_restart: bool = True  # a door re-opened during the exit delay restarts it once


AdcChannel = Annotated[int, Field(ge=0, le=7)]
Volts = Annotated[float, Field(ge=0, le=5.5)]


class Adc(_Model):
    """The SPI ADC that reads supervised loops and power (controller/supervision/)."""

    chip: Literal["mcp3008", "mcp3208"] = "mcp3008"
    device: Literal[0, 1] = 0  # SPI0 chip select: CE0 (GPIO 8) or CE1 (GPIO 7)
    vref: float = Field(default=3.3, gt=0, le=5.5)
    # every channel in use is read this often: bench/adc_poll.py measured 8 channels through
    # gpiozero's software SPI bus at ~0.7 % of a core at 200 ms, ~1.4 % at 100 ms
    poll: Duration = timedelta(milliseconds=200)

    @field_validator("poll")
    @classmethod
    def _poll(cls, v: timedelta) -> timedelta:
        if not timedelta(milliseconds=20) <= v <= timedelta(seconds=2):
            raise ValueError("poll between 20ms and 2s (a loop is judged once per poll)")
        return v


class Loop(_Model):
    """A sensor's supervised loop on an ADC channel, instead of a GPIO pin."""

    channel: AdcChannel
    contact: Literal["nc", "no"] = "nc"
    eol: Literal["single", "double"] = "double"
    eol_ohms: float = Field(default=4700.0, gt=0)
    alarm_ohms: float = Field(default=4700.0, gt=0)
    pull_up_ohms: float = Field(default=4700.0, gt=0)
    tolerance: float = Field(default=0.05, gt=0, le=0.2)
    # volts per state, as `officeguard wiring calibrate` writes them; else from the resistors
    bands: dict[Literal["normal", "alarm", "cut", "short"], tuple[Volts, Volts]] | None = None
    hysteresis: float = Field(default=0.05, ge=0, le=0.5)
    debounce: Duration = timedelta(milliseconds=250)

    @property
    def wiring(self) -> LoopWiring:
        return LoopWiring(
            self.contact,
            self.eol,
            self.eol_ohms,
            self.alarm_ohms,
            self.pull_up_ohms,
            self.tolerance,
        )

    def band_set(self, vref: float) -> tuple[Band, ...]:
        """The loop's bands: the calibrated ones if given, else the resistors'."""
        if self.bands is not None:
            return bands_from({k: list(v) for k, v in self.bands.items()})
        return wiring_bands(self.wiring, vref)


class Mains(_Model):
    """Mains present while the channel (the AC adapter's DC through a divider) reads above
    `present_above`, or while the pin (a PSU's "AC OK" output) is at its `present` level."""

    channel: AdcChannel | None = None
    pin: BcmPin | None = None
    present_above: Volts = 1.5
    present: Literal["high", "low"] = "low"  # an open-collector AC-OK on the Pi's pull-up
    delay: Duration = timedelta(seconds=30)  # gone this long before E301 (brownouts, switchover)

    @model_validator(mode="after")
    def _one_input(self) -> Mains:
        if (self.channel is None) == (self.pin is None):
            raise ValueError("mains is read from either a channel or a pin, not both")
        return self


class Battery(_Model):
    """The standby battery through a voltage divider: battery volts = channel volts x divider."""

    channel: AdcChannel
    divider: float = Field(default=5.0, gt=1)  # e.g. 40k over 10k: 5.0 (15 V -> 3.0 V)
    low: float = Field(default=11.5, gt=0)  # a 12 V lead-acid under load: E302 below
    restore: float = Field(default=12.2, gt=0)  # R302 at or above (charged again)
    missing: float = Field(default=7.0, ge=0)  # below: no battery on the terminals (E311)
    delay: Duration = timedelta(seconds=60)

    @model_validator(mode="after")
    def _order(self) -> Battery:
        if not self.missing < self.low < self.restore:
            raise ValueError("battery thresholds must rise: missing < low < restore")
        return self


class SirenLine(_Model):
    """A siren's circuit supervised while it is off: a sense resistor in its line reads a small
    standing current; open reads above `open_above`, shorted below `short_below` (E321)."""

    siren: Ident
    channel: AdcChannel
    short_below: Volts = 0.3
    open_above: Volts = 3.0
    delay: Duration = timedelta(seconds=5)

    @model_validator(mode="after")
    def _order(self) -> SirenLine:
        if self.short_below >= self.open_above:
            raise ValueError("short_below must be under open_above")
        return self


class Power(_Model):
    mains: Mains | None = None
    battery: Battery | None = None
    sirens: list[SirenLine] = Field(default_factory=list)


class Sensor(_Model):
    id: Ident
    name: str = ""
    type: SensorType
    zone: Ident
    pin: BcmPin | None = None
    loop: Loop | None = None  # a supervised loop on the ADC instead of a pin
    response: Response | None = None
    interior: bool = False  # left out when the zone is armed home or night
    night: bool = False  # an interior sensor that stays armed in night mode
    wiring: Wiring | None = None
    silent: bool | None = None  # no siren (panic is silent by default)
    pulses: int | None = Field(default=None, ge=1, le=100)
    window: Duration | None = None

    @model_validator(mode="after")
    def _one_input(self) -> Sensor:
        if (self.pin is None) == (self.loop is None):
            raise ValueError("a sensor has either a pin or a loop (on the ADC), not both")
        if self.loop is not None and self.wiring is not None:
            raise ValueError("wiring is for a pin; a loop says its contact in loop.contact")
        return self

    @model_validator(mode="after")
    def _vibration_only(self) -> Sensor:
        knocks = self.pulses is not None or self.window is not None
        if knocks and not self.spec.counts_knocks:
            raise ValueError(f"pulses and window apply to {'/'.join(KNOCK_TYPES)} sensors only")
        return self

    @property
    def spec(self) -> SensorSpec:
        """What its type means (controller/sensor_types.py)."""
        return SENSOR_TYPES[self.type]

    @property
    def effective_response(self) -> Response:
        return self.response or SENSOR_TYPES[self.type].default_response

    @property
    def effective_wiring(self) -> Wiring:
        return self.wiring or SENSOR_TYPES[self.type].default_wiring

    @property
    def is_silent(self) -> bool:
        return self.silent if self.silent is not None else SENSOR_TYPES[self.type].silent

    @property
    def attack_pulses(self) -> int:
        return self.pulses if self.pulses is not None else 3

    @property
    def attack_window(self) -> timedelta:
        return self.window if self.window is not None else timedelta(seconds=2)


class DroneDetector(_Model):
    id: Ident
    name: str = ""
    zone: Ident
    port: str
    baudrate: int = Field(default=115200, gt=0)
    heartbeat_timeout: Duration = timedelta(seconds=15)
    track_timeout: Duration = timedelta(seconds=60)
    update_interval: Duration = timedelta(seconds=10)  # rate limit of drone position updates
    siren: bool = False  # also sound the zone's sirens on a drone


def _camera_url(v: str, what: str) -> str:
    if not v.startswith(("http://", "https://")):
        raise ValueError(f"a camera's {what} starts with http:// or https://")
    if "@" in v.split("/", 3)[2]:
        raise ValueError(f"no user or password in a camera's {what}: put them in credentials_file")
    return v


class OnvifSource(_Model):
    """Where a camera's snapshot URL is asked for: its ONVIF Media service (GetSnapshotUri)."""

    url: str  # the camera's ONVIF Media service, e.g. http://10.0.0.5/onvif/media_service
    profile: str | None = None  # a media profile's token; the camera's first profile if none

    @field_validator("url")
    @classmethod
    def _http_url(cls, v: str) -> str:
        return _camera_url(v, "onvif url")


class Camera(_Model):
    """An IP camera whose snapshots go with the alarms of what it looks at (docs/cameras.md)."""

    id: Ident
    name: str = ""
    # the snapshot URL (http:// or https://), as Hikvision ISAPI or Dahua CGI give it; or none,
    # and `onvif` says where the camera tells it
    url: str | None = None
    onvif: OnvifSource | None = None
    auth: Literal["none", "basic", "digest"] = "digest"
    credentials_file: str | None = None  # one line `user:password`, root-only
    ca_file: str | None = None  # https: a CA (or the camera's own certificate) to trust
    zones: list[Ident] = Field(default_factory=list)
    sensors: list[Ident] = Field(default_factory=list)
    detectors: list[Ident] = Field(default_factory=list)
    checkpoints: list[Ident] = Field(default_factory=list)
    burst: int = Field(default=3, ge=1, le=20)  # snapshots per alarm: one at once, then more
    interval: Duration = timedelta(seconds=1)
    timeout: Duration = timedelta(seconds=5)  # for one whole snapshot, connect to last byte
    max_image: int = Field(default=4_000_000, ge=1024, le=50_000_000)  # bytes

    @field_validator("url")
    @classmethod
    def _http_url(cls, v: str | None) -> str | None:
        return None if v is None else _camera_url(v, "url")

    @model_validator(mode="after")
    def _credentials(self) -> Camera:
        if (self.url is None) == (self.onvif is None):
            raise ValueError("a camera needs one of url (its snapshot URL) or onvif (where to ask for it), not both")
        if self.auth != "none" and self.credentials_file is None:
            raise ValueError(f"auth {self.auth} needs credentials_file (one line user:password)")
        return self


class CameraStorage(_Model):
    max_bytes: int = Field(default=200_000_000, ge=1_000_000)
    max_age: Duration = timedelta(days=30)
    concurrency: int = Field(default=2, ge=1, le=8)  # snapshots fetched at once, site-wide


class Siren(_Model):
    id: Ident
    name: str = ""
    pin: BcmPin
    zones: list[Ident] = Field(min_length=1)
    active_high: bool = True


class Keypad(_Model):
    id: Ident
    name: str = ""
    zones: list[Ident] = Field(min_length=1)
    rows: list[BcmPin] = Field(min_length=1, max_length=8)
    cols: list[BcmPin] = Field(min_length=1, max_length=8)
    buzzer: BcmPin | None = None
    keys: list[str] | None = None  # one string per row; default 4x3 "123","456","789","*0#" or 4x4
    entry_timeout: Duration = timedelta(seconds=10)

    @model_validator(mode="after")
    def _layout(self) -> Keypad:
        if self.keys is not None:
            if len(self.keys) != len(self.rows) or any(len(r) != len(self.cols) for r in self.keys):
                raise ValueError("keys must give one string per row, one character per column")
        elif (len(self.rows), len(self.cols)) not in ((4, 3), (4, 4)):
            raise ValueError("a keypad that is not 4x3 or 4x4 needs `keys` (its layout)")
        return self

    @property
    def layout(self) -> list[str]:
        if self.keys is not None:
            return list(self.keys)
        if len(self.cols) == 3:
            return ["123", "456", "789", "*0#"]
        return ["123A", "456B", "789C", "*0#D"]


_CODE = re.compile(r"[0-9]{4,8}")


class User(_Model):
    name: Ident
    code: str | None = Field(default=None, repr=False)
    code_hash: str | None = Field(default=None, repr=False)
    duress_code: str | None = Field(default=None, repr=False)
    duress_code_hash: str | None = Field(default=None, repr=False)
    zones: list[Ident] | None = None  # None: every zone
    # a guard's patrol badge (controller/patrol/badges.py): plain digits or an scrypt hash
    badge: str | None = Field(default=None, repr=False)
    badge_hash: str | None = Field(default=None, repr=False)
    disabled: bool = False  # codes and badge refused, the user kept for the logbook

    @field_validator("code", "duress_code", mode="before")
    @classmethod
    def _plain(cls, v: object) -> object:
        if isinstance(v, int) and not isinstance(v, bool):
            raise ValueError('write the code in quotes ("0123"), or a leading 0 is lost')
        if v is not None and (not isinstance(v, str) or not _CODE.fullmatch(v)):
            raise ValueError("a code is 4 to 8 digits")
        return v

    @field_validator("badge", mode="before")
    @classmethod
    def _badge(cls, v: object) -> object:
        if v is None:
            return v
        from controller.patrol.badges import normalize_badge

        if isinstance(v, int) and not isinstance(v, bool):
            v = str(v)
        if not isinstance(v, str):
            raise ValueError('a badge number is digits, or "facility,card" (e.g. "188,12345")')
        return normalize_badge(v)

    @field_validator("code_hash", "duress_code_hash", "badge_hash")
    @classmethod
    def _hash(cls, v: str | None) -> str | None:
        if v is not None and not v.startswith("scrypt$"):
            raise ValueError("not a hash from `officeguard hash-code` (scrypt$...)")
        return v

    @model_validator(mode="after")
    def _one_code(self) -> User:
        if (self.code is None) == (self.code_hash is None):
            raise ValueError("give exactly one of code or code_hash")
        if self.duress_code is not None and self.duress_code_hash is not None:
            raise ValueError("give at most one of duress_code or duress_code_hash")
        if self.code is not None and self.code == self.duress_code:
            raise ValueError("the duress code must differ from the code")
        if self.badge is not None and self.badge_hash is not None:
            raise ValueError("give at most one of badge or badge_hash")
        return self


DayName = Literal["mon", "tue", "wed", "thu", "fri", "sat", "sun"]
DAY_NAMES: tuple[str, ...] = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")


class Schedule(_Model):
    zones: list[Ident] = Field(min_length=1)
    arm: TimeOfDay
    disarm: TimeOfDay
    days: Literal["daily", "workdays", "weekends"] | list[DayName] = "daily"
    holidays: Literal["stay_armed", "follow", "disarmed"] = "follow"
    mode: Mode = "away"
    prearm_warning: Duration = timedelta(seconds=60)
    postpone: Duration = timedelta(minutes=30)
    open_sensors: Literal["bypass", "refuse"] = "bypass"

    @field_validator("days", mode="before")
    @classmethod
    def _days(cls, v: object) -> object:
        if isinstance(v, list):
            return [str(d).lower()[:3] if isinstance(d, str) else d for d in v]
        return v

    @model_validator(mode="after")
    def _distinct(self) -> Schedule:
        if self.arm == self.disarm:
            raise ValueError("arm and disarm times must differ")
        return self


class Holidays(_Model):
    country: str | None = "VN"
    subdiv: str | None = None
    extra: list[date] = Field(default_factory=list)
    working_days: list[date] = Field(default_factory=list)

    @field_validator("country")
    @classmethod
    def _country(cls, v: str | None) -> str | None:
        if v is None:
            return v
        if not _holidays_knows(v.upper()):
            raise ValueError(f"the holidays package does not know country {v!r}")
        return v.upper()


def _holidays_knows(code: str) -> bool:
    """Whether the holidays package has this country. Read from its registry, because
    list_supported_countries() imports all ~250 countries: ~40 MB and ~0.5 s at every start."""
    try:
        from holidays.registry import COUNTRIES
    except ImportError:  # a holidays release without the registry: the slow way
        import holidays as hol

        return code in hol.list_supported_countries()
    return any(len(entry) > 1 and entry[1] == code for entry in COUNTRIES.values())


# ----------------------------------------------------------------------------- patrols
# Guard patrols (controller/patrol/): the checkpoints a guard proves a visit at, and the plans
# that say when rounds are due. The rounds themselves are computed in controller/patrol/plan.py.


class Checkpoint(_Model):
    id: Ident
    name: str = ""
    # badge: a Wiegand 26/34-bit reader on two pins (d0, d1); button: a key switch or push
    # button between `pin` and GND (pull-up, active low)
    kind: Literal["badge", "button"]
    zone: Ident | None = None  # the zone it stands in (the guard's route through it)
    d0: BcmPin | None = None
    d1: BcmPin | None = None
    bits: Literal[26, 34] = 26
    pin: BcmPin | None = None
    # sensors of its zone the guard passes on the way to it: not an alarm during a round
    exempt: list[Ident] = Field(default_factory=list)

    @model_validator(mode="after")
    def _pins(self) -> Checkpoint:
        if self.kind == "badge":
            if self.d0 is None or self.d1 is None:
                raise ValueError("a badge reader needs d0 and d1 (its two Wiegand data pins)")
            if self.pin is not None:
                raise ValueError("a badge reader takes d0 and d1, not pin")
        else:
            if self.pin is None:
                raise ValueError("a button needs pin")
            if self.d0 is not None or self.d1 is not None:
                raise ValueError("a button takes pin, not d0/d1")
        if self.exempt and self.zone is None:
            raise ValueError("exempt needs the checkpoint's zone")
        return self


PatrolDays = Literal["daily", "workdays", "days_off", "holidays", "weekends"]


class PatrolRun(_Model):
    """Rounds every `every` from `start` until `end` (earlier: the next morning; equal: all
    day) on the `days` given."""

    days: PatrolDays | list[DayName] = "daily"
    start: TimeOfDay
    end: TimeOfDay
    every: Duration

    @field_validator("days", mode="before")
    @classmethod
    def _days(cls, v: object) -> object:
        if isinstance(v, list):
            return [str(d).lower()[:3] if isinstance(d, str) else d for d in v]
        return v

    @property
    def window(self) -> timedelta:
        start = self.start.hour * 60 + self.start.minute
        end = self.end.hour * 60 + self.end.minute
        return timedelta(minutes=(end - start) % 1440 or 1440)


class Patrol(_Model):
    id: Ident
    name: str = ""
    checkpoints: list[Ident] = Field(min_length=1)
    order: Literal["ordered", "free"] = "ordered"
    runs: list[PatrolRun] = Field(min_length=1)
    round_time: Duration = timedelta(minutes=30)  # from the round's due time to its last visit
    max_gap: Duration = timedelta(minutes=15)  # longest silence between two visits
    tolerance: Duration = timedelta(minutes=5)  # early or late start that is still on time
    alert_grace: Duration = timedelta(minutes=2)  # local buzzer this long before the office
    buzzer: Ident | None = None  # the keypad whose buzzer warns a silent guard
    exempt: bool = False  # visits lift their checkpoint's `exempt` sensors until the round ends

    @model_validator(mode="after")
    def _fits(self) -> Patrol:
        if self.round_time <= timedelta(0) or self.max_gap <= timedelta(0):
            raise ValueError("round_time and max_gap must be more than 0s")
        for run in self.runs:
            if run.every < timedelta(minutes=5):
                raise ValueError("rounds more often than every 5m cannot be walked")
        return self


class SiteConfig(_Model):
    site: SiteInfo
    hardware: Hardware = Field(default_factory=Hardware)
    mqtt: Mqtt = Field(default_factory=Mqtt)
    zones: list[Zone] = Field(min_length=1)
    sensors: list[Sensor] = Field(default_factory=list)
    drone_detectors: list[DroneDetector] = Field(default_factory=list)
    cameras: list[Camera] = Field(default_factory=list)
    camera_storage: CameraStorage = Field(default_factory=CameraStorage)
    sirens: list[Siren] = Field(default_factory=list)
    keypads: list[Keypad] = Field(default_factory=list)
    users: list[User] = Field(default_factory=list)
    schedules: list[Schedule] = Field(default_factory=list)
    holidays: Holidays = Field(default_factory=Holidays)
    checkpoints: list[Checkpoint] = Field(default_factory=list)
    patrols: list[Patrol] = Field(default_factory=list)
    state_dir: str | None = None
    adc: Adc | None = None
    power: Power | None = None
    dc09: Dc09 | None = None  # a receiving centre (docs/dc09.md)

    # lookups -------------------------------------------------------------------------
    def zone(self, zone_id: str) -> Zone:
        for z in self.zones:
            if z.id == zone_id:
                return z
        raise KeyError(zone_id)

    def sensor(self, sensor_id: str) -> Sensor:
        for s in self.sensors:
            if s.id == sensor_id:
                return s
        raise KeyError(sensor_id)

    @property
    def tz(self) -> ZoneInfo:
        return self.site.tz


# ----------------------------------------------------------------------------- loading


@dataclass(frozen=True)
class Problem:
    path: str
    message: str
    line: int | None = None

    def __str__(self) -> str:
        where = f"line {self.line}: " if self.line else ""
        return f"{where}{self.path}: {self.message}" if self.path else f"{where}{self.message}"


@dataclass
class ConfigError(OfficeGuardError):
    source: str
    problems: list[Problem] = field(default_factory=list)

    def __str__(self) -> str:
        n = len(self.problems)
        head = f"{self.source}: {n} problem{'s' if n != 1 else ''}"
        return "\n".join([head, *(f"  {p}" for p in self.problems)])


@dataclass(frozen=True)
class Loaded:
    config: SiteConfig
    warnings: list[Problem]
    source: str


def _format_loc(loc: tuple[int | str, ...]) -> str:
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += ("." if out else "") + part
    return out


class _LineMap:
    """Maps a path like ('sensors', 3, 'pin') to the YAML line that holds it."""

    def __init__(self, node: yaml.Node | None):
        self.root = node

    def line(self, loc: tuple[int | str, ...]) -> int | None:
        node = self.root
        best: int | None = node.start_mark.line + 1 if node is not None else None
        for part in loc:
            if isinstance(node, yaml.MappingNode):  # a key may be a number (`1:`) too
                nxt = None
                for k, v in node.value:
                    if isinstance(k, yaml.ScalarNode) and k.value == str(part):
                        nxt, best = v, k.start_mark.line + 1
                        break
                node = nxt
            elif isinstance(node, yaml.SequenceNode) and isinstance(part, int):
                if 0 <= part < len(node.value):
                    node = node.value[part]
                    best = node.start_mark.line + 1
                else:
                    node = None
            else:
                node = None
            if node is None:
                break
        return best


def _friendly(err: dict[str, Any]) -> str:
    t = err.get("type", "")
    if t == "extra_forbidden":
        return "unknown key (check the spelling; every key is in docs/config.md)"
    if t == "missing":
        return "required, but missing"
    if t == "literal_error":
        return str(err["msg"]).replace("Input should be", "must be")
    msg = str(err.get("msg", "invalid"))
    return msg.removeprefix("Value error, ")


def _items(data: dict[str, Any], section: str) -> list[tuple[int, dict[str, Any]]]:
    items = data.get(section)
    if not isinstance(items, list):
        return []
    return [(i, it) for i, it in enumerate(items) if isinstance(it, dict)]


def _cross_check(data: dict[str, Any]) -> list[tuple[tuple[int | str, ...], str]]:
    """Checks that span sections (unique ids and pins, zone references), on the raw data, so
    they run even when other parts of the file fail validation and every problem shows at once."""
    out: list[tuple[tuple[int | str, ...], str]] = []
    zone_ids: set[str] = set()
    for i, z in _items(data, "zones"):
        zid = z.get("id")
        if isinstance(zid, str):
            if zid in zone_ids:
                out.append((("zones", i, "id"), f"zone {zid} is defined twice"))
            zone_ids.add(zid)
    zone_list = ", ".join(sorted(zone_ids)) or "none"

    device_ids: dict[str, str] = {}
    pins: dict[int, str] = {}

    def claim_id(loc: tuple[int | str, ...], ident: object) -> None:
        if not isinstance(ident, str):
            return
        if ident in device_ids:
            out.append((loc, f"id {ident} already used by {device_ids[ident]}"))
        else:
            device_ids[ident] = _format_loc(loc[:-1])

    def claim_pin(loc: tuple[int | str, ...], pin: object, owner: str) -> None:
        if not isinstance(pin, int) or isinstance(pin, bool):
            return
        if pin in pins:
            out.append((loc, f"pin {pin} already used by {pins[pin]}"))
        else:
            pins[pin] = owner

    def check_zone(loc: tuple[int | str, ...], zid: object) -> None:
        if isinstance(zid, str) and zid not in zone_ids:
            out.append((loc, f"unknown zone {zid!r} (zones: {zone_list})"))

    def check_zones(loc: tuple[int | str, ...], zones: object) -> None:
        if not isinstance(zones, list):
            return
        for j, zid in enumerate(zones):
            check_zone((*loc, j), zid)
        dup = sorted({z for z in zones if isinstance(z, str) and zones.count(z) > 1})
        if dup:
            out.append((loc, f"zone listed twice: {', '.join(dup)}"))

    out += _adc_cross_check(data, claim_pin)
    for i, s in _items(data, "sensors"):
        claim_id(("sensors", i, "id"), s.get("id"))
        claim_pin(("sensors", i, "pin"), s.get("pin"), str(s.get("id")))
        check_zone(("sensors", i, "zone"), s.get("zone"))
    ports: dict[str, str] = {}
    for i, d in _items(data, "drone_detectors"):
        claim_id(("drone_detectors", i, "id"), d.get("id"))
        check_zone(("drone_detectors", i, "zone"), d.get("zone"))
        port = d.get("port")
        if isinstance(port, str):
            if port in ports:
                out.append(
                    (("drone_detectors", i, "port"), f"port {port} already used by {ports[port]}")
                )
            ports.setdefault(port, str(d.get("id")))
    for i, cam in _items(data, "cameras"):
        claim_id(("cameras", i, "id"), cam.get("id"))
        check_zones(("cameras", i, "zones"), cam.get("zones"))
    for i, cam in _items(data, "cameras"):  # after every id is claimed
        for key, kind in (("sensors", "sensors"), ("detectors", "drone_detectors")):
            known = {str(x.get("id")) for _, x in _items(data, kind)}
            looked = cam.get(key)
            for j, ref in enumerate(looked if isinstance(looked, list) else []):
                if isinstance(ref, str) and ref not in known:
                    out.append((("cameras", i, key, j), f"unknown {key[:-1]} {ref!r}"))
    for i, sr in _items(data, "sirens"):
        claim_id(("sirens", i, "id"), sr.get("id"))
        claim_pin(("sirens", i, "pin"), sr.get("pin"), str(sr.get("id")))
        check_zones(("sirens", i, "zones"), sr.get("zones"))
    for i, k in _items(data, "keypads"):
        kid = str(k.get("id"))
        claim_id(("keypads", i, "id"), k.get("id"))
        for part, label in (("rows", "row"), ("cols", "column")):
            pins_of = k.get(part)
            if isinstance(pins_of, list):
                for j, p in enumerate(pins_of):
                    claim_pin(("keypads", i, part, j), p, f"{kid} {label} {j + 1}")
        claim_pin(("keypads", i, "buzzer"), k.get("buzzer"), f"{kid} buzzer")
        check_zones(("keypads", i, "zones"), k.get("zones"))
    names: set[str] = set()
    plain_codes: dict[str, int] = {}
    for i, u in _items(data, "users"):
        name = u.get("name")
        if isinstance(name, str):
            if name in names:
                out.append((("users", i, "name"), f"user {name} is defined twice"))
            names.add(name)
        check_zones(("users", i, "zones"), u.get("zones"))
        for key in ("code", "duress_code"):
            c = u.get(key)
            if not isinstance(c, str):
                continue
            if c in plain_codes and plain_codes[c] != i:
                # never print the code itself
                out.append(
                    (
                        ("users", i, key),
                        f"same code as users[{plain_codes[c]}]; every code must be unique",
                    )
                )
            plain_codes.setdefault(c, i)
    dc09 = data.get("dc09")
    if isinstance(dc09, dict):
        for zid in dc09.get("partitions") or {}:
            check_zone(("dc09", "partitions", zid), zid)
        sensor_ids: set[str] = {
            str(s.get("id")) for _, s in _items(data, "sensors") if isinstance(s.get("id"), str)
        }
        for part, known in (("sensors", sensor_ids), ("users", names)):
            for ident in dc09.get(part) or {}:
                if ident not in known:
                    out.append((("dc09", part, ident), f"no {part[:-1]} {ident!r}"))
    scheduled: dict[str, int] = {}
    for i, sc in _items(data, "schedules"):
        zones = sc.get("zones")
        check_zones(("schedules", i, "zones"), zones)
        if isinstance(zones, list):
            for j, zid in enumerate(zones):
                if isinstance(zid, str):
                    if zid in scheduled and scheduled[zid] != i:
                        out.append(
                            (
                                ("schedules", i, "zones", j),
                                f"zone {zid} is already in schedules[{scheduled[zid]}]",
                            )
                        )
                    scheduled.setdefault(zid, i)
    out += _check_patrols(data, claim_id, claim_pin, check_zone)
    return out


def _check_patrols(
    data: dict[str, Any],
    claim_id: Any,
    claim_pin: Any,
    check_zone: Any,
) -> list[tuple[tuple[int | str, ...], str]]:
    """Checkpoints claim their ids and pins; plans name known checkpoints and keypads, and each
    round fits its window (its time and tolerance before the next round is due)."""
    out: list[tuple[tuple[int | str, ...], str]] = []
    # ids as the file gives them: only strings count (a mangled id is the models' problem)
    sensors = {
        s["id"]: s.get("zone") for _, s in _items(data, "sensors") if isinstance(s.get("id"), str)
    }
    keypads = {k["id"] for _, k in _items(data, "keypads") if isinstance(k.get("id"), str)}
    cps: set[str] = set()
    for i, c in _items(data, "checkpoints"):
        cid = c.get("id")
        claim_id(("checkpoints", i, "id"), cid)
        if isinstance(cid, str):
            cps.add(cid)
        for key in ("d0", "d1", "pin"):
            claim_pin(("checkpoints", i, key), c.get(key), f"{cid} {key}")
        check_zone(("checkpoints", i, "zone"), c.get("zone"))
        exempt = c.get("exempt")
        for j, sid in enumerate(exempt if isinstance(exempt, list) else []):
            if not isinstance(sid, str):
                continue  # the model says what is wrong with it
            if sid not in sensors:
                out.append((("checkpoints", i, "exempt", j), f"unknown sensor {sid!r}"))
            elif c.get("zone") is not None and sensors[sid] != c.get("zone"):
                out.append(
                    (
                        ("checkpoints", i, "exempt", j),
                        f"sensor {sid} is not in zone {c.get('zone')}",
                    )
                )
    badges: dict[str, int] = {}
    for i, u in _items(data, "users"):
        b = u.get("badge")
        if isinstance(b, str | int) and not isinstance(b, bool):
            if str(b) in badges:  # never print the number itself
                out.append((("users", i, "badge"), f"same badge as users[{badges[str(b)]}]"))
            badges.setdefault(str(b), i)
    known = ", ".join(sorted(cps)) or "none"
    plan_ids: set[str] = set()
    for i, p in _items(data, "patrols"):
        pid = p.get("id")
        if isinstance(pid, str):
            if pid in plan_ids:
                out.append((("patrols", i, "id"), f"patrol {pid} is defined twice"))
            plan_ids.add(pid)
        names = p.get("checkpoints")
        for j, cp in enumerate(names if isinstance(names, list) else []):
            if isinstance(cp, str) and cp not in cps:
                out.append(
                    (
                        ("patrols", i, "checkpoints", j),
                        f"unknown checkpoint {cp!r} (checkpoints: {known})",
                    )
                )
        if isinstance(names, list):
            dup = sorted({c for c in names if isinstance(c, str) and names.count(c) > 1})
            if dup:
                out.append(
                    (("patrols", i, "checkpoints"), f"checkpoint listed twice: {', '.join(dup)}")
                )
        buzzer = p.get("buzzer")
        if isinstance(buzzer, str) and buzzer not in keypads:
            out.append((("patrols", i, "buzzer"), f"unknown keypad {buzzer!r}"))
        out += _round_fits(p, i)
    return out


def _round_fits(p: dict[str, Any], i: int) -> list[tuple[tuple[int | str, ...], str]]:
    try:
        round_time = parse_duration(p.get("round_time", "30m"))
        tolerance = parse_duration(p.get("tolerance", "5m"))
    except ValueError:
        return []  # the model reports the bad duration itself
    out: list[tuple[tuple[int | str, ...], str]] = []
    runs = p.get("runs")
    for j, r in enumerate(runs if isinstance(runs, list) else []):
        if not isinstance(r, dict):
            continue
        try:
            run = PatrolRun.model_validate(r)
        except ValidationError:
            continue
        need = round_time + tolerance
        if need > run.every:
            out.append(
                (
                    ("patrols", i, "runs", j, "every"),
                    f"a round ({format_duration(round_time)} plus a tolerance of "
                    f"{format_duration(tolerance)}) cannot fit in every {format_duration(run.every)}",
                )
            )
        elif need > run.window:
            out.append(
                (
                    ("patrols", i, "runs", j),
                    f"a round ({format_duration(need)} with its tolerance) cannot fit in the "
                    f"window {run.start:%H:%M}-{run.end:%H:%M}",
                )
            )
    return out


# SPI0, which the ADC uses: these pins are the ADC's once an `adc` section is there
SPI0_PINS = {7: "CE1", 8: "CE0", 9: "MISO", 10: "MOSI", 11: "SCLK"}


def _adc_cross_check(
    data: dict[str, Any], claim_pin: Any
) -> list[tuple[tuple[int | str, ...], str]]:
    """The ADC's side of the cross-checks: its SPI pins claimed before anything else can take
    them, every channel used once (loops, mains, battery, siren lines), and nothing on a channel
    without an `adc` section."""
    out: list[tuple[tuple[int | str, ...], str]] = []
    has_adc = isinstance(data.get("adc"), dict)
    if has_adc:
        for pin, name in SPI0_PINS.items():
            claim_pin(("adc",), pin, f"the ADC's SPI0 {name}")
    channels: dict[int, str] = {}

    def claim_channel(loc: tuple[int | str, ...], ch: object, owner: str) -> None:
        if not isinstance(ch, int) or isinstance(ch, bool):
            return
        if not has_adc:
            out.append((loc, "an ADC channel needs the `adc` section (chip, vref, poll)"))
        elif ch in channels:
            out.append((loc, f"ADC channel {ch} already used by {channels[ch]}"))
        else:
            channels[ch] = owner

    for i, s in _items(data, "sensors"):
        loop = s.get("loop")
        if isinstance(loop, dict):
            claim_channel(("sensors", i, "loop", "channel"), loop.get("channel"), str(s.get("id")))
    power = data.get("power")
    if isinstance(power, dict):
        for part in ("mains", "battery"):
            sect = power.get(part)
            if isinstance(sect, dict):
                claim_channel(("power", part, "channel"), sect.get("channel"), f"power.{part}")
        mains = power.get("mains")
        if isinstance(mains, dict):
            claim_pin(("power", "mains", "pin"), mains.get("pin"), "power.mains")
        siren_ids = {sr.get("id") for _, sr in _items(data, "sirens")}
        sirens = power.get("sirens")
        for j, line in enumerate(sirens if isinstance(sirens, list) else []):
            if not isinstance(line, dict):
                continue
            claim_channel(("power", "sirens", j, "channel"), line.get("channel"), f"siren line {j}")
            sid = line.get("siren")
            if isinstance(sid, str) and sid not in siren_ids:
                out.append((("power", "sirens", j, "siren"), f"unknown siren {sid!r}"))
    return out


def _loop_problems(cfg: SiteConfig) -> list[tuple[tuple[int | str, ...], str]]:
    """Bands that overlap, are empty or lie within the hysteresis of each other, per loop."""
    out: list[tuple[tuple[int | str, ...], str]] = []
    vref = cfg.adc.vref if cfg.adc is not None else 3.3
    for i, s in enumerate(cfg.sensors):
        if s.loop is None:
            continue
        where: tuple[int | str, ...] = ("sensors", i, "loop")
        if s.loop.bands is not None:
            where = (*where, "bands")
        for msg in band_problems(s.loop.band_set(vref), s.loop.hysteresis):
            out.append((where, msg))
    return out


def _warnings(cfg: SiteConfig) -> list[tuple[tuple[int | str, ...], str]]:
    out: list[tuple[tuple[int | str, ...], str]] = []
    for i, u in enumerate(cfg.users):
        if u.code is not None:
            out.append(
                (
                    ("users", i, "code"),
                    "plain code in the file; replace it by code_hash from `officeguard hash-code`",
                )
            )
        if u.duress_code is not None:
            out.append(
                (
                    ("users", i, "duress_code"),
                    "plain duress code in the file; replace it by duress_code_hash",
                )
            )
        if u.badge is not None:
            out.append(
                (
                    ("users", i, "badge"),
                    "plain badge number in the file; replace it by badge_hash from "
                    "`officeguard patrol hash-badge`",
                )
            )
    zones_with_siren = {z for s in cfg.sirens for z in s.zones}
    for i, z in enumerate(cfg.zones):
        if z.id not in zones_with_siren:
            out.append((("zones", i), f"zone {z.id} has no siren"))
    if cfg.drone_detectors and cfg.site.location is None:
        out.append(
            (("site", "location"), "no site location: drone distance and bearing cannot be given")
        )
    return out


def read_yaml(text: str, source: str) -> tuple[Any, _LineMap]:
    """The YAML text's data and the line of each key in it; ConfigError, with the line, when
    it is not YAML (the site's config and the station's settings read their files alike)."""
    try:
        node = yaml.compose(text, Loader=yaml.SafeLoader)
        data = yaml.safe_load(text)
    except yaml.MarkedYAMLError as e:
        mark = e.problem_mark or e.context_mark
        line = mark.line + 1 if mark is not None else None
        msg = f"YAML syntax error: {e.problem or e}" + (f" ({e.context})" if e.context else "")
        raise ConfigError(source, [Problem("", msg, line)]) from None
    except yaml.reader.ReaderError as e:  # a control character or bad encoding
        line = text.count("\n", 0, max(0, e.position)) + 1
        raise ConfigError(
            source, [Problem("", f"character not allowed in YAML: {e.reason} {e.character!r}", line)]
        ) from None
    except yaml.YAMLError as e:
        raise ConfigError(source, [Problem("", f"YAML error: {e}")]) from None
    return data, _LineMap(node)


def read_text(path: str | Path) -> str:
    """A config file's text; ConfigError (no such file, cannot read it) otherwise."""
    p = Path(path)
    try:
        return p.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(str(p), [Problem("", "no such file")]) from None
    except (OSError, UnicodeDecodeError) as e:
        raise ConfigError(str(p), [Problem("", f"cannot read the file: {e}")]) from None


def parse_config(text: str, source: str = "<config>") -> Loaded:
    """Validate YAML text; raise ConfigError with every problem found."""
    data, lines = read_yaml(text, source)
    if not isinstance(data, dict):
        raise ConfigError(
            source,
            [Problem("", "the file must be a YAML mapping (site:, zones:, sensors: ...)", 1)],
        )
    problems = [Problem(_format_loc(loc), msg, lines.line(loc)) for loc, msg in _cross_check(data)]
    try:
        cfg = SiteConfig.model_validate(data)
    except ValidationError as e:
        problems += [
            Problem(
                _format_loc(tuple(err["loc"])), _friendly(dict(err)), lines.line(tuple(err["loc"]))
            )
            for err in e.errors()
        ]
    else:
        problems += [Problem(_format_loc(loc), msg, lines.line(loc)) for loc, msg in _loop_problems(cfg)]
    if problems:
        raise ConfigError(source, _dedupe(problems))
    warns = [Problem(_format_loc(loc), msg, lines.line(loc)) for loc, msg in _warnings(cfg)]
    return Loaded(cfg, warns, source)


def _dedupe(problems: list[Problem]) -> list[Problem]:
    seen: set[tuple[str, str]] = set()
    out = []
    for p in problems:
        if (p.path, p.message) not in seen:
            seen.add((p.path, p.message))
            out.append(p)
    return sorted(out, key=lambda p: (p.line or 0, p.path))


def load_config(path: str | Path) -> Loaded:
    return parse_config(read_text(path), str(path))


def summary(cfg: SiteConfig) -> str:
    """A few lines an installer can check against the wiring plan."""
    lines = [
        f"site {cfg.site.id} ({cfg.site.name}), time zone {cfg.site.timezone}, language {cfg.site.language}",
        f"hardware: {cfg.hardware.backend}; broker {cfg.mqtt.url}, topics {cfg.mqtt.topic_prefix}/{cfg.site.id}/",
    ]
    for z in cfg.zones:
        sensors = [s for s in cfg.sensors if s.zone == z.id]
        lines.append(
            f"zone {z.id} ({z.name}): entry {format_duration(z.entry_delay)}, exit {format_duration(z.exit_delay)}, "
            f"siren {format_duration(z.siren_time)}, {len(sensors)} sensor(s)"
        )
        for s in sensors:
            extra = " interior" if s.interior else ""
            where = f"GPIO{s.pin:<3}" if s.loop is None else f"ADC{s.loop.channel:<4}"
            lines.append(
                f"  {s.id:<18} {s.type:<9} {s.effective_response:<8} {where}{extra}  {s.name}"
            )
    for sr in cfg.sirens:
        lines.append(f"siren {sr.id} GPIO{sr.pin} -> {', '.join(sr.zones)}")
    for k in cfg.keypads:
        lines.append(f"keypad {k.id} {len(k.rows)}x{len(k.cols)} -> {', '.join(k.zones)}")
    for d in cfg.drone_detectors:
        lines.append(f"drone detector {d.id} on {d.port} @ {d.baudrate} -> zone {d.zone}")
    lines.append(f"users: {', '.join(u.name for u in cfg.users) or 'none'}")
    for sc in cfg.schedules:
        days = sc.days if isinstance(sc.days, str) else ",".join(sc.days)
        lines.append(
            f"schedule {','.join(sc.zones)}: arm {sc.arm:%H:%M}, disarm {sc.disarm:%H:%M}, {days}, holidays {sc.holidays}"
        )
    for c in cfg.checkpoints:
        where = f"GPIO{c.d0}/GPIO{c.d1} Wiegand {c.bits}" if c.kind == "badge" else f"GPIO{c.pin}"
        lines.append(f"checkpoint {c.id} {c.kind} {where}" + (f" in {c.zone}" if c.zone else ""))
    for pl in cfg.patrols:
        runs = "; ".join(
            f"{r.days if isinstance(r.days, str) else ','.join(r.days)} {r.start:%H:%M}-{r.end:%H:%M} "
            f"every {format_duration(r.every)}"
            for r in pl.runs
        )
        lines.append(f"patrol {pl.id}: {' -> '.join(pl.checkpoints)} ({pl.order}); {runs}")
    h = cfg.holidays
    lines.append(
        f"holidays: {h.country or 'none'}, {len(h.extra)} extra day(s) off, {len(h.working_days)} make-up working day(s)"
    )
    return "\n".join(lines)
