"""Events: what happened, as the logbook keeps it and the broker receives it.

The engine and the other parts of the daemon produce `EventDraft`s; the journal gives each one
its `seq` and `id` when it writes it, and from then on it is an `Event`, the same everywhere
(logbook row, `P/event` message, re-sends after a crash).
"""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass, field
from datetime import datetime
from importlib import resources
from typing import Any
from zoneinfo import ZoneInfo

KINDS: tuple[str, ...] = (
    "alarm",
    "alarm_restore",
    "cancel",
    "arm",
    "disarm",
    "arm_failed",
    "entry",
    "trouble",
    "trouble_restore",
    "tamper",
    "duress",
    "drone",
    "drone_lost",
    "bypass",
    "keypad_lockout",
    "siren",
    "system",
)


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
        if self.kind not in KINDS:
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
        return cls(
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


def new_event_id() -> str:
    return uuid.uuid4().hex


def format_ts(ts: datetime, tz: ZoneInfo) -> str:
    """ISO 8601 with the site's offset, millisecond precision: 2026-02-17T01:20:00.000+07:00."""
    return ts.astimezone(tz).isoformat(timespec="milliseconds")


def event_schema() -> dict[str, Any]:
    """The JSON Schema every published event validates against (controller/event.schema.json)."""
    text = resources.files("controller").joinpath("event.schema.json").read_text(encoding="utf-8")
    schema: dict[str, Any] = json.loads(text)
    return schema
