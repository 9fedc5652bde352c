"""Event kinds: every `kind` an event can have, declared once with what goes with it.

For each kind: the envelope fields it may carry besides the ones every event has (its part of
controller/event.schema.json, whose `kind` enum lists exactly these names), whether the outbox
may give it up after a very long outage, and whether it reports a zone's new state.
controller/events.py (the kinds a draft may have), controller/journal.py (the outbox's
low-priority kinds) and the engine (the kinds that carry `detail.state`) read this table.

Pure data: no I/O, no imports from the rest of the daemon.
"""

from __future__ import annotations

from dataclasses import dataclass

# the optional fields of an event's envelope (the schema's properties that are not required)
OPTIONAL_FIELDS = frozenset({"zone", "sensor", "user", "cid"})


@dataclass(frozen=True, slots=True)
class EventKind:
    """One kind of event and the rules that follow from it."""

    name: str
    fields: frozenset[str]  # which of OPTIONAL_FIELDS it may carry
    # the long-outage policy may give it up (book-keeping, not what the security office must
    # act on; kept in the logbook): alarms, tampers, troubles, duress and drones never are
    expirable: bool = False
    # when it changes a zone's Home Assistant state it carries detail.state and detail.previous
    zone_state: bool = False


def _kind(name: str, fields: str, *, expirable: bool = False, zone_state: bool = False) -> EventKind:
    return EventKind(name, frozenset(fields.split()), expirable, zone_state)


# in the order of the schema's enum and of docs/events.md
EVENT_KINDS: dict[str, EventKind] = {
    k.name: k
    for k in (
        _kind("alarm", "zone sensor user cid", zone_state=True),
        _kind("alarm_restore", "zone sensor cid"),
        _kind("cancel", "zone user cid"),
        _kind("arm", "zone sensor user cid", expirable=True, zone_state=True),
        _kind("disarm", "zone user cid", expirable=True, zone_state=True),
        _kind("arm_failed", "zone user cid", expirable=True),
        _kind("entry", "zone sensor", expirable=True, zone_state=True),
        _kind("trouble", "zone sensor cid"),
        _kind("trouble_restore", "zone sensor cid"),
        _kind("tamper", "zone sensor cid"),
        _kind("duress", "zone user cid"),
        _kind("drone", "zone sensor cid"),
        _kind("drone_lost", "zone sensor cid", expirable=True),
        _kind("snapshot", "zone sensor", expirable=True),  # the images stay on disk
        _kind("bypass", "zone sensor user cid", expirable=True),
        _kind("keypad_lockout", "zone"),
        _kind("siren", "zone user", expirable=True, zone_state=True),
        _kind("system", "zone user cid", expirable=True),
        # guard patrols (controller/patrol/): a missed round or a silent guard is for the office
        _kind("patrol", "zone sensor user cid"),
    )
}

for _k in EVENT_KINDS.values():  # pragma: no cover - caught at import
    if not _k.fields <= OPTIONAL_FIELDS:
        raise RuntimeError(f"event kind {_k.name}: unknown fields {sorted(_k.fields - OPTIONAL_FIELDS)}")
