"""The security office console's picture of every site, built only from MQTT messages.

`Console.ingest(topic, payload, now)` takes one message published under `<prefix>/<site>/...`
and updates that site's board: online or offline (retained status and the broker's last will),
version, heartbeat and whether the site has gone quiet ("stale"), zone and sensor state, active
alarms, troubles, drone detectors and sightings, and a bounded feed of events. Events are
de-duplicated by their `id` (a re-sent event after a reconnect, or the same event seen through
two paths, is shown once) and shown in `seq` order within each site.

Pure: no network, no clock. Time is the `now` passed in (seconds on any monotonic scale). A
malformed payload is counted and ignored; nothing a broker sends can make it raise.
"""

from __future__ import annotations

import json
import statistics
from collections import OrderedDict, deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from controller.errors import OfficeGuardError

DEFAULT_HEARTBEAT_S = 60.0
STALE_FACTOR = 3.0
SEEN_IDS = 100_000
FEED_SIZE = 500
MAX_PAYLOAD = 64 * 1024
# zone states in which the zone is in alarm (Home Assistant's word for it)
ALARM_STATES = frozenset({"triggered"})


@dataclass
class SiteBoard:
    """Everything the console knows about one site."""

    site: str
    online: bool | None = None  # None: no status seen (or it was cleared)
    version: str | None = None
    status_ts: str | None = None
    offline_reason: str | None = None
    last_seen: float | None = None  # `now` of the last status or heartbeat
    heartbeat: dict[str, Any] | None = None
    _hb_times: deque[float] = field(default_factory=lambda: deque(maxlen=6))
    zones: dict[str, dict[str, Any]] = field(default_factory=dict)
    sensors: dict[str, dict[str, Any]] = field(default_factory=dict)
    troubles: list[dict[str, Any]] = field(default_factory=list)
    detectors: dict[str, dict[str, Any]] = field(default_factory=dict)
    drones: dict[str, dict[str, Any]] = field(default_factory=dict)
    patrols: dict[str, dict[str, Any]] = field(default_factory=dict)  # P/patrol/<plan>
    power: dict[str, Any] | None = None  # P/power/state: mains, battery, siren lines
    last_event: dict[str, Any] | None = None
    events: int = 0
    max_seq: int = 0
    # events this console has not seen between the first and the latest seq (missed, or still
    # on their way); with a shared subscription the other consoles have them
    seq_gaps: int = 0
    first_seq: int = 0

    @property
    def heartbeat_interval(self) -> float:
        """Seconds between heartbeats as observed (median of the last few), default 60 s."""
        t = list(self._hb_times)
        gaps = [b - a for a, b in zip(t, t[1:], strict=False) if b > a]
        if not gaps:
            return DEFAULT_HEARTBEAT_S
        return float(statistics.median(gaps))

    def stale(self, now: float) -> bool:
        """Online by its last status, but neither a heartbeat nor a status for 3 intervals."""
        if not self.online or self.last_seen is None:
            return False
        return now - self.last_seen > STALE_FACTOR * self.heartbeat_interval

    def alarms(self) -> list[str]:
        return sorted(
            z
            for z, s in self.zones.items()
            if s.get("alarm") is True or s.get("state") in ALARM_STATES
        )

    def snapshot(self, now: float) -> dict[str, Any]:
        return {
            "online": self.online,
            "stale": self.stale(now),
            "version": self.version,
            "status_ts": self.status_ts,
            "offline_reason": self.offline_reason,
            "heartbeat": self.heartbeat,
            "heartbeat_interval_s": self.heartbeat_interval,
            "zones": {z: dict(s) for z, s in sorted(self.zones.items())},
            "alarms": self.alarms(),
            "sensors": {s: dict(v) for s, v in sorted(self.sensors.items())},
            "troubles": [dict(t) for t in self.troubles],
            "detectors": {d: dict(v) for d, v in sorted(self.detectors.items())},
            "drones": {t: dict(v) for t, v in sorted(self.drones.items())},
            "patrols": {p: dict(v) for p, v in sorted(self.patrols.items())},
            "power": dict(self.power) if self.power is not None else None,
            "events": self.events,
            "last_seq": self.max_seq or None,
            "seq_gaps": self.seq_gaps,
            "last_event": self.last_event,
        }


