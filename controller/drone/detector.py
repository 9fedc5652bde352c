"""One drone detector as the controller sees it: its lines in, alarm events out.

A detector node on the roof talks to the controller over a serial cable (see protocol.py).
`DetectorMonitor` reads what it says and decides what the security office must hear:

- `drone` (E150): a drone was heard, with its serial number, position, height, speed, the
  pilot's id and position, and how far and in which direction it is from the office; further
  `drone` events with `detail.update = true` follow at most every `update_interval`.
  An RF-only detection (radio energy, no Remote ID) is a `drone` event with
  `detail.unidentified = true`, the band and the signal level.
- `drone_lost` (R150): the drone has not been heard for `track_timeout` (or its RF ended).
- `trouble` (E333): the detector's serial port closed, or no good line for
  `heartbeat_timeout` (it sends a heartbeat every 5 s); `trouble_restore` (R333) at the next
  good line.
- `trouble` (E144): the detector reported a fault of its own (an `err` line);
  `trouble_restore` (R144) once it has kept talking without one for `fault_clear`
  (the firmware repeats a standing fault with every heartbeat).

Bad lines are counted by reason (`status()`), never raise and never change what is reported.
Everything is pure: the time of each call is passed in; there is no I/O here. The daemon feeds
it from the serial reader (hardware/serial_line.py) and a timer at `next_due()`.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from controller import texts
from controller.config import DroneDetector, SiteInfo, format_duration
from controller.contact_id import cid
from controller.drone import geo, odid
from controller.drone.protocol import (
    REASONS,
    Err,
    Heartbeat,
    Hello,
    Message,
    ProtocolError,
    Rf,
    Rid,
    SeqCounter,
    parse_line,
)
from controller.drone.tracker import Track, TrackChange, TrackTable
from controller.events import EventDraft, format_ts

CID_DRONE = 150
CID_LINK = 333
CID_FAULT = 144

texts.register(
    {
        "drone.new_pos": {
            "vi": "Phát hiện flycam {uas} cách {distance}, hướng {direction}{extra} ({detector})",
            "en": "Drone {uas} detected {distance} away to the {direction}{extra} ({detector})",
        },
        "drone.new_at": {
            "vi": "Phát hiện flycam {uas} tại {lat}, {lon}{extra} ({detector})",
            "en": "Drone {uas} detected at {lat}, {lon}{extra} ({detector})",
        },
        "drone.update_at": {
            "vi": "Flycam {uas} tại {lat}, {lon}{extra} ({detector})",
            "en": "Drone {uas} now at {lat}, {lon}{extra} ({detector})",
        },
        "drone.new_nopos": {
            "vi": "Phát hiện flycam {uas}, chưa rõ vị trí{extra} ({detector})",
            "en": "Drone {uas} detected, position not yet known{extra} ({detector})",
        },
        "drone.update_pos": {
            "vi": "Flycam {uas} cách {distance}, hướng {direction}{extra} ({detector})",
            "en": "Drone {uas} now {distance} away to the {direction}{extra} ({detector})",
        },
        "drone.update_nopos": {
            "vi": "Flycam {uas} vẫn trong vùng, chưa rõ vị trí{extra} ({detector})",
            "en": "Drone {uas} still around, position not known{extra} ({detector})",
        },
        "drone.rf_new": {
            "vi": "Phát hiện tín hiệu flycam không nhận dạng, băng {band}, {peak} dBm ({detector})",
            "en": "Unidentified drone signal in the {band} band, {peak} dBm ({detector})",
        },
        "drone.rf_update": {
            "vi": "Tín hiệu flycam không nhận dạng vẫn còn, băng {band}, {peak} dBm ({detector})",
            "en": "Unidentified drone signal continues in the {band} band, {peak} dBm ({detector})",
        },
        "drone.lost": {
            "vi": "Mất dấu flycam {uas} ({detector})",
            "en": "Drone {uas} lost ({detector})",
        },
        "drone.merged": {
            "vi": "Flycam {uas} là flycam đã theo dõi {other} ({detector})",
            "en": "Drone {uas} is the drone already tracked as {other} ({detector})",
        },
        "drone.rf_lost": {
            "vi": "Hết tín hiệu flycam băng {band} sau {duration} ({detector})",
            "en": "Drone signal in the {band} band ended after {duration} ({detector})",
        },
        "drone.no_id": {"vi": "chưa rõ số hiệu", "en": "with no id yet"},
        "drone.height": {"vi": ", cao {height} m", "en": ", height {height} m"},
        "drone.operator": {
            "vi": ", người điều khiển {operator}",
            "en": ", operator {operator}",
        },
        "drone.port_closed": {
            "vi": "Đầu dò flycam {detector}: mất kết nối cổng {port}",
            "en": "Drone detector {detector}: port {port} lost",
        },
        "drone.silent": {
            "vi": "Đầu dò flycam {detector} không phản hồi quá {timeout}",
            "en": "Drone detector {detector} silent for more than {timeout}",
        },
        "drone.link_restore": {
            "vi": "Đầu dò flycam {detector} hoạt động trở lại",
            "en": "Drone detector {detector} is talking again",
        },
        "drone.fault": {
            "vi": "Đầu dò flycam {detector} báo lỗi: {msg}",
            "en": "Drone detector {detector} reports a fault: {msg}",
        },
        "drone.fault_restore": {
            "vi": "Đầu dò flycam {detector} hết lỗi",
            "en": "Drone detector {detector}: fault cleared",
        },
        "drone.compass.0": {"vi": "Bắc", "en": "north"},
        "drone.compass.1": {"vi": "Đông Bắc", "en": "north-east"},
        "drone.compass.2": {"vi": "Đông", "en": "east"},
        "drone.compass.3": {"vi": "Đông Nam", "en": "south-east"},
        "drone.compass.4": {"vi": "Nam", "en": "south"},
        "drone.compass.5": {"vi": "Tây Nam", "en": "south-west"},
        "drone.compass.6": {"vi": "Tây", "en": "west"},
        "drone.compass.7": {"vi": "Tây Bắc", "en": "north-west"},
    }
)

BAND_NAMES = {"2g4": "2,4 GHz", "5g8": "5,8 GHz"}
MAX_TEXT = 120


def _clean(text: str, limit: int = MAX_TEXT) -> str:
    """Detector- or drone-supplied text, safe for a log line: printable, one line, short."""
    out = "".join(c if c.isprintable() else "?" for c in text).strip()
    return out if len(out) <= limit else out[: limit - 1] + "…"


def _number(value: float, lang: str, decimals: int = 0) -> str:
    text = f"{value:.{decimals}f}"
    return text.replace(".", ",") if lang == "vi" else text


def format_distance(metres: float, lang: str) -> str:
    """ "200 m", "1,2 km" (vi) / "1.2 km" (en)."""
    if metres < 1000:
        return f"{round(metres)} m"
    return f"{_number(metres / 1000, lang, 1)} km"


def _aware(now: datetime) -> datetime:
    if now.tzinfo is None:
        raise ValueError("time must be timezone-aware")
    return now


class DetectorMonitor:
    """Everything one detector says, turned into events and a status. Use from one thread.

    - `feed_line(raw, now, too_long=False)`: one line from the serial port (with or without
      its "\\n"); `too_long=True` when the reader had to cut it (it is counted and dropped).
    - `port_state(is_open, now, error=None)`: the serial reader opened or lost the port.
    - `tick(now)`: let time pass; call it at `next_due()` (each call above also does it first).
    Each returns the events that happened, oldest first, each stamped with the instant it
    happened (a deadline that passed before `now` keeps its own time). None of them raises for
    anything the detector sends."""

    def __init__(
        self,
        detector_cfg: DroneDetector,
        site: SiteInfo,
        *,
        fault_clear: timedelta | None = None,
    ) -> None:
        self.cfg = detector_cfg
        self.site = site
        self.lang = site.language
        self.name = detector_cfg.name or detector_cfg.id
        self.fault_clear = (
            fault_clear if fault_clear is not None else detector_cfg.heartbeat_timeout
        )
        where = (site.location.lat, site.location.lon) if site.location is not None else None
        self.tracks = TrackTable(
            detector_cfg.id, where, detector_cfg.track_timeout, detector_cfg.update_interval
        )
        self.seq = SeqCounter()
        self.bad: dict[str, int] = dict.fromkeys(REASONS, 0)
        self.lines_ok = 0
        self.by_type: dict[str, int] = {"hello": 0, "hb": 0, "rid": 0, "rf": 0, "err": 0}
        self.odid_errors = 0  # rid lines whose payload is not Open Drone ID
        self.internal_errors = 0  # must stay 0: a bug, caught so the daemon keeps running
        self.started_at: datetime | None = None
        self.last_line_at: datetime | None = None
        self.last_bad_at: datetime | None = None
        self.port_open: bool | None = None
        self.port_error: str | None = None
        self.link_trouble: str | None = None  # None, "port_closed" or "silent"
        self.link_trouble_at: datetime | None = None
        self.fault: str | None = None
        self.fault_at: datetime | None = None
        self.last_err_at: datetime | None = None
        self.hello: Hello | None = None
        self.hello_at: datetime | None = None
        self.restarts = 0
        self.heartbeat: Heartbeat | None = None
        self.heartbeat_at: datetime | None = None

    # ------------------------------------------------------------------ inputs
    def feed_line(self, raw: bytes, now: datetime, too_long: bool = False) -> list[EventDraft]:
        now = _aware(now)
        events = self.tick(now)
        if too_long:
            self.bad["too_long"] += 1
            self.last_bad_at = now
            return events
        try:
            msg = parse_line(raw)
        except ProtocolError as e:
            self.bad[e.reason] = self.bad.get(e.reason, 0) + 1
            self.last_bad_at = now
            return events
        try:
            events += self._handle(msg, now)
        except Exception:  # a bug here must not stop the alarm daemon; status() shows it
            self.internal_errors += 1
        return events

    def port_state(
        self, is_open: bool, now: datetime, error: str | None = None
    ) -> list[EventDraft]:
        now = _aware(now)
        events = self.tick(now)
        self.port_open = bool(is_open)
        self.port_error = None if is_open else _clean(error or "closed")
        if not is_open and self.link_trouble == "silent":
            self.link_trouble = "port_closed"  # already reported as silent: no second event
        elif not is_open and self.link_trouble is None:
            self.link_trouble, self.link_trouble_at = "port_closed", now
            events.append(
                self._event(
                    "trouble",
                    now,
                    "drone.port_closed",
                    CID_LINK,
                    detail={"trouble": "link", "reason": "port_closed", "error": self.port_error},
                    port=self.cfg.port,
                )
            )
        return events

    def tick(self, now: datetime) -> list[EventDraft]:
        now = _aware(now)
        if self.started_at is None:
            self.started_at = now
        events: list[EventDraft] = []
        due = self._silence_due()
        if due is not None and due <= now:
            self.link_trouble, self.link_trouble_at = "silent", due
            events.append(
                self._event(
                    "trouble",
                    due,
                    "drone.silent",
                    CID_LINK,
                    detail={"trouble": "link", "reason": "silent"},
                    timeout=format_duration(self.cfg.heartbeat_timeout),
                )
            )
        for change in self.tracks.expire(now):
            events.append(self._track_event(change))
        events += self._maybe_clear_fault(now)
        events.sort(key=lambda e: e.ts)
        return events

    def clock_stepped(self, delta: timedelta) -> None:
        """The wall clock stepped by `delta`: the heartbeat timeout, fault clearing and track
        timeouts keep their length in elapsed time (every instant kept here moves with it)."""
        for name in (
            "started_at", "last_line_at", "last_bad_at", "link_trouble_at", "fault_at",
            "last_err_at", "hello_at", "heartbeat_at",
        ):
            value = getattr(self, name)
            if value is not None:
                setattr(self, name, value + delta)
        self.tracks.clock_stepped(delta)

    def next_due(self) -> datetime | None:
        """When `tick` must next be called (None: only when a line or port change comes)."""
        dues = [self._silence_due(), self.tracks.next_due(), self._fault_clear_due()]
        return min((d for d in dues if d is not None), default=None)

    # ------------------------------------------------------------------ state
    def status(self) -> dict[str, Any]:
        tz = self.site.tz
        hb = self.heartbeat
        return {
            "detector": self.cfg.id,
            "zone": self.cfg.zone,
            "port": self.cfg.port,
            "port_open": self.port_open,
            "port_error": self.port_error,
            "link": self.link_trouble or ("ok" if self.last_line_at is not None else "waiting"),
            "fault": self.fault,
            "lines_ok": self.lines_ok,
            "lines_bad": sum(self.bad.values()),
            "bad": {k: v for k, v in self.bad.items() if v},
            "by_type": dict(self.by_type),
            "odid_errors": self.odid_errors,
            "internal_errors": self.internal_errors,
            "seq_gaps": self.seq.gaps,
            "lines_lost": self.seq.lost,
            "seq_resets": self.seq.resets,
            "last_line": _ts(self.last_line_at, tz),
            "last_bad_line": _ts(self.last_bad_at, tz),
            "last_heartbeat": _ts(self.heartbeat_at, tz),
            "detector_uptime_s": hb.up if hb else None,
            "adverts_seen": hb.adv if hb else None,
            "adverts_dropped": hb.drop if hb else None,
            "firmware": self.hello.fw if self.hello else None,
            "caps": list(self.hello.caps) if self.hello else [],
            "restarts": self.restarts,
            "active_tracks": len(self.tracks.tracks),
            "tracks": sorted(self.tracks.tracks),
        }

    def troubles(self) -> list[dict[str, Any]]:
        """Standing troubles, in the engine's `troubles()` shape."""
        out: list[dict[str, Any]] = []
        if self.link_trouble == "port_closed":
            what = f"detector port closed: {self.port_error or 'closed'}"
            out.append({"source": self.cfg.id, "zone": self.cfg.zone, "cid": "E333", "what": what})
        elif self.link_trouble == "silent":
            what = "detector silent"
            out.append({"source": self.cfg.id, "zone": self.cfg.zone, "cid": "E333", "what": what})
        if self.fault is not None:
            what = f"detector fault: {self.fault}"
            out.append({"source": self.cfg.id, "zone": self.cfg.zone, "cid": "E144", "what": what})
        return out

    def retained_tracks(self) -> dict[str, dict[str, Any]]:
        """track id -> state for the retained MQTT topic `P/drone/<track id>`. A track that
        disappears from here (its `drone_lost` was emitted) should have its topic cleared."""
        tz = self.site.tz
        out = {}
        for tid, track in sorted(self.tracks.tracks.items()):
            state = self.tracks.describe(track)
            state.update(
                active=True,
                first_seen=_ts(track.first_seen, tz),
                last_seen=_ts(track.last_seen, tz),
                messages=track.messages,
            )
            out[tid] = state
        return out

    # ------------------------------------------------------------------ internals
    def _silence_due(self) -> datetime | None:
        if self.link_trouble is not None:
            return None
        ref = self.last_line_at or self.started_at
        return ref + self.cfg.heartbeat_timeout if ref is not None else None

    def _fault_clear_due(self) -> datetime | None:
        if self.fault is None or self.last_err_at is None or self.last_line_at is None:
            return None
        if self.last_line_at <= self.last_err_at:
            return None  # nothing heard since the fault: wait for a line, not for a timer
        return self.last_err_at + self.fault_clear

    def _maybe_clear_fault(self, now: datetime) -> list[EventDraft]:
        due = self._fault_clear_due()
        if due is None or due > now:
            return []
        fault = self.fault
        self.fault = self.fault_at = None
        return [
            self._event(
                "trouble_restore",
                due,
                "drone.fault_restore",
                CID_FAULT,
                restore=True,
                detail={"trouble": "fault", "msg": fault},
            )
        ]

    def _handle(self, msg: Message, now: datetime) -> list[EventDraft]:
        events: list[EventDraft] = []
        self.lines_ok += 1
        self.by_type[msg.T] += 1
        self.last_line_at = now
        self.seq.observe(msg)
        if self.link_trouble is not None:
            reason = self.link_trouble
            self.link_trouble = self.link_trouble_at = None
            events.append(
                self._event(
                    "trouble_restore",
                    now,
                    "drone.link_restore",
                    CID_LINK,
                    restore=True,
                    detail={"trouble": "link", "reason": reason},
                )
            )
        if self.port_open is not True:
            self.port_open, self.port_error = True, None  # a line came through it
        if isinstance(msg, Hello):
            if self.hello is not None:
                self.restarts += 1
            self.hello, self.hello_at = msg, now
            # RF detections in progress died with the restart (and their ids start again)
            for change in self.tracks.end_rf(now, "detector_restart"):
                events.append(self._track_event(change))
        elif isinstance(msg, Heartbeat):
            self.heartbeat, self.heartbeat_at = msg, now
        elif isinstance(msg, Rid):
            try:
                decoded = odid.decode(msg.payload)
            except odid.OdidError:
                self.odid_errors += 1
            else:
                for change in self.tracks.on_rid(msg, odid.messages_of(decoded), now):
                    events.append(self._track_event(change))
        elif isinstance(msg, Rf):
            for change in self.tracks.on_rf(msg, now):
                events.append(self._track_event(change))
        elif isinstance(msg, Err):
            events += self._on_err(msg, now)
        if not isinstance(msg, Err):
            events += self._maybe_clear_fault(now)
        return events

    def _on_err(self, msg: Err, now: datetime) -> list[EventDraft]:
        text = _clean(msg.msg) or "?"
        self.last_err_at = now
        if self.fault is not None:
            self.fault = text  # the latest words for a standing fault, no new event
            return []
        self.fault, self.fault_at = text, now
        return [
            self._event(
                "trouble",
                now,
                "drone.fault",
                CID_FAULT,
                detail={"trouble": "fault", "msg": text},
                msg=text,
            )
        ]

    # ------------------------------------------------------------------ events
    def _event(
        self,
        kind: str,
        at: datetime,
        key: str,
        cid_code: int,
        *,
        restore: bool = False,
        detail: dict[str, Any] | None = None,
        **fields: Any,
    ) -> EventDraft:
        detail = {"detector": self.cfg.id, **(detail or {})}
        return EventDraft(
            kind=kind,
            ts=at,
            text=texts.render(self.lang, key, detector=self.name, **fields),
            cid=cid(cid_code, restore),
            zone=self.cfg.zone,
            sensor=self.cfg.id,
            detail=detail,
        )

    def _track_event(self, change: TrackChange) -> EventDraft:
        track = change.track
        detail = self.tracks.describe(track)
        lang = self.lang
        band = BAND_NAMES.get(track.band or "", track.band or "")
        fields: dict[str, Any] = {"uas": self._uas(track), "band": band}
        if change.kind == "lost":
            detail.update(
                reason=change.reason,
                first_seen=_ts(track.first_seen, self.site.tz),
                last_seen=_ts(track.last_seen, self.site.tz),
                messages=track.messages,
            )
            if change.merged_into is not None:
                detail["merged_into"] = change.merged_into
                key = "drone.merged"
                fields["other"] = change.merged_into
            elif track.unidentified:
                seconds = (track.dur_ms or 0) / 1000
                duration = format_duration(timedelta(seconds=round(seconds)))
                key = "drone.rf_lost"
                fields["duration"] = duration
            else:
                key = "drone.lost"
            return self._event(
                "drone_lost", change.at, key, CID_DRONE, restore=True, detail=detail, **fields
            )
        update = change.kind == "update"
        detail["update"] = update
        if track.unidentified:
            key = "drone.rf_update" if update else "drone.rf_new"
            fields["peak"] = _number(track.peak_dbm or 0.0, lang)
            return self._event("drone", change.at, key, CID_DRONE, detail=detail, **fields)
        extra = ""
        if detail.get("height") is not None:
            extra += texts.render(lang, "drone.height", height=round(detail["height"]))
        if track.operator_id:
            extra += texts.render(lang, "drone.operator", operator=_clean(track.operator_id))
        fields["extra"] = extra
        if detail["distance_m"] is not None:
            key = "drone.update_pos" if update else "drone.new_pos"
            point = geo.compass_point(detail["bearing_deg"])
            fields.update(
                distance=format_distance(detail["distance_m"], lang),
                direction=texts.render(lang, f"drone.compass.{point}"),
            )
        elif detail["lat"] is not None:  # a position, but no site location to measure from
            key = "drone.update_at" if update else "drone.new_at"
            fields.update(lat=f"{detail['lat']:.5f}", lon=f"{detail['lon']:.5f}")
        else:
            key = "drone.update_nopos" if update else "drone.new_nopos"
        return self._event("drone", change.at, key, CID_DRONE, detail=detail, **fields)

    def _uas(self, track: Track) -> str:
        uas = track.uas_id
        return _clean(uas, 40) if uas else texts.render(self.lang, "drone.no_id")


def _ts(at: datetime | None, tz: Any) -> str | None:
    return format_ts(at, tz) if at is not None else None
