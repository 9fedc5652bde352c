"""The alarm engine: zones, sensor responses, delays, alarms, sirens and troubles.

Pure logic. It never reads a clock, a pin or a socket: every call gets `now` (aware UTC) and
returns effects (`SetOutput`, `Emit`) for the daemon to carry out, sirens first. Timers are the
engine's own deadlines (exit delay, entry delay, siren time, sustained vibration): the daemon asks
`next_due()` and calls `advance(now)` then; `handle()` first fires everything due before `now`,
in time order, so the result does not depend on when the daemon happens to wake.

Rules (an installer's summary; the README has the long form):
- Responses: `entry` starts the entry delay (and is the exit route during the exit delay),
  `instant` alarms at once, `follower` alarms at once unless an entry delay is running, `24h` is
  armed at all times (fire E110, panic E120 silent, vibration on a safe E133, tamper E137).
- Modes: away arms everything; home leaves out `interior` sensors; night leaves out interior
  sensors except those marked `night: true`.
- Exit delay: re-opening an exit door after it was closed restarts the delay once. An entry/exit
  sensor still open when the delay ends starts the entry delay (exit error, E374 with the alarm).
- Arming with open sensors is refused (`arm_failed`) unless forced: then they are bypassed for
  this arming period (E570 each) and reported as a trouble (E380) if still active when armed.
- An alarm sounds the zone's sirens for `siren_time`, then they stop; the zone stays armed and
  remembers the alarm until disarmed. A disarm within `abort_window` of the alarm sends a cancel
  (E406). An alarm within `recent_closing` of arming adds E459. A sensor that has alarmed
  `swinger_limit` times in one armed period is shut down (E377) until the next disarm/arm
  (fire and panic never are).
- Every change of a zone's state gives exactly one event carrying `detail.state` (the new Home
  Assistant state) and `detail.previous`.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping
from datetime import datetime, timedelta
from typing import Any

from controller import texts
from controller.config import Sensor, SiteConfig, format_duration
from controller.contact_id import cid
from controller.engine import messages as _messages
from controller.engine.model import (
    Arm,
    Bypass,
    Disarm,
    Effect,
    Emit,
    ExternalAlarm,
    Input,
    Mode,
    OutputFault,
    SensorChange,
    SensorState,
    SetOutput,
    Silence,
    ZoneState,
    ZoneStateName,
)
from controller.event_kinds import EVENT_KINDS
from controller.events import EventDraft

_ZERO = timedelta(0)

# kinds whose event carries the zone's new Home Assistant state when it changed
_ZONE_STATE_KINDS = frozenset(k.name for k in EVENT_KINDS.values() if k.zone_state)
# Contact ID text by (code, restore): the same few codes over and over
_cid = functools.cache(cid)


def _iso(dt: datetime | None) -> str | None:
    return dt.isoformat() if dt is not None else None


def _dt(value: Any) -> datetime | None:
    return datetime.fromisoformat(value) if isinstance(value, str) else None


class Engine:
    def __init__(self, cfg: SiteConfig):
        self.cfg = cfg
        self.lang = cfg.site.language
        self.zone_cfg = {z.id: z for z in cfg.zones}
        self.sensor_cfg: dict[str, Sensor] = {s.id: s for s in cfg.sensors}
        self.zone_sensors: dict[str, list[str]] = {z.id: [] for z in cfg.zones}
        for s in cfg.sensors:
            self.zone_sensors[s.zone].append(s.id)
        self.siren_zones = {s.id: tuple(s.zones) for s in cfg.sirens}
        self.zones: dict[str, ZoneState] = {z.id: ZoneState() for z in cfg.zones}
        self.sensors: dict[str, SensorState] = {s.id: SensorState() for s in cfg.sensors}
        # the only sensors that ever have a deadline (sustain_due, see _vibration_pulse)
        self._vibration = [s.id for s in cfg.sensors if s.spec.counts_knocks]
        self.outputs: dict[str, bool] = {s.id: False for s in cfg.sirens}
        self.output_faults: dict[str, str] = {}
        self._effects: list[Effect] = []
        self._shown: dict[str, ZoneStateName] = {}
        self._texts: dict[tuple[str, str | None, str | None], str] = {}  # see _text()

    # ------------------------------------------------------------------ public API

    def boot(
        self, now: datetime, sensors: Mapping[str, bool], saved: Mapping[str, Any] | None = None
    ) -> list[Effect]:
        """Start: restore the saved state (armed zones, bypasses, delays and alarms in progress),
        take the sensor states read now as the baseline (no alarm from them), report sensors
        active in armed zones as troubles, then fire whatever fell due while the daemon was down."""
        self._begin()
        if saved:
            self._restore(saved)
        for sid, active in sensors.items():
            if sid in self.sensors:
                self.sensors[sid].active = active
        for sid, st in self.sensors.items():
            if not st.active:
                continue
            scfg = self.sensor_cfg[sid]
            if scfg.spec.tamper and not st.bypassed:
                st.tamper_open = True
                self._emit(
                    "tamper", now, "engine.tamper", cid_code=scfg.spec.cid, sensor=sid, zone=scfg.zone
                )
            elif self._armed_for(sid) and scfg.effective_response != "24h" and not st.stuck:
                st.stuck = True
                self._emit(
                    "trouble", now, "engine.stuck_boot", cid_code=380, sensor=sid, zone=scfg.zone
                )
        self._shown = {zid: z.ha_state() for zid, z in self.zones.items()}
        self._run_due(now)
        return self._finish(force_outputs=True)

    def handle(self, inp: Input, now: datetime) -> list[Effect]:
        self._begin()
        self._run_due(now)
        if isinstance(inp, SensorChange):
            self._sensor_change(inp.sensor, inp.active, now)
        elif isinstance(inp, Arm):
            self._arm(inp, now)
        elif isinstance(inp, Disarm):
            self._disarm(inp, now)
        elif isinstance(inp, Bypass):
            self._bypass(inp, now)
        elif isinstance(inp, Silence):
            self._silence(inp, now)
        elif isinstance(inp, OutputFault):
            self._output_fault(inp, now)
        elif isinstance(inp, ExternalAlarm) and inp.zone in self.zones:
            self._alarm(
                inp.zone,
                now,
                inp.cid_code,
                "engine.alarm_external",
                audible=inp.audible,
                text=inp.text,
                detail={"source": inp.source},
            )
        return self._finish()  # outputs synced there

    def advance(self, now: datetime) -> list[Effect]:
        """Fire every deadline due at or before `now`, in time order."""
        self._begin()
        self._run_due(now)
        return self._finish()

    def clock_stepped(self, delta: timedelta) -> None:
        """The wall clock was stepped by `delta` (an NTP correction, a hand-set time) while no
        real time passed: every running delay keeps its length, so its deadline moves with the
        clock. Without this a step forward would end an entry delay at once (a false alarm) and
        a step back would stretch it. Call it before anything fires at the new time."""
        for z in self.zones.values():
            for key in ("exit_due", "entry_due", "armed_at", "alarm_at", "alarm_until"):
                when = getattr(z, key)
                if when is not None:
                    setattr(z, key, when + delta)
        for st in self.sensors.values():
            if st.sustain_due is not None:
                st.sustain_due += delta
            st.pulses = [t + delta for t in st.pulses]

    def next_due(self) -> datetime | None:
        due = self._earliest()
        return due[0] if due else None

    def zone_state(self, zone: str) -> ZoneStateName:
        return self.zones[zone].ha_state()

    def zone_report(self, zone: str) -> dict[str, Any]:
        """A zone's retained state for the office and Home Assistant (`P/zone/<id>/state`)."""
        z = self.zones[zone]
        return {"state": z.ha_state(), "alarm": z.alarm}

    def sensor_report(self, sensor: str) -> dict[str, bool]:
        """A sensor's retained state (`P/sensor/<id>/state`)."""
        st = self.sensors[sensor]
        return {"active": st.active, "bypassed": st.bypassed or st.force_bypassed}

    def status(self) -> dict[str, Any]:
        zones = {}
        for zid, z in self.zones.items():
            zones[zid] = {
                **self.zone_report(zid),
                "mode": z.mode if z.phase != "disarmed" else None,
                "exit_until": _iso(z.exit_due),
                "entry_until": _iso(z.entry_due),
                "siren_until": _iso(z.alarm_until) if z.audible and not z.silenced else None,
                "armed_by": z.user,
            }
        sensors = {}
        for sid, st in self.sensors.items():
            sensors[sid] = {
                **self.sensor_report(sid),
                "zone": self.sensor_cfg[sid].zone,
                "type": self.sensor_cfg[sid].type,
                "shutdown": st.shutdown,
            }
        return {
            "zones": zones,
            "sensors": sensors,
            "outputs": dict(self.outputs),
            "troubles": self.troubles(),
        }

    def troubles(self) -> list[dict[str, Any]]:
        out: list[dict[str, Any]] = []
        for sid, st in self.sensors.items():
            zone = self.sensor_cfg[sid].zone
            if st.stuck:
                out.append(
                    {
                        "source": sid,
                        "zone": zone,
                        "cid": "E380",
                        "what": "sensor active at arming or start-up",
                    }
                )
            if st.tamper_open:
                out.append({"source": sid, "zone": zone, "cid": "E137", "what": "tamper open"})
            if st.shutdown:
                out.append({"source": sid, "zone": zone, "cid": "E377", "what": "swinger shutdown"})
        for output, reason in self.output_faults.items():
            out.append({"source": output, "cid": "E321", "what": f"output fault: {reason}"})
        return out

    def snapshot(self) -> dict[str, Any]:
        """What must survive a restart (kept by the journal): arming, delays, alarms, bypasses."""
        zones = {}
        for zid, z in self.zones.items():
            d = dict(vars(z))  # its fields, in order (all immutable values: no deep copy needed)
            for key in ("exit_due", "entry_due", "armed_at", "alarm_at", "alarm_until"):
                d[key] = _iso(getattr(z, key))
            zones[zid] = d
        sensors = {
            sid: {
                "bypassed": st.bypassed,
                "force_bypassed": st.force_bypassed,
                "trips": st.trips,
                "shutdown": st.shutdown,
            }
            for sid, st in self.sensors.items()
            if st.bypassed or st.force_bypassed or st.trips or st.shutdown
        }
        return {"version": 1, "zones": zones, "sensors": sensors}

    def open_sensors(self, zone: str, mode: Mode) -> list[str]:
        """Sensors that would stop an arming in this mode (active, armed in the mode, not bypassed)."""
        return [
            sid
            for sid in self.zone_sensors[zone]
            if self.sensors[sid].active
            and self.sensor_cfg[sid].effective_response != "24h"
            and self._in_mode(sid, mode)
            and not self.sensors[sid].bypassed
        ]

    # ------------------------------------------------------------------ plumbing

    def _begin(self) -> None:
        self._effects = []
        if not self._shown:
            self._shown = {zid: z.ha_state() for zid, z in self.zones.items()}

    def _finish(self, force_outputs: bool = False) -> list[Effect]:
        self._sync_outputs(force=force_outputs)
        effects = self._effects
        self._effects = []
        # sirens first: an alarm output never waits for the journal or the network
        return [e for e in effects if isinstance(e, SetOutput)] + [
            e for e in effects if isinstance(e, Emit)
        ]

    def _restore(self, saved: Mapping[str, Any]) -> None:
        for zid, d in (saved.get("zones") or {}).items():
            if zid not in self.zones or not isinstance(d, dict):
                continue
            z = self.zones[zid]
            z.phase = (
                d.get("phase", "disarmed")
                if d.get("phase") in ("disarmed", "arming", "armed")
                else "disarmed"
            )
            z.mode = d.get("mode", "away") if d.get("mode") in ("away", "home", "night") else "away"
            for key in ("exit_due", "entry_due", "armed_at", "alarm_at", "alarm_until"):
                setattr(z, key, _dt(d.get(key)))
            for key in (
                "exit_restarted",
                "exit_door_closed",
                "exit_error",
                "alarm",
                "audible",
                "silenced",
                "automatic",
            ):
                setattr(z, key, bool(d.get(key, False)))
            z.entry_sensor = (
                d.get("entry_sensor") if d.get("entry_sensor") in self.sensors else None
            )
            z.user = d.get("user") if isinstance(d.get("user"), str) else None
            if z.phase == "arming" and z.exit_due is None:
                z.phase = "armed"
        for sid, d in (saved.get("sensors") or {}).items():
            if sid in self.sensors and isinstance(d, dict):
                st = self.sensors[sid]
                st.bypassed = bool(d.get("bypassed", False))
                st.force_bypassed = bool(d.get("force_bypassed", False))
                st.trips = int(d.get("trips", 0))
                st.shutdown = bool(d.get("shutdown", False))

    def _earliest(self) -> tuple[datetime, int, str, str] | None:
        best: tuple[datetime, int, str, str] | None = None
        for zid, z in self.zones.items():
            if z.exit_due is None and z.entry_due is None and z.alarm_until is None:
                continue  # the usual case: nothing running in this zone
            for prio, kind, due in (
                (0, "exit", z.exit_due),
                (1, "entry", z.entry_due),
                (2, "siren", z.alarm_until),
            ):
                if due is not None and (best is None or (due, prio, zid) < best[:3]):
                    best = (due, prio, zid, kind)
        for sid in self._vibration:
            due = self.sensors[sid].sustain_due
            if due is not None and (best is None or (due, 3, sid) < best[:3]):
                best = (due, 3, sid, "sustain")
        return best

    def _run_due(self, now: datetime) -> None:
        for _ in range(100_000):  # bounded: every branch below clears the deadline it fired
            due = self._earliest()
            if due is None or due[0] > now:
                return
            at, _, ident, kind = due
            if kind == "exit":
                self._exit_end(ident, at)
            elif kind == "entry":
                self._entry_end(ident, at)
            elif kind == "siren":
                self._siren_end(ident, at)
            else:
                self._sustained_vibration(ident, at)
            self._sync_outputs()
        raise RuntimeError("engine timers did not settle")

    def _sync_outputs(self, force: bool = False) -> None:
        for sid, zones in self.siren_zones.items():
            on = any(
                self.zones[z].alarm_until is not None
                and self.zones[z].audible
                and not self.zones[z].silenced
                for z in zones
            )
            if on != self.outputs[sid] or force:
                self.outputs[sid] = on
                self._effects.append(SetOutput(sid, on))

    def _names(self, zone: str | None, sensor: str | None) -> dict[str, str]:
        out = {}
        if zone is not None:
            out["zone"] = self.zone_cfg[zone].name or zone
        if sensor is not None:
            out["sensor"] = self.sensor_cfg[sensor].name or sensor
        return out

    def _text(self, key: str, zone: str | None, sensor: str | None) -> str:
        """An event text that names only its zone and sensor: rendered once per engine (the
        names and the language come with the configuration), e.g. every tamper of a loop."""
        cached = self._texts.get((key, zone, sensor))
        if cached is None:
            cached = texts.render(self.lang, key, **self._names(zone, sensor))
            self._texts[key, zone, sensor] = cached
        return cached

    def _who(self, user: str | None, source: str, automatic: bool) -> str:
        if automatic:
            return _messages.AUTOMATIC[self.lang]
        return user or source

    def _emit(
        self,
        kind: str,
        at: datetime,
        key: str,
        *,
        cid_code: int | None = None,
        restore: bool = False,
        zone: str | None = None,
        sensor: str | None = None,
        user: str | None = None,
        detail: dict[str, Any] | None = None,
        **fields: Any,
    ) -> None:
        detail = dict(detail or {})
        if zone is not None and kind in _ZONE_STATE_KINDS:
            new = self.zones[zone].ha_state()
            old = self._shown.get(zone, new)
            if new != old:
                detail["state"], detail["previous"] = new, old
                self._shown[zone] = new
        if fields:
            text = texts.render(self.lang, key, **{**self._names(zone, sensor), **fields})
        else:
            text = self._text(key, zone, sensor)
        self._effects.append(
            Emit(
                EventDraft(
                    kind=kind,
                    ts=at,
                    text=text,
                    cid=_cid(cid_code, restore) if cid_code is not None else None,
                    zone=zone,
                    sensor=sensor,
                    user=user,
                    detail=detail,
                )
            )
        )

    # ------------------------------------------------------------------ rules

    def _in_mode(self, sid: str, mode: Mode) -> bool:
        s = self.sensor_cfg[sid]
        if mode == "away" or not s.interior:
            return True
        return mode == "night" and s.night

    def _armed_for(self, sid: str) -> bool:
        """Would a trip of this sensor count now (24h, or its zone armed in a mode covering it)?"""
        s = self.sensor_cfg[sid]
        st = self.sensors[sid]
        if st.bypassed or st.force_bypassed or st.shutdown:
            return False
        if s.effective_response == "24h":
            return True
        z = self.zones[s.zone]
        return z.phase == "armed" and self._in_mode(sid, z.mode)

    def _sensor_change(self, sid: str, active: bool, now: datetime) -> None:
        st = self.sensors.get(sid)
        if st is None or st.active == active:
            return
        st.active = active
        scfg = self.sensor_cfg[sid]
        zid = scfg.zone
        z = self.zones[zid]
        if not active:
            self._sensor_restored(sid, now)
            return
        spec = scfg.spec
        if spec.tamper and not (st.bypassed or st.force_bypassed):
            if z.phase == "armed" and not st.shutdown:
                self._sensor_alarm(sid, now, spec.cid, spec.text)
            else:
                st.tamper_open = True
                self._emit("tamper", now, "engine.tamper", cid_code=spec.cid, sensor=sid, zone=zid)
            return
        if spec.counts_knocks:
            self._vibration_pulse(sid, now)
            return
        resp = scfg.effective_response
        if z.phase == "arming" and resp in ("entry", "follower") and not st.bypassed:
            self._exit_route(sid, now)
            return
        if not self._armed_for(sid):
            return
        if resp == "24h":
            code, key = spec.alarm(resp)
            self._sensor_alarm(sid, now, code, key, audible=not scfg.is_silent)
        elif resp == "entry":
            self._entry_start(sid, now)
        elif resp == "follower" and z.entry_due is not None:
            return  # follows the running entry delay
        else:
            code, key = spec.alarm(resp)
            self._sensor_alarm(sid, now, code, key)

    def _sensor_restored(self, sid: str, now: datetime) -> None:
        st = self.sensors[sid]
        scfg = self.sensor_cfg[sid]
        zid = scfg.zone
        st.sustain_due = None
        z = self.zones[zid]
        if z.phase == "arming" and scfg.effective_response == "entry":
            z.exit_door_closed = True
        if st.stuck:
            st.stuck = False
            self._emit(
                "trouble_restore",
                now,
                "engine.stuck_restore",
                cid_code=380,
                restore=True,
                sensor=sid,
                zone=zid,
            )
        if st.tamper_open:
            st.tamper_open = False
            self._emit(
                "tamper",
                now,
                "engine.tamper_restore",
                cid_code=scfg.spec.cid,
                restore=True,
                sensor=sid,
                zone=zid,
            )
        if st.in_alarm:
            st.in_alarm = False
            self._emit(
                "alarm_restore",
                now,
                "engine.alarm_restore",
                cid_code=scfg.spec.restore_cid(scfg.effective_response),
                restore=True,
                sensor=sid,
                zone=zid,
            )

    def _vibration_pulse(self, sid: str, now: datetime) -> None:
        scfg = self.sensor_cfg[sid]
        st = self.sensors[sid]
        window = scfg.attack_window
        st.sustain_due = now + window if window > _ZERO else None
        if not self._armed_for(sid):
            st.pulses.clear()
            return
        st.pulses = [t for t in st.pulses if now - t < window] + [now]
        if len(st.pulses) >= scfg.attack_pulses:
            st.pulses.clear()
            st.sustain_due = None
            self._sensor_alarm(
                sid,
                now,
                scfg.spec.cid,
                scfg.spec.text,
                pulses=scfg.attack_pulses,
                window=format_duration(window),
                detail={"pulses": scfg.attack_pulses, "window_s": window.total_seconds()},
            )

    def _sustained_vibration(self, sid: str, at: datetime) -> None:
        st = self.sensors[sid]
        st.sustain_due = None
        if st.active and self._armed_for(sid):
            st.pulses.clear()
            scfg = self.sensor_cfg[sid]
            window = scfg.attack_window
            self._sensor_alarm(
                sid,
                at,
                scfg.spec.cid,
                scfg.spec.text_sustained or scfg.spec.text,
                window=format_duration(window),
                detail={"sustained_s": window.total_seconds()},
            )

    def _exit_route(self, sid: str, now: datetime) -> None:
        """An entry/follower sensor trips during the exit delay: the way out. Re-opening an exit
        door after it had been closed restarts the exit delay, once."""
        scfg = self.sensor_cfg[sid]
        z = self.zones[scfg.zone]
        zc = self.zone_cfg[scfg.zone]
        if (
            scfg.effective_response == "entry"
            and zc.exit_restart
            and z.exit_door_closed
            and not z.exit_restarted
            and z.exit_due is not None
        ):
            z.exit_restarted = True
            z.exit_door_closed = False
            z.exit_due = now + zc.exit_delay
            self._emit(
                "arm",
                now,
                "engine.exit_restart",
                zone=scfg.zone,
                sensor=sid,
                delay=format_duration(zc.exit_delay),
                detail={"phase": "exit_restart"},
            )

    def _entry_start(self, sid: str, now: datetime) -> None:
        zid = self.sensor_cfg[sid].zone
        z = self.zones[zid]
        zc = self.zone_cfg[zid]
        if z.entry_due is not None:
            return
        if zc.entry_delay <= _ZERO or z.alarm_until is not None:
            self._sensor_alarm(sid, now, 134, "engine.alarm_open")
            return
        z.entry_due = now + zc.entry_delay
        z.entry_sensor = sid
        self._emit(
            "entry",
            now,
            "engine.entry",
            zone=zid,
            sensor=sid,
            delay=format_duration(zc.entry_delay),
            detail={"entry_delay_s": zc.entry_delay.total_seconds(), "exit_error": z.exit_error},
        )

    def _entry_end(self, zid: str, at: datetime) -> None:
        z = self.zones[zid]
        sid = z.entry_sensor
        z.entry_due = None
        z.entry_sensor = None
        if sid is not None and self.sensors[sid].shutdown:
            sid = None
        self._alarm(zid, at, 134, "engine.alarm_entry", sensor=sid, count_trip=sid is not None)

    def _sensor_alarm(
        self,
        sid: str,
        at: datetime,
        code: int,
        key: str,
        *,
        audible: bool = True,
        detail: dict[str, Any] | None = None,
        **fields: Any,
    ) -> None:
        self._alarm(
            self.sensor_cfg[sid].zone,
            at,
            code,
            key,
            sensor=sid,
            audible=audible,
            detail=detail,
            count_trip=True,
            **fields,
        )

    def _alarm(
        self,
        zid: str,
        at: datetime,
        code: int,
        key: str,
        *,
        sensor: str | None = None,
        audible: bool = True,
        detail: dict[str, Any] | None = None,
        count_trip: bool = False,
        **fields: Any,
    ) -> None:
        z = self.zones[zid]
        zc = self.zone_cfg[zid]
        if sensor is not None and count_trip:
            st = self.sensors[sensor]
            if st.trips >= zc.swinger_limit and not self.sensor_cfg[sensor].spec.life_safety:
                if not st.shutdown:
                    st.shutdown = True
                    self._emit(
                        "trouble",
                        at,
                        "engine.swinger",
                        cid_code=377,
                        zone=zid,
                        sensor=sensor,
                        limit=zc.swinger_limit,
                        detail={"trips": st.trips},
                    )
                return
            st.trips += 1
            st.in_alarm = True
        was_armed = z.phase == "armed"
        z.entry_due = None
        z.entry_sensor = None
        z.alarm = True
        if z.alarm_at is None or z.alarm_until is None:
            z.alarm_at = at
        if z.alarm_until is None:
            z.alarm_until = at + zc.siren_time
            z.silenced = False
        z.audible = z.audible or audible
        d = {"audible": audible, **(detail or {})}
        self._emit("alarm", at, key, cid_code=code, zone=zid, sensor=sensor, detail=d, **fields)
        if z.exit_error:
            z.exit_error = False
            self._emit(
                "alarm",
                at,
                "engine.exit_error",
                cid_code=374,
                zone=zid,
                sensor=sensor,
                detail={"exit_error": True},
            )
        if (
            was_armed
            and not z.automatic  # a user's closing: a schedule's arming is no user error
            and z.armed_at is not None
            and at - z.armed_at <= zc.recent_closing
            and code in (130, 131, 132, 134, 137)
        ):
            self._emit(
                "alarm",
                at,
                "engine.recent_closing",
                cid_code=459,
                zone=zid,
                user=z.user,
                window=format_duration(zc.recent_closing),
                detail={"armed_at": _iso(z.armed_at)},
            )

    def _siren_end(self, zid: str, at: datetime) -> None:
        z = self.zones[zid]
        zc = self.zone_cfg[zid]
        audible = z.audible and not z.silenced
        z.alarm_until = None
        z.audible = False
        z.silenced = False
        self._emit(
            "siren",
            at,
            "engine.siren_timeout",
            zone=zid,
            time=format_duration(zc.siren_time),
            detail={"on": False, "reason": "siren_time", "was_sounding": audible},
        )

    def _arm(self, inp: Arm, now: datetime) -> None:
        who = self._who(inp.user, inp.source, inp.automatic)
        for zid in inp.zones:
            if zid not in self.zones:
                continue
            z = self.zones[zid]
            zc = self.zone_cfg[zid]
            if z.phase != "disarmed":
                if (
                    z.phase == "armed"
                    and z.mode != inp.mode
                    and z.entry_due is None
                    and z.alarm_until is None
                ):
                    z.mode = inp.mode
                    self._emit(
                        "arm",
                        now,
                        "engine.armed",
                        cid_code=self._arm_code(inp),
                        restore=True,
                        zone=zid,
                        user=inp.user,
                        who=who,
                        mode=_messages.MODE_NAMES[self.lang][inp.mode],
                        detail={"mode": inp.mode, "source": inp.source, "phase": "mode_change"},
                    )
                continue
            open_now = self.open_sensors(zid, inp.mode)
            open_now = [s for s in open_now if not self.sensors[s].force_bypassed]
            if open_now and not inp.force:
                names = ", ".join(self.sensor_cfg[s].name or s for s in open_now)
                self._emit(
                    "arm_failed",
                    now,
                    "engine.arm_failed",
                    cid_code=455 if inp.automatic else None,
                    zone=zid,
                    user=inp.user,
                    sensors=names,
                    detail={
                        "open": open_now,
                        "mode": inp.mode,
                        "source": inp.source,
                        "automatic": inp.automatic,
                    },
                )
                continue
            for sid in self.zone_sensors[zid]:
                st = self.sensors[sid]
                st.trips = 0
                st.shutdown = False
                st.pulses.clear()
            for sid in open_now:
                self.sensors[sid].force_bypassed = True
                self._emit(
                    "bypass",
                    now,
                    "engine.force_bypass",
                    cid_code=570,
                    zone=zid,
                    sensor=sid,
                    user=inp.user,
                    who=who,
                    detail={"bypassed": True, "force": True, "source": inp.source},
                )
            z.mode = inp.mode
            z.user = inp.user
            z.automatic = inp.automatic
            z.exit_restarted = False
            z.exit_door_closed = False
            z.exit_error = False
            delay = _ZERO if inp.instant else zc.exit_delay
            if delay > _ZERO:
                z.phase = "arming"
                z.exit_due = now + delay
                self._emit(
                    "arm",
                    now,
                    "engine.arming",
                    zone=zid,
                    user=inp.user,
                    who=who,
                    mode=_messages.MODE_NAMES[self.lang][inp.mode],
                    delay=format_duration(delay),
                    detail={
                        "mode": inp.mode,
                        "source": inp.source,
                        "phase": "arming",
                        "exit_delay_s": delay.total_seconds(),
                    },
                )
            else:
                self._armed(zid, now, inp.source)

    def _arm_code(self, inp: Arm) -> int:
        if inp.automatic:
            return 403
        return 441 if inp.mode in ("home", "night") else 401

    def _exit_end(self, zid: str, at: datetime) -> None:
        z = self.zones[zid]
        z.exit_due = None
        self._armed(zid, at, None)

    def _armed(self, zid: str, at: datetime, source: str | None) -> None:
        z = self.zones[zid]
        z.phase = "armed"
        z.armed_at = at
        mode = z.mode
        code = 403 if z.automatic else (441 if mode in ("home", "night") else 401)
        who = self._who(z.user, source or "local", z.automatic)
        self._emit(
            "arm",
            at,
            "engine.armed",
            cid_code=code,
            restore=True,
            zone=zid,
            user=z.user,
            who=who,
            mode=_messages.MODE_NAMES[self.lang][mode],
            detail={"mode": mode, "phase": "armed", "automatic": z.automatic},
        )
        for sid in self.zone_sensors[zid]:
            st = self.sensors[sid]
            if st.force_bypassed and st.active and not st.stuck:
                st.stuck = True
                self._emit("trouble", at, "engine.stuck_arm", cid_code=380, zone=zid, sensor=sid)
        # sensors still active as the zone arms: an open exit door is an exit error
        for sid in self.zone_sensors[zid]:
            st = self.sensors[sid]
            if not st.active or st.stuck or not self._armed_for(sid):
                continue
            scfg = self.sensor_cfg[sid]
            resp = scfg.effective_response
            if resp == "24h" or not scfg.spec.follows_response:
                continue
            if z.entry_due is None and z.alarm_until is None and resp in ("entry", "follower"):
                z.exit_error = resp == "entry"
                self._entry_start(sid, at)
            elif resp == "instant":
                # still open as the zone arms: "opened while armed", whatever the sensor
                self._sensor_alarm(sid, at, scfg.spec.alarm(resp)[0], "engine.alarm_open")

    def _disarm(self, inp: Disarm, now: datetime) -> None:
        who = self._who(inp.user, inp.source, inp.automatic)
        for zid in inp.zones:
            if zid not in self.zones:
                continue
            z = self.zones[zid]
            zc = self.zone_cfg[zid]
            if z.phase == "disarmed" and not z.alarm and z.alarm_until is None:
                continue
            if z.alarm and z.alarm_at is not None and now - z.alarm_at <= zc.abort_window:
                self._emit(
                    "cancel",
                    now,
                    "engine.cancel",
                    cid_code=406,
                    zone=zid,
                    user=inp.user,
                    who=who,
                    window=format_duration(zc.abort_window),
                    detail={"alarm_at": _iso(z.alarm_at), "source": inp.source},
                )
            z.phase = "disarmed"
            z.exit_due = z.entry_due = z.armed_at = z.alarm_at = z.alarm_until = None
            z.entry_sensor = None
            z.alarm = z.audible = z.silenced = z.exit_error = z.automatic = False
            z.user = None
            for sid in self.zone_sensors[zid]:
                st = self.sensors[sid]
                st.force_bypassed = False
                st.trips = 0
                st.shutdown = False
                st.pulses.clear()
            self._emit(
                "disarm",
                now,
                "engine.disarmed",
                cid_code=403 if inp.automatic else 401,
                zone=zid,
                user=inp.user,
                who=who,
                detail={"source": inp.source, "automatic": inp.automatic},
            )

    def _bypass(self, inp: Bypass, now: datetime) -> None:
        st = self.sensors.get(inp.sensor)
        if st is None or st.bypassed == inp.bypass:
            return
        st.bypassed = inp.bypass
        zid = self.sensor_cfg[inp.sensor].zone
        if inp.bypass:
            st.tamper_open = False
            z = self.zones[zid]
            if z.entry_sensor == inp.sensor:
                pass  # a running entry delay is not cancelled by a bypass
        elif self.sensor_cfg[inp.sensor].spec.tamper and st.active:
            st.tamper_open = True
        self._emit(
            "bypass",
            now,
            "engine.bypass" if inp.bypass else "engine.unbypass",
            cid_code=570,
            restore=not inp.bypass,
            zone=zid,
            sensor=inp.sensor,
            user=inp.user,
            who=self._who(inp.user, inp.source, False),
            detail={"bypassed": inp.bypass, "source": inp.source},
        )

    def _silence(self, inp: Silence, now: datetime) -> None:
        for zid in inp.zones:
            z = self.zones.get(zid)
            if z is None or z.alarm_until is None or not z.audible or z.silenced:
                continue
            z.silenced = True
            self._emit(
                "siren",
                now,
                "engine.silenced",
                zone=zid,
                user=inp.user,
                who=self._who(inp.user, inp.source, False),
                detail={"on": False, "reason": "silenced", "source": inp.source},
            )

    def _output_fault(self, inp: OutputFault, now: datetime) -> None:
        had = inp.output in self.output_faults
        if inp.fault and not had:
            self.output_faults[inp.output] = inp.reason or "fault"
            self._emit(
                "trouble",
                now,
                "engine.output_fault",
                cid_code=321,
                output=inp.output,
                reason=inp.reason or "fault",
                detail={"output": inp.output},
            )
        elif not inp.fault and had:
            del self.output_faults[inp.output]
            self._emit(
                "trouble_restore",
                now,
                "engine.output_fault_restore",
                cid_code=321,
                restore=True,
                output=inp.output,
                detail={"output": inp.output},
            )
