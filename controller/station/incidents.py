"""The monitoring station's alarm queue: incidents, their priorities, states and audit trail.

Pure: no database, no network, no clock. Every method that depends on time takes `now`
(seconds since the epoch, as the station's clock reads it). The adapters (`store.py` for the
database, `ingest.py` for MQTT, `web.py` for the console) feed it and persist what it decides.

- `priority_of(event)`: the queue priority of an event, or None when the event opens nothing.
  1: fire, panic, duress (life first); 2: burglary, safe attack, drone; 3: tamper and troubles.
  Restores, arming, disarming and the rest open nothing; a restore never closes an incident by
  itself (an operator closes it, with a resolution).
- `Incident`: opened by one event, then `acknowledge`, `note`, `close` by an operator. Each
  step is appended to `steps` (who, when, what) and nothing ever removes or edits a step. A
  step that does not fit the state (closing twice, a note on a closed incident, a resolution
  not in `RESOLUTIONS`) raises `IncidentError`.
- `Queue`: the open incidents, de-duplicated by the opening event's id, ordered by priority
  then age; a new alarm at a site that has an open incident of the same priority and zone
  joins that incident (its `events` grow) instead of opening another.
- `Liveness`: per site, online/offline from the retained status and its last will, and
  "communication lost" when neither a heartbeat nor a status came for the heartbeat interval
  plus a margin (at most `COMM_LOST_MAX_S` = 200 s after the last sign of life, as UL 1610 asks
  of a central station).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from controller.errors import OfficeGuardError

# Contact ID event codes (docs/contact-id.md) that say what an alarm is
FIRE_CODES = frozenset({"E110", "E111", "E112", "E113", "E114", "E115", "E116", "E117", "E118"})
PANIC_CODES = frozenset({"E120", "E121", "E122", "E123", "E124", "E125", "E129"})
SAFE_CODES = frozenset({"E137"})  # tamper on a safe sensor is still a tamper; see _safe
PRIORITY_NAMES = {1: "life", 2: "intrusion", 3: "technical"}
OPENING_KINDS = frozenset({"alarm", "duress", "tamper", "drone", "trouble", "keypad_lockout"})
RESOLUTIONS = (
    "false_alarm",
    "guard_sent",
    "police_called",
    "fire_brigade_called",
    "test",
    "technical_fault",
    "user_error",
    "other",
)
STATES = ("open", "acknowledged", "closed")
# ageing colours: an incident waiting longer than these (seconds, by priority) turns amber,
# then red; the supervisor's view lists acknowledged incidents not closed past `overdue_s`
AGEING_S = {1: (30.0, 90.0), 2: (60.0, 300.0), 3: (300.0, 1800.0)}
COMM_LOST_MAX_S = 200.0
COMM_LOST_MARGIN_S = 30.0
DEFAULT_HEARTBEAT_S = 60.0


class IncidentError(OfficeGuardError, ValueError):
    """An operator's step that does not fit the incident (the message says why).

    The message is a gettext msgid with `%(name)s` fields (`msgid`, `params`), so the console
    shows it in the operator's language (`translated`); `str()` is the English text. A `state`
    field is itself translated (it is one of STATES)."""

    def __init__(self, msgid: str, **params: str) -> None:
        super().__init__(msgid % params if params else msgid)
        self.msgid, self.params = msgid, params

    def translated(self, _: Callable[[str], str]) -> str:
        """The message in the language of `_` (a gettext function)."""
        if not self.params:
            return _(self.msgid)
        return _(self.msgid) % {k: _(v) if k == "state" else v for k, v in self.params.items()}


def priority_of(event: Mapping[str, Any]) -> int | None:
    """1 for fire, panic and duress; 2 for burglary, safe attack and drones; 3 for tamper and
    troubles (and a keypad lockout); None for every event that opens no incident."""
    kind = event.get("kind")
    if kind not in OPENING_KINDS:
        return None
    if kind == "duress":
        return 1
    cid = event.get("cid")
    if kind == "alarm":
        if cid in FIRE_CODES or cid in PANIC_CODES:
            return 1
        return 2
    if kind == "drone":
        detail = event.get("detail")
        if isinstance(detail, Mapping) and detail.get("update"):
            return None  # a later report of a drone already queued
        return 2
    return 3


def alarm_class(event: Mapping[str, Any]) -> str:
    """A short name for what the incident is about: fire, panic, duress, burglary, drone..."""
    kind = str(event.get("kind"))
    cid = event.get("cid")
    if kind == "alarm":
        if cid in FIRE_CODES:
            return "fire"
        if cid in PANIC_CODES:
            return "panic"
        return "burglary"
    return kind


@dataclass(frozen=True)
class Step:
    """One thing that happened to an incident: never edited, never removed."""

    at: float
    who: str  # an operator's login, or "station" for what the station itself did
    action: str  # opened, event, acknowledged, note, closed
    text: str = ""

    def as_dict(self) -> dict[str, Any]:
        return {"at": self.at, "who": self.who, "action": self.action, "text": self.text}


@dataclass
class Incident:
    id: str  # the opening event's id
    site: str
    priority: int
    what: str  # alarm_class of the opening event
    zone: str | None
    opened_at: float
    title: str
    state: str = "open"
    acknowledged_at: float | None = None
    acknowledged_by: str | None = None
    closed_at: float | None = None
    closed_by: str | None = None
    resolution: str | None = None
    events: list[str] = field(default_factory=list)
    steps: list[Step] = field(default_factory=list)

    @classmethod
    def open(cls, event: Mapping[str, Any], site: str, now: float) -> Incident:
        prio = priority_of(event)
        if prio is None:
            raise IncidentError(
                "an event of kind %(kind)s opens no incident", kind=repr(event.get("kind"))
            )
        eid = str(event["id"])
        zone = event.get("zone") if isinstance(event.get("zone"), str) else None
        zone = zone.replace("\x00", "\ufffd") if zone is not None else None
        title = str(event.get("text") or event.get("kind")).replace("\x00", "\ufffd")
        inc = cls(eid, site, prio, alarm_class(event), zone, now, title, events=[eid])
        inc.steps.append(Step(now, "station", "opened", title))
        return inc

    # ---------------------------------------------------------------- operator steps

    def _step(self, at: float, who: str, action: str, text: str = "") -> Step:
        if not who:
            raise IncidentError("a step needs the operator who took it")
        if self.steps and at < self.steps[-1].at:
            at = self.steps[-1].at  # a clock stepped back: the trail stays in order
        s = Step(at, who, action, text)
        self.steps.append(s)
        return s

    def acknowledge(self, who: str, now: float) -> Step:
        if self.state != "open":
            raise IncidentError(
                "incident %(id)s is %(state)s, not open", id=self.id, state=self.state
            )
        s = self._step(now, who, "acknowledged")
        self.state, self.acknowledged_at, self.acknowledged_by = "acknowledged", s.at, who
        return s

    def note(self, who: str, text: str, now: float) -> Step:
        text = text.strip()
        if not text:
            raise IncidentError("an empty note")
        if self.state == "closed":
            raise IncidentError("incident %(id)s is closed: its notes are final", id=self.id)
        return self._step(now, who, "note", text)

    def close(self, who: str, resolution: str, now: float, text: str = "") -> Step:
        if resolution not in RESOLUTIONS:
            raise IncidentError(
                "%(what)s is not a resolution (%(known)s)",
                what=repr(resolution),
                known=", ".join(RESOLUTIONS),
            )
        if self.state == "closed":
            raise IncidentError("incident %(id)s is closed already", id=self.id)
        if self.state == "open":
            self.acknowledge(who, now)  # closing is also acknowledging
        s = self._step(
            now, who, "closed", f"{resolution}: {text.strip()}" if text.strip() else resolution
        )
        self.state, self.closed_at, self.closed_by, self.resolution = (
            "closed",
            s.at,
            who,
            resolution,
        )
        return s

    def join(self, event: Mapping[str, Any], now: float) -> Step | None:
        """Another event of the same alarm at this site: recorded, the incident stays one."""
        eid = str(event["id"])
        if eid in self.events:
            return None
        self.events.append(eid)
        return self._step(now, "station", "event", str(event.get("text") or event.get("kind")))

    # ---------------------------------------------------------------- views

    def age(self, now: float) -> float:
        return max(0.0, now - self.opened_at)

    def colour(self, now: float, ageing: Mapping[int, tuple[float, float]] = AGEING_S) -> str:
        """green, amber or red by how long the incident has waited for an operator (`ageing`:
        seconds to amber and to red by priority, the station's `ageing` setting)."""
        if self.state == "closed":
            return "grey"
        amber, red = ageing.get(self.priority, AGEING_S[self.priority])
        waited = (self.acknowledged_at or now) - self.opened_at
        if waited >= red:
            return "red"
        if waited >= amber:
            return "amber"
        return "green"

    def overdue(self, now: float, limit_s: float) -> bool:
        """Acknowledged but not closed for longer than `limit_s` (the supervisor's list)."""
        return (
            self.state == "acknowledged"
            and self.acknowledged_at is not None
            and now - self.acknowledged_at > limit_s
        )

    def sort_key(self) -> tuple[int, float, str]:
        return (self.priority, self.opened_at, self.id)


class Queue:
    """The incidents the station knows, the open ones first by priority then age."""

    def __init__(self) -> None:
        self.incidents: dict[str, Incident] = {}
        self._by_event: dict[str, str] = {}  # event id -> incident id

    def add(self, inc: Incident) -> None:
        self.incidents[inc.id] = inc
        for e in inc.events:
            self._by_event[e] = inc.id

    def offer(
        self, event: Mapping[str, Any], site: str, now: float
    ) -> tuple[Incident, bool] | None:
        """An event seen by the station: (the incident it opened or joined, whether it is new),
        or None when it opens nothing or was seen already."""
        eid = event.get("id")
        if not isinstance(eid, str) or eid in self._by_event:
            return None
        prio = priority_of(event)
        if prio is None:
            return None
        zone = event.get("zone") if isinstance(event.get("zone"), str) else None
        what = alarm_class(event)
        for inc in self.incidents.values():
            if (
                inc.state != "closed"
                and inc.site == site
                and inc.priority == prio
                and inc.what == what
                and inc.zone == zone
            ):
                inc.join(event, now)
                self._by_event[eid] = inc.id
                return inc, False
        inc = Incident.open(event, site, now)
        self.add(inc)
        return inc, True

    def get(self, incident_id: str) -> Incident | None:
        return self.incidents.get(incident_id)

    def open_incidents(self) -> list[Incident]:
        return sorted(
            (i for i in self.incidents.values() if i.state != "closed"), key=Incident.sort_key
        )

    def by_site(self) -> dict[str, list[Incident]]:
        """The open incidents grouped by site, the sites with the most urgent incident first."""
        groups: dict[str, list[Incident]] = {}
        for inc in self.open_incidents():
            groups.setdefault(inc.site, []).append(inc)
        return groups

    def overdue(self, now: float, limit_s: float) -> list[Incident]:
        return [i for i in self.open_incidents() if i.overdue(now, limit_s)]


def ordered(incidents: Iterable[Incident]) -> list[Incident]:
    return sorted(incidents, key=Incident.sort_key)


@dataclass
class SiteLife:
    site: str
    online: bool | None = None
    last_seen: float | None = None
    heartbeat_s: float = DEFAULT_HEARTBEAT_S
    reason: str | None = None
    comm_lost_since: float | None = None


class Liveness:
    """Which sites are alive. `status`, `heartbeat` on each message; `check(now)` returns the
    sites that just lost (or regained) communication, once each."""

    def __init__(
        self, margin_s: float = COMM_LOST_MARGIN_S, max_s: float = COMM_LOST_MAX_S
    ) -> None:
        self.margin_s = margin_s
        self.max_s = max_s
        self.sites: dict[str, SiteLife] = {}

    def life(self, site: str) -> SiteLife:
        s = self.sites.get(site)
        if s is None:
            s = self.sites[site] = SiteLife(site)
        return s

    def deadline(self, site: str) -> float | None:
        s = self.sites.get(site)
        if s is None or s.last_seen is None:
            return None
        return s.last_seen + min(self.max_s, s.heartbeat_s + self.margin_s)

    def heartbeat(self, site: str, now: float, interval_s: float | None = None) -> None:
        s = self.life(site)
        if s.last_seen is not None and interval_s is None:
            gap = now - s.last_seen
            if 0 < gap <= self.max_s:
                s.heartbeat_s = gap
        elif interval_s is not None and interval_s > 0:
            s.heartbeat_s = interval_s
        s.last_seen = now
        if s.online is None:
            s.online = True

    def status(self, site: str, online: bool, now: float, reason: str | None = None) -> None:
        s = self.life(site)
        s.online = online
        s.reason = None if online else (reason or "connection lost (last will)")
        if online:
            s.last_seen = now

    def check(self, now: float) -> list[tuple[str, bool, str]]:
        """(site, lost, why) for each site whose communication was just lost or regained."""
        changes: list[tuple[str, bool, str]] = []
        for site, s in sorted(self.sites.items()):
            dl = self.deadline(site)
            silent = dl is not None and now > dl
            lost = s.online is False or silent
            if lost and s.comm_lost_since is None:
                s.comm_lost_since = now
                seen = now if s.last_seen is None else s.last_seen
                why = s.reason if s.online is False else f"no heartbeat since {now - seen:.0f} s"
                changes.append((site, True, why or "connection lost"))
            elif not lost and s.comm_lost_since is not None:
                s.comm_lost_since = None
                changes.append((site, False, "communication restored"))
        return changes

    def lost(self, site: str) -> bool:
        s = self.sites.get(site)
        return s is not None and s.comm_lost_since is not None
