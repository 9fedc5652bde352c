"""Drone tracks: every broadcast from one drone gathered into one record, for one detector.

A drone sends its Remote ID as a stream of small messages (who it is, where it is, where the
pilot is). A track collects them: messages from the same radio address (MAC) belong together,
and a new address that announces a serial number already known joins that drone's track (some
drones change their address during a flight). A detector's RF-only detections (energy in the
2.4 or 5.8 GHz band with no Remote ID) become tracks of their own, marked unidentified.

Pure logic: time is passed in, nothing is read from a clock, nothing is sent anywhere. The
table answers with `TrackChange`s (new / update / lost); `controller.drone.detector` turns them
into events. Rules:
- a track is reported (`new`) as soon as it has an id or a position;
- after that, an `update` when it first gains the id or the position it lacked, otherwise at
  most one per `update_interval` while its messages keep coming;
- `lost` once nothing has been heard from it for `track_timeout` (an RF detection also ends
  with the detector's `end`), or `merged` when it turns out to be a drone already tracked.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Literal

from controller.drone import geo, odid
from controller.drone.protocol import Rf, Rid

ChangeKind = Literal["new", "update", "lost"]

# which id to show when a drone sends several (a serial number beats a session id)
ID_PREFERENCE = (
    "serial_number",
    "caa_registration",
    "utm_assigned_uuid",
    "specific_session_id",
)


@dataclass
class Track:
    id: str
    detector: str
    transport: str  # ble4, ble5, wb, nan, or rf for an RF-only detection
    first_seen: datetime
    last_seen: datetime
    macs: list[str] = field(default_factory=list)
    messages: int = 0
    rssi: int | None = None
    ids: dict[str, str] = field(default_factory=dict)  # id type -> UAS id
    ua_type: str | None = None
    location: odid.Location | None = None
    system: odid.System | None = None
    operator_id: str | None = None
    self_id: str | None = None
    self_id_type: str | None = None
    auth_type: str | None = None
    auth_pages: set[int] = field(default_factory=set)
    # RF-only detections
    band: str | None = None
    rf_id: int | None = None
    peak_dbm: float | None = None
    floor_dbm: float | None = None
    dur_ms: int | None = None
    # what was last reported
    reported_at: datetime | None = None
    reported_id: bool = False
    reported_pos: bool = False

    @property
    def unidentified(self) -> bool:
        return self.band is not None

    @property
    def id_type(self) -> str | None:
        for kind in ID_PREFERENCE:
            if kind in self.ids:
                return kind
        return next(iter(self.ids), None)

    @property
    def uas_id(self) -> str | None:
        kind = self.id_type
        return self.ids[kind] if kind is not None else None

    @property
    def has_position(self) -> bool:
        return self.location is not None and self.location.has_position


@dataclass(frozen=True)
class TrackChange:
    kind: ChangeKind
    track: Track
    at: datetime
    reason: str | None = None  # for lost: timeout, ended (RF end), merged
    merged_into: str | None = None


def _preferred_id(messages: Sequence[odid.Single]) -> str | None:
    found: dict[str, str] = {}
    for m in messages:
        if isinstance(m, odid.BasicId) and m.uas_id:
            found.setdefault(m.id_type, m.uas_id)
    for kind in ID_PREFERENCE:
        if kind in found:
            return found[kind]
    return next(iter(found.values()), None)


class TrackTable:
    """The live tracks of one detector."""

    def __init__(
        self,
        detector_id: str,
        site_location: tuple[float, float] | None,
        track_timeout: timedelta,
        update_interval: timedelta,
    ) -> None:
        self.detector_id = detector_id
        self.site_location = site_location
        self.track_timeout = track_timeout
        self.update_interval = update_interval
        self.tracks: dict[str, Track] = {}
        self._by_mac: dict[str, Track] = {}
        self._by_rf: dict[tuple[str, int], Track] = {}
        self.rf_end_unknown = 0  # RF `end` lines for a detection never seen start

    # ------------------------------------------------------------------ lookups
    def _new_id(self, base: str) -> str:
        tid, n = base, 2
        while tid in self.tracks:
            tid, n = f"{base}-{n}", n + 1
        return tid

    def _find_uas(self, uas_id: str, besides: Track | None = None) -> Track | None:
        for t in self.tracks.values():
            if t is not besides and not t.unidentified and uas_id in t.ids.values():
                return t
        return None

    def _drop(self, track: Track) -> None:
        self.tracks.pop(track.id, None)
        for mac in track.macs:
            if self._by_mac.get(mac) is track:
                del self._by_mac[mac]
        if track.band is not None and track.rf_id is not None:
            key = (track.band, track.rf_id)
            if self._by_rf.get(key) is track:
                del self._by_rf[key]

    # ------------------------------------------------------------------ Remote ID
    def on_rid(self, rid: Rid, messages: Sequence[odid.Single], now: datetime) -> list[TrackChange]:
        """Messages decoded from one `rid` line."""
        track = self._by_mac.get(rid.mac)
        if track is None:
            uas = _preferred_id(messages)
            track = self._find_uas(uas) if uas else None
            if track is None:
                base = f"{self.detector_id}.{rid.mac.replace(':', '')}"
                track = Track(self._new_id(base), self.detector_id, rid.tr, now, now)
                self.tracks[track.id] = track
            self._by_mac[rid.mac] = track
            track.macs.append(rid.mac)
        track.last_seen = max(track.last_seen, now)
        track.transport = rid.tr
        track.rssi = rid.rssi
        for m in messages:
            self._apply(track, m)
        changes: list[TrackChange] = []
        uas = track.uas_id
        other = self._find_uas(uas, besides=track) if uas else None
        if other is not None:
            changes += self._merge(track, into=other, now=now)
            track = other
        changes += self._report(track, now)
        return changes

    @staticmethod
    def _apply(track: Track, m: odid.Single) -> None:
        track.messages += 1
        if isinstance(m, odid.BasicId):
            if m.uas_id:
                track.ids[m.id_type] = m.uas_id
            if m.ua_type != "none" or track.ua_type is None:
                track.ua_type = m.ua_type
        elif isinstance(m, odid.Location):
            track.location = m
        elif isinstance(m, odid.System):
            track.system = m
        elif isinstance(m, odid.OperatorId):
            if m.operator_id:
                track.operator_id = m.operator_id
        elif isinstance(m, odid.SelfId):
            track.self_id = m.description
            track.self_id_type = m.description_type
        elif isinstance(m, odid.Auth):
            if m.page == 0 or track.auth_type is None:
                track.auth_type = m.auth_type
            track.auth_pages.add(m.page)

    def _merge(self, track: Track, *, into: Track, now: datetime) -> list[TrackChange]:
        """`track` turned out to be `into` under another address: fold it in."""
        for mac in track.macs:
            self._by_mac[mac] = into
            if mac not in into.macs:
                into.macs.append(mac)
        into.ids.update(track.ids)
        into.messages += track.messages
        for name in ("location", "system", "operator_id", "self_id", "self_id_type", "ua_type"):
            value = getattr(track, name)
            if value is not None:
                setattr(into, name, value)
        into.rssi, into.transport = track.rssi, track.transport
        into.last_seen = max(into.last_seen, track.last_seen)
        self.tracks.pop(track.id, None)
        if track.reported_at is None:
            return []
        return [TrackChange("lost", track, now, "merged", merged_into=into.id)]

    def _report(self, track: Track, now: datetime) -> list[TrackChange]:
        has_id, has_pos = track.uas_id is not None, track.has_position
        if not (has_id or has_pos or track.unidentified):
            return []
        if track.reported_at is None:
            kind: ChangeKind = "new"
        else:
            elapsed = now - track.reported_at
            gained = (has_id and not track.reported_id) or (has_pos and not track.reported_pos)
            if not (gained or elapsed >= self.update_interval or elapsed < timedelta(0)):
                return []
            kind = "update"
        track.reported_at = now
        track.reported_id = track.reported_id or has_id
        track.reported_pos = track.reported_pos or has_pos
        return [TrackChange(kind, track, now)]

    # ------------------------------------------------------------------ RF only
    def on_rf(self, rf: Rf, now: datetime) -> list[TrackChange]:
        key = (rf.band, rf.id)
        track = self._by_rf.get(key)
        if track is None:
            if rf.ev == "end":
                self.rf_end_unknown += 1
                return []
            base = f"{self.detector_id}.rf-{rf.band}-{rf.id}"
            track = Track(self._new_id(base), self.detector_id, "rf", now, now)
            track.band, track.rf_id = rf.band, rf.id
            self.tracks[track.id] = track
            self._by_rf[key] = track
        track.last_seen = max(track.last_seen, now)
        track.messages += 1
        track.peak_dbm, track.floor_dbm, track.dur_ms = rf.peak_dbm, rf.floor_dbm, rf.dur_ms
        if rf.ev == "end":
            changes = [] if track.reported_at is not None else [TrackChange("new", track, now)]
            self._drop(track)
            return [*changes, TrackChange("lost", track, now, "ended")]
        return self._report(track, now)

    def end_rf(self, now: datetime, reason: str) -> list[TrackChange]:
        """End every RF-only track at once (the detector restarted: its RF ids start again)."""
        changes = []
        for track in sorted(self._by_rf.values(), key=lambda t: t.id):
            self._drop(track)
            changes.append(TrackChange("lost", track, now, reason))
        return changes

    # ------------------------------------------------------------------ time
    def clock_stepped(self, delta: timedelta) -> None:
        """The wall clock stepped: every instant moves with it, so timeouts keep their length."""
        for t in self.tracks.values():
            t.first_seen += delta
            t.last_seen += delta
            if t.reported_at is not None:
                t.reported_at += delta

    def expire(self, now: datetime) -> list[TrackChange]:
        """Tracks silent for track_timeout, oldest deadline first, each stamped with its
        deadline (not with `now`, which may be later)."""
        due = sorted(
            (t.last_seen + self.track_timeout, t.id, t)
            for t in self.tracks.values()
            if t.last_seen + self.track_timeout <= now
        )
        changes = []
        for at, _, track in due:
            self._drop(track)
            if track.reported_at is not None:  # never reported, so nothing to call lost
                changes.append(TrackChange("lost", track, at, "timeout"))
        return changes

    def next_due(self) -> datetime | None:
        if not self.tracks:
            return None
        return min(t.last_seen for t in self.tracks.values()) + self.track_timeout

    # ------------------------------------------------------------------ description
    def describe(self, track: Track) -> dict[str, Any]:
        """The event detail / retained state of a track (no time fields)."""
        d: dict[str, Any] = {
            "track": track.id,
            "detector": track.detector,
            "transport": track.transport,
            "unidentified": track.unidentified,
        }
        if track.unidentified:
            d.update(
                band=track.band,
                rf_id=track.rf_id,
                peak_dbm=track.peak_dbm,
                floor_dbm=track.floor_dbm,
                dur_ms=track.dur_ms,
            )
            return d
        loc, sysm = track.location, track.system
        lat = loc.lat if loc is not None else None
        lon = loc.lon if loc is not None else None
        distance = bearing = None
        if lat is not None and lon is not None and self.site_location is not None:
            slat, slon = self.site_location
            distance = round(geo.haversine_m(slat, slon, lat, lon), 1)
            bearing = round(geo.initial_bearing_deg(slat, slon, lat, lon), 1)
        d.update(
            uas_id=track.uas_id,
            id_type=track.id_type,
            ua_type=track.ua_type,
            ids=dict(track.ids),
            lat=lat,
            lon=lon,
            alt_geo=loc.alt_geo if loc else None,
            alt_baro=loc.alt_baro if loc else None,
            height=loc.height if loc else None,
            height_type=loc.height_type if loc else None,
            speed_h=loc.speed_h if loc else None,
            speed_v=loc.speed_v if loc else None,
            direction=loc.direction if loc else None,
            status=loc.status if loc else None,
            h_acc_m=loc.h_acc_m if loc else None,
            operator_id=track.operator_id,
            operator_lat=sysm.operator_lat if sysm else None,
            operator_lon=sysm.operator_lon if sysm else None,
            operator_alt_geo=sysm.operator_alt_geo if sysm else None,
            operator_location_type=sysm.operator_location_type if sysm else None,
            self_id=track.self_id,
            auth=track.auth_type,
            rssi=track.rssi,
            mac=track.macs[-1] if track.macs else None,
            distance_m=distance,
            bearing_deg=bearing,
        )
        return d
