"""The station's settings file (`officeguard station serve --settings station.yaml`): YAML
validated with pydantic as the site's config is (controller/config.py), every problem reported
at once with its line. A command-line flag wins over the file; the file over the defaults.
Every key is in docs/station.md ("Settings file").
"""

from __future__ import annotations

import re
from datetime import timedelta
from pathlib import Path
from typing import Any, Literal

from pydantic import Field, ValidationError, field_validator, model_validator

from controller.config import (
    BrokerLogin,
    ConfigError,
    Duration,
    Mqtt,
    Problem,
    _format_loc,
    _friendly,
    _Model,
    read_text,
    read_yaml,
)
from controller.station.incidents import AGEING_S

UL1610_MAX = timedelta(seconds=200)  # a silent site is "communication lost" within 200 s


class Broker(BrokerLogin):
    """Where the sites' messages are and how to log in: the keys of a site's `mqtt:` section
    that say so (BrokerLogin, with its checks), and the station's share group."""

    share: str = "officeguard-station"  # the MQTT 5 shared-subscription group

    @field_validator("share")
    @classmethod
    def _share(cls, v: str) -> str:
        if not re.fullmatch(r"[A-Za-z0-9_.-]{1,100}", v):
            raise ValueError("a share group is letters, digits, _ . - (at most 100)")
        return v

    def mqtt(self) -> Mqtt:
        """As the site's `mqtt:` section, which the console's MQTT client takes."""
        return Mqtt.model_validate({k: getattr(self, k) for k in BrokerLogin.model_fields})


class Ageing(_Model):
    """How long an incident of one priority may wait for an operator: its row turns amber after
    `amber`, red after `red`."""

    amber: Duration
    red: Duration

    @model_validator(mode="after")
    def _order(self) -> Ageing:
        if not timedelta(0) < self.amber < self.red:
            raise ValueError("amber comes first: 0 < amber < red")
        return self


Priority = Literal[1, 2, 3]


def _default_ageing() -> dict[Priority, Ageing]:
    def ageing(p: Priority) -> Ageing:
        amber, red = AGEING_S[p]
        return Ageing(amber=timedelta(seconds=amber), red=timedelta(seconds=red))

    return {1: ageing(1), 2: ageing(2), 3: ageing(3)}


class StationSettings(_Model):
    database: str = "station.db"  # a SQLite path or sqlite:///..., or postgresql://...
    broker: Broker = Broker()
    listen: str = "127.0.0.1:8080"
    secret_file: str | None = None
    https: bool = False
    language: Literal["vi", "en"] = "vi"
    command_keys: str | None = None
    buffer_limit: int = Field(default=200_000, ge=1000)
    heartbeat_margin: Duration = timedelta(seconds=30)
    write_every: Duration = timedelta(milliseconds=200)
    supervisor_limit: Duration = timedelta(minutes=15)
    pdf_font: str | None = None
    ageing: dict[Priority, Ageing] = Field(default_factory=_default_ageing)

    @field_validator("ageing")
    @classmethod
    def _ageing(cls, v: dict[Priority, Ageing]) -> dict[Priority, Ageing]:
        """A priority the file leaves out keeps its default."""
        return {**_default_ageing(), **v}

    def ageing_seconds(self) -> dict[int, tuple[float, float]]:
        """Seconds to amber and to red by priority, as the console takes them."""
        return {p: (a.amber.total_seconds(), a.red.total_seconds()) for p, a in self.ageing.items()}

    @field_validator("listen")
    @classmethod
    def _listen(cls, v: str) -> str:
        host, _, port = v.rpartition(":")
        if not host or not port.isdigit() or not 0 < int(port) < 65536:
            raise ValueError(f"bad listen address {v!r}: use HOST:PORT, like 127.0.0.1:8080")
        return v

    @field_validator("heartbeat_margin")
    @classmethod
    def _margin(cls, v: timedelta) -> timedelta:
        if not timedelta(0) < v < UL1610_MAX:
            raise ValueError("the margin is more than 0 s and less than 200 s (UL 1610)")
        return v

    @field_validator("write_every")
    @classmethod
    def _every(cls, v: timedelta) -> timedelta:
        if not timedelta(milliseconds=10) <= v <= timedelta(seconds=5):
            raise ValueError("write every 10ms to 5s")
        return v

    @field_validator("supervisor_limit")
    @classmethod
    def _limit(cls, v: timedelta) -> timedelta:
        if v <= timedelta(0):
            raise ValueError("the limit is more than 0")
        return v

    @field_validator("pdf_font")
    @classmethod
    def _font(cls, v: str | None) -> str | None:
        if v is not None and not Path(v).is_file():
            raise ValueError(f"no font file {v}")
        return v


def parse_settings(text: str, source: str = "<settings>") -> StationSettings:
    """Validate YAML text; ConfigError with every problem found, each with its line."""
    data, lines = read_yaml(text, source)
    if data is None:  # an empty file: the defaults
        data = {}
    if not isinstance(data, dict):
        raise ConfigError(source, [Problem("", "the file must be a YAML mapping (database:, broker: ...)", 1)])
    try:
        return StationSettings.model_validate(data)
    except ValidationError as e:
        raise ConfigError(
            source,
            sorted(
                (
                    Problem(_format_loc(tuple(err["loc"])), _station_friendly(dict(err)),
                            lines.line(tuple(err["loc"])))
                    for err in e.errors()
                ),
                key=lambda p: (p.line or 0, p.path),
            ),  # fmt: skip
        ) from None


def _station_friendly(err: dict[str, Any]) -> str:
    if err.get("type") == "extra_forbidden":
        return "unknown key (check the spelling; every key is in docs/station.md)"
    return _friendly(err)


def load_settings(path: str | Path) -> StationSettings:
    return parse_settings(read_text(path), str(path))
