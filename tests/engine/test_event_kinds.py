"""Event kinds are declared once (controller/event_kinds.py): the schema, the events module, the
outbox's policy and the engine agree with that table."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from hypothesis import given, settings

from controller.engine.engine import _ZONE_STATE_KINDS
from controller.event_kinds import EVENT_KINDS, OPTIONAL_FIELDS
from controller.events import KINDS, EventDraft, event_schema
from controller.journal import LOW_PRIORITY_KINDS
from tests.engine.test_engine_properties import events_of, run, steps_st


def test_the_schema_file_lists_exactly_the_declared_kinds_in_their_order() -> None:
    assert event_schema()["properties"]["kind"]["enum"] == list(EVENT_KINDS)
    assert tuple(EVENT_KINDS) == KINDS


def test_the_declared_optional_fields_are_the_schemas_optional_properties() -> None:
    schema = event_schema()
    assert set(schema["properties"]) - set(schema["required"]) == OPTIONAL_FIELDS


def test_the_outbox_never_gives_up_alarms_tampers_troubles_duress_or_drones() -> None:
    never = {"alarm", "alarm_restore", "cancel", "trouble", "trouble_restore", "tamper", "duress",
             "drone", "keypad_lockout", "patrol"}
    assert set(LOW_PRIORITY_KINDS) == set(EVENT_KINDS) - never
    assert all(not EVENT_KINDS[k].expirable for k in never)


def test_the_engine_reports_zone_states_on_the_declared_kinds() -> None:
    zone_state = _ZONE_STATE_KINDS
    assert zone_state == {"arm", "disarm", "alarm", "siren", "entry"}


def test_a_draft_of_an_undeclared_kind_is_refused() -> None:
    with pytest.raises(ValueError, match="unknown event kind 'alarms'"):
        EventDraft(kind="alarms", ts=datetime.now(UTC))


@settings(max_examples=150)
@given(steps_st)
def test_every_engine_event_carries_only_what_its_kind_declares(steps) -> None:
    _, trace = run(steps)
    for ev in events_of(trace):
        kind = EVENT_KINDS[ev.kind]
        present = {f for f in OPTIONAL_FIELDS if getattr(ev, f) is not None}
        assert present <= kind.fields, (ev.kind, present)
        if "state" in ev.detail:
            assert kind.zone_state, ev.kind
