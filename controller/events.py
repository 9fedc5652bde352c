"""Events: what happened, as the logbook keeps it and the broker receives it.

The engine and the other parts of the daemon produce `EventDraft`s; the journal gives each one
its `seq` and `id` when it writes it, and from then on it is an `Event`, the same everywhere
(logbook row, `P/event` message, re-sends after a crash).
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from datetime import datetime
from importlib import resources
from typing import Any
from zoneinfo import ZoneInfo

from controller.event_kinds import EVENT_KINDS

# every kind an event may have, declared in controller/event_kinds.py
KINDS: tuple[str, ...] = tuple(EVENT_KINDS)
_KINDS = frozenset(KINDS)


@dataclass(frozen=True)
class EventDraft:
    """An event before the journal numbers it."""

    kind: str
    ts: datetime
    text: str = ""
    cid: str | None = None
    zone: str | None = None
    sensor: str | None = None
    user: str | None = None
    detail: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.kind not in _KINDS:
            raise ValueError(f"unknown event kind {self.kind!r}")
        if self.ts.tzinfo is None:
            raise ValueError("event time must be timezone-aware")


@dataclass(frozen=True)
class Event:
    id: str
    seq: int
    site: str
    ts: str
    kind: str
    text: str
    cid: str | None = None
    zone: str | None = None
    sensor: str | None = None
    user: str | None = None
    detail: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def from_draft(
        cls, draft: EventDraft, *, site: str, seq: int, tz: ZoneInfo, event_id: str | None = None
    ) -> Event:
        ev = cls.__new__(cls)
        # every field in one go: the frozen dataclass's __init__ would set them one by one
        # through object.__setattr__ (tests/engine/test_events.py checks that this sets exactly the
        # dataclass's fields). Measured again on the paho link (issue 17, docs/capacity.md):
        # this, new_event_id() and format_ts() take from_draft from 4.8 to 2.0 us, and the
        # storm's CPU per event is 8-11 % lower with them than with the plain forms
        # (medians 85-86 against 93-94 us, same session); this one alone saves 1.2 us
        ev.__dict__.update(
            id=event_id or new_event_id(),
            seq=seq,
            site=site,
            ts=format_ts(draft.ts, tz),
            kind=draft.kind,
            text=draft.text,
            cid=draft.cid,
            zone=draft.zone,
            sensor=draft.sensor,
            user=draft.user,
            detail=dict(draft.detail),
        )
        return ev

    def to_dict(self) -> dict[str, Any]:
        d: dict[str, Any] = {
            "id": self.id,
            "seq": self.seq,
            "site": self.site,
            "ts": self.ts,
            "kind": self.kind,
        }
        for key in ("zone", "sensor", "user", "cid"):
            value = getattr(self, key)
            if value is not None:
                d[key] = value
        d["text"] = self.text
        d["detail"] = self.detail
        return d

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), ensure_ascii=False, separators=(",", ":"))

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Event:
        return cls(
            id=d["id"],
            seq=int(d["seq"]),
            site=d["site"],
            ts=d["ts"],
            kind=d["kind"],
            text=d.get("text", ""),
            cid=d.get("cid"),
            zone=d.get("zone"),
            sensor=d.get("sensor"),
            user=d.get("user"),
            detail=d.get("detail") or {},
        )


# a random UUID's version (4) and variant (RFC 4122) bits
_UUID4_CLEAR = ~((0xF000 << 64) | (0xC000 << 48))
_UUID4_SET = (0x4000 << 64) | (0x8000 << 48)


def new_event_id() -> str:
    """A random (version 4) UUID as 32 hex digits: uuid.uuid4().hex without the UUID object,
    0.7 us instead of 1.4 (issue 17; see Event.from_draft)."""
    n = int.from_bytes(os.urandom(16), "big") & _UUID4_CLEAR | _UUID4_SET
    return f"{n:032x}"


# (second since the epoch, zone) -> the text before and after the milliseconds
_TS_PARTS: dict[tuple[int, ZoneInfo], tuple[str, str]] = {}


def format_ts(ts: datetime, tz: ZoneInfo) -> str:
    """ISO 8601 with the site's offset, millisecond precision: 2026-02-17T01:20:00.000+07:00.
    The date, time and offset are formatted once per second and zone (events come in bursts);
    only the milliseconds are added per event: 0.6 us instead of 1.2 (issue 17)."""
    us = ts.microsecond
    key = (int(ts.timestamp() // 1), tz)  # whole seconds: an offset is never a fraction of one
    parts = _TS_PARTS.get(key)
    if parts is None:
        text = ts.astimezone(tz).isoformat(timespec="milliseconds")
        parts = text[:19], text[23:]  # "2026-02-17T01:20:00", "+07:00"
        if len(_TS_PARTS) >= 256:
            _TS_PARTS.clear()
        _TS_PARTS[key] = parts
    return f"{parts[0]}.{us // 1000:03d}{parts[1]}"


def event_schema() -> dict[str, Any]:
    """The JSON Schema every published event validates against (controller/event.schema.json)."""
    text = resources.files("controller").joinpath("event.schema.json").read_text(encoding="utf-8")
    schema: dict[str, Any] = json.loads(text)
    return schema