class _Malformed(OfficeGuardError, ValueError):
    pass


def _obj(payload: bytes) -> dict[str, Any]:
    if len(payload) > MAX_PAYLOAD:
        raise _Malformed("too large")
    try:
        v = json.loads(payload.decode("utf-8"))
    except (ValueError, UnicodeDecodeError) as e:
        raise _Malformed("not JSON") from e
    if not isinstance(v, dict):
        raise _Malformed("not a JSON object")
    return v


def _bool(v: Any, what: str) -> bool:
    if not isinstance(v, bool):
        raise _Malformed(f"{what} is not a boolean")
    return v


def _str_or_none(v: Any) -> str | None:
    return v if isinstance(v, str) else None


class Console:
    """Every site under one topic prefix. Call `ingest` for each message, in arrival order."""

    def __init__(
        self, prefix: str = "officeguard", *, feed_size: int = FEED_SIZE, seen_ids: int = SEEN_IDS
    ) -> None:
        self.prefix = prefix.rstrip("/")
        self._plen = len(self.prefix) + 1
        self.sites: dict[str, SiteBoard] = {}
        self.feed: deque[dict[str, Any]] = deque(maxlen=feed_size)
        self._feed_last_seq: dict[str, int] = {}
        self._seen: OrderedDict[str, None] = OrderedDict()
        self._seen_cap = seen_ids
        self.messages = 0
        self.events = 0  # distinct events
        self.duplicates = 0
        self.malformed = 0
        self.ignored = 0
        # told of every new (not duplicate) event, e.g. to print a log line per event
        self.event_listeners: list[Callable[[dict[str, Any]], None]] = []

    # ------------------------------------------------------------------ ingest

    @property
    def seq_gaps(self) -> int:
        return sum(b.seq_gaps for b in self.sites.values())

    def board(self, site: str) -> SiteBoard:
        b = self.sites.get(site)
        if b is None:
            b = self.sites[site] = SiteBoard(site)
        return b

    def ingest(self, topic: str, payload: bytes, now: float) -> None:
        """One message. Never raises for anything in the topic or payload."""
        self.messages += 1
        if not topic.startswith(self.prefix) or topic[self._plen - 1 : self._plen] != "/":
            self.ignored += 1
            return
        parts = topic[self._plen :].split("/")
        if len(parts) < 2 or not parts[0]:
            self.ignored += 1
            return
        site, rest = parts[0], parts[1:]
        try:
            if rest == ["event"]:
                self._event(site, payload)
            elif rest == ["status"]:
                self._status(site, payload, now)
            elif rest == ["heartbeat"]:
                self._heartbeat(site, payload, now)
            elif len(rest) == 3 and rest[2] == "state" and rest[0] in ("zone", "sensor", "detector"):
                self._state(site, rest[0], rest[1], payload)
            elif rest == ["trouble", "state"]:
                self._troubles(site, payload)
            elif rest == ["power", "state"]:
                self.board(site).power = _obj(payload) if payload else None
            elif len(rest) == 2 and rest[0] == "drone":
                self._drone(site, rest[1], payload)
            elif len(rest) == 2 and rest[0] == "patrol":
                self._patrol(site, rest[1], payload)
            else:
                self.ignored += 1  # commands, command results, topics of a newer version
        except _Malformed:
            self.malformed += 1
        except Exception:  # noqa: BLE001 - a console must survive any payload
            self.malformed += 1

    def _status(self, site: str, payload: bytes, now: float) -> None:
        b = self.board(site)
        if not payload:  # retained status cleared: the site was taken out of service
            b.online, b.version, b.status_ts, b.offline_reason = None, None, None, None
            return
        d = _obj(payload)
        online = _bool(d.get("online"), "online")
        b.online = online
        if online:
            b.version = _str_or_none(d.get("version")) or b.version
            b.offline_reason = None
            b.last_seen = now
        else:
            b.offline_reason = _str_or_none(d.get("reason")) or "connection lost (last will)"
        b.status_ts = _str_or_none(d.get("ts"))

    def _heartbeat(self, site: str, payload: bytes, now: float) -> None:
        d = _obj(payload)
        b = self.board(site)
        b.heartbeat = {
            k: d[k] for k in ("ts", "seq", "outbox", "uptime_s", "troubles") if k in d
        }
        b._hb_times.append(now)
        b.last_seen = now
        if b.online is None:  # a heartbeat is proof of life even before the status arrives
            b.online = True

    def _state(self, site: str, kind: str, name: str, payload: bytes) -> None:
        b = self.board(site)
        table = {"zone": b.zones, "sensor": b.sensors, "detector": b.detectors}[kind]
        if not payload:
            table.pop(name, None)
            return
        d = _obj(payload)
        if kind == "zone":
            if not isinstance(d.get("state"), str):
                raise _Malformed("zone state missing")
            if "alarm" in d:
                _bool(d["alarm"], "alarm")
        elif kind == "sensor":
            _bool(d.get("active"), "active")
        else:
            _bool(d.get("online"), "online")
        table[name] = d

    def _patrol(self, site: str, plan: str, payload: bytes) -> None:
        b = self.board(site)
        if not payload:
            b.patrols.pop(plan, None)
            return
        d = _obj(payload)
        if not isinstance(d.get("state"), str):
            raise _Malformed("patrol state missing")
        b.patrols[plan] = d

    def _troubles(self, site: str, payload: bytes) -> None:
        b = self.board(site)
        if not payload:
            b.troubles = []
            return
        lst = _obj(payload).get("troubles")
        if not isinstance(lst, list) or not all(isinstance(t, dict) for t in lst):
            raise _Malformed("troubles is not a list of objects")
        b.troubles = lst

    def _drone(self, site: str, track: str, payload: bytes) -> None:
        b = self.board(site)
        if not payload:  # the track was lost: its retained message is cleared
            b.drones.pop(track, None)
            return
        b.drones[track] = _obj(payload)

    def _event(self, site: str, payload: bytes) -> None:
        e = _obj(payload)
        eid, seq = e.get("id"), e.get("seq")
        if not isinstance(eid, str) or not eid or not isinstance(seq, int) or isinstance(seq, bool):
            raise _Malformed("event without id or seq")
        if not isinstance(e.get("kind"), str):
            raise _Malformed("event without kind")
        seen = self._seen
        if eid in seen:
            seen.move_to_end(eid)
            self.duplicates += 1
            return
        seen[eid] = None
        if len(seen) > self._seen_cap:
            seen.popitem(last=False)
        self.events += 1
        b = self.board(site)
        b.events += 1
        if b.max_seq == 0:
            b.max_seq = b.first_seq = seq  # the first event this console sees: no gap before it
        if seq > b.max_seq + 1:
            b.seq_gaps += seq - b.max_seq - 1  # events missed (or not arrived yet)
        elif b.first_seq < seq < b.max_seq and b.seq_gaps > 0:
            b.seq_gaps -= 1  # a late one filled a gap
        if seq >= b.max_seq:
            b.max_seq = seq
            b.last_event = e
        e["site"] = site  # the topic says which site it came from
        self._feed_add(site, seq, e)
        for listener in self.event_listeners:
            listener(e)

    def _feed_add(self, site: str, seq: int, entry: dict[str, Any]) -> None:
        feed = self.feed
        last = self._feed_last_seq.get(site, 0)
        if seq >= last:
            self._feed_last_seq[site] = seq
            feed.append(entry)
            return
        # arrived late (redelivery, or through another path): place it before the first later
        # event of the same site, so that each site reads in seq order
        for i, other in enumerate(feed):
            if other["site"] == site and other["seq"] > seq:
                if len(feed) == feed.maxlen:
                    if i == 0:
                        return  # older than everything kept: it scrolled out already
                    feed.popleft()
                    i -= 1
                feed.insert(i, entry)
                return
        feed.append(entry)

    # ------------------------------------------------------------------ views

    def snapshot(self, now: float) -> dict[str, Any]:
        return {
            "sites": {s: b.snapshot(now) for s, b in sorted(self.sites.items())},
            "counters": {
                "messages": self.messages,
                "events": self.events,
                "duplicates": self.duplicates,
                "malformed": self.malformed,
                "ignored": self.ignored,
                "seq_gaps": self.seq_gaps,
            },
        }

    def site_feed(self, site: str) -> list[dict[str, Any]]:
        return [e for e in self.feed if e["site"] == site]
