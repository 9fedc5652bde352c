"""Event ids and timestamps (controller/events.py): the cheap forms give what uuid4 and
datetime.isoformat give."""

from __future__ import annotations

import dataclasses
import random
import uuid
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from controller.events import Event, EventDraft, format_ts, new_event_id

ZONES = [
    ZoneInfo(z)
    for z in (
        "Asia/Ho_Chi_Minh",
        "Europe/Berlin",  # DST both ways
        "America/St_Johns",  # half-hour offset
        "Asia/Kathmandu",  # +05:45
        "Africa/Monrovia",  # an offset with seconds before 1972
        "UTC",
    )
]


def reference(ts: datetime, tz: ZoneInfo) -> str:
    return ts.astimezone(tz).isoformat(timespec="milliseconds")


def test_format_ts_is_isoformat_in_the_zone_with_milliseconds() -> None:
    rnd = random.Random(3)
    start = datetime(1900, 1, 1, tzinfo=UTC)
    for _ in range(20_000):
        ts = start + timedelta(microseconds=rnd.randrange(200 * 365 * 86_400 * 10**6))
        if rnd.random() < 0.3:
            ts = ts.replace(microsecond=rnd.choice([0, 999, 1000, 999_500, 999_999]))
        if rnd.random() < 0.5:
            ts = ts.astimezone(rnd.choice(ZONES))  # the same instant, shown in another zone
        tz = rnd.choice(ZONES)
        assert format_ts(ts, tz) == reference(ts, tz)


def test_format_ts_around_a_second_and_the_epoch() -> None:
    tz = ZoneInfo("Asia/Ho_Chi_Minh")
    epoch = datetime(1970, 1, 1, tzinfo=UTC)
    for us in (-1_500_000, -700_000, -1, 0, 1, 300_000, 999_999, 1_000_000):
        ts = epoch + timedelta(microseconds=us)
        assert format_ts(ts, tz) == reference(ts, tz)
    berlin = ZoneInfo("Europe/Berlin")  # the same second either side of a DST change
    change = datetime(2026, 3, 29, 1, 0, tzinfo=UTC)
    for us in (-1, 0, 999_999):
        ts = change + timedelta(microseconds=us)
        assert format_ts(ts, berlin) == reference(ts, berlin)


def test_event_ids_are_random_version_4_uuids() -> None:
    ids = [new_event_id() for _ in range(10_000)]
    assert len(set(ids)) == len(ids)
    for i in ids[:500]:
        u = uuid.UUID(hex=i)
        assert u.hex == i and u.version == 4 and u.variant == uuid.RFC_4122


def test_an_event_from_a_draft_is_the_dataclass_with_every_field() -> None:
    tz = ZoneInfo("Asia/Ho_Chi_Minh")
    draft = EventDraft(
        kind="alarm",
        ts=datetime(2026, 3, 4, 5, 0, 1, 234_000, tzinfo=UTC),
        text="Door open",
        cid="E131",
        zone="finance",
        sensor="door.finance",
        user="guard",
        detail={"state": "triggered"},
    )
    ev = Event.from_draft(draft, site="office-a", seq=7, tz=tz, event_id="a" * 32)
    assert set(vars(ev)) == {f.name for f in dataclasses.fields(Event)}
    assert ev == Event(
        id="a" * 32,
        seq=7,
        site="office-a",
        ts="2026-03-04T12:00:01.234+07:00",
        kind="alarm",
        text="Door open",
        cid="E131",
        zone="finance",
        sensor="door.finance",
        user="guard",
        detail={"state": "triggered"},
    )
    assert ev.detail is not draft.detail  # its own copy
    with pytest.raises(dataclasses.FrozenInstanceError):
        ev.seq = 8  # type: ignore[misc]
    bare = Event.from_draft(EventDraft(kind="system", ts=draft.ts), site="s", seq=1, tz=tz)
    assert (bare.cid, bare.zone, bare.sensor, bare.user, bare.detail, bare.text) == (
        None,
        None,
        None,
        None,
        {},
        "",
    )
