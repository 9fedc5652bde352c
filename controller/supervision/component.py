"""Supervised wiring and power: the component that polls the ADC on the daemon's clock.

Every `adc.poll` (200 ms by default) one deadline on the timer driver reads the channels in use
and hands each loop's reading to its `Decoder` (controller/supervision/bands.py). A settled
state acts once:

- `normal` / `alarm`: the sensor's engine input, exactly as a pin's edge would be
  (`SensorChange`, only when it differs from what the engine holds), so types, responses,
  zones, bypasses and Home Assistant stay as they are;
- `cut` / `short`: a tamper of the loop, E144, reported at all times (a `tamper` event and a
  trouble until the loop reads normal or alarm again, R144) and, when the zone is armed and the
  sensor not bypassed, an alarm through the engine's `ExternalAlarm` with the same code. The
  engine's sensor input keeps its last state (a cut wire says nothing of the door);
- a reading outside every band: a trouble (E380) until a band holds it again.

The ADC not answering is a trouble (E333, R333 when it is back); its loops are `unknown` until
then and the engine keeps their last state. Mains (E301), the battery (E302 low, E311
missing) and the sirens' lines (E321, judged only while the siren is off) are conditions with
delays (controller/supervision/power.py), reported as `trouble`/`trouble_restore`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from controller import texts
from controller.component import Component
from controller.config import Sensor
from controller.engine import ExternalAlarm, SensorChange
from controller.events import EventDraft
from controller.supervision.bands import Decoder, LoopState
from controller.supervision.power import Condition, battery_faults, siren_line_fault
from controller.wiring import MAINS_INPUT
from hardware.backend import HardwareError

if TYPE_CHECKING:
    from controller.site import Site

TAMPER_CID = 144
texts.register(
    {
        "supervision.cut": {
            "vi": "Đứt dây vòng cảm biến {sensor} ({zone})",
            "en": "Loop of {sensor} cut ({zone})",
        },
        "supervision.short": {
            "vi": "Chập dây vòng cảm biến {sensor} ({zone})",
            "en": "Loop of {sensor} shorted ({zone})",
        },
        "supervision.tamper_restore": {
            "vi": "Vòng cảm biến {sensor} bình thường trở lại ({zone})",
            "en": "Loop of {sensor} wired right again ({zone})",
        },
        "supervision.out_of_band": {
            "vi": "Vòng cảm biến {sensor} đọc {volts} V, ngoài mọi dải ({zone})",
            "en": "Loop of {sensor} reads {volts} V, outside every band ({zone})",
        },
        "supervision.in_band": {
            "vi": "Vòng cảm biến {sensor} đọc trong dải trở lại ({zone})",
            "en": "Loop of {sensor} reads within a band again ({zone})",
        },
        "supervision.adc_lost": {
            "vi": "Bộ chuyển đổi ADC không trả lời: các vòng giám sát không rõ trạng thái",
            "en": "ADC not answering: supervised loops unknown",
        },
        "supervision.adc_back": {
            "vi": "Bộ chuyển đổi ADC trả lời trở lại",
            "en": "ADC answering again",
        },
        "supervision.mains_lost": {"vi": "Mất điện lưới", "en": "Mains power lost"},
        "supervision.mains_back": {"vi": "Có điện lưới trở lại", "en": "Mains power restored"},
        "supervision.battery_low": {
            "vi": "Ắc quy yếu ({volts} V)",
            "en": "Battery low ({volts} V)",
        },
        "supervision.battery_ok": {
            "vi": "Ắc quy bình thường ({volts} V)",
            "en": "Battery restored ({volts} V)",
        },
        "supervision.battery_missing": {
            "vi": "Không có ắc quy ({volts} V)",
            "en": "Battery missing ({volts} V)",
        },
        "supervision.battery_present": {
            "vi": "Đã có ắc quy ({volts} V)",
            "en": "Battery present again ({volts} V)",
        },
        "supervision.siren_fault": {
            "vi": "Đường dây còi {siren} bị {fault}",
            "en": "Siren line {siren} {fault}",
        },
        "supervision.siren_ok": {
            "vi": "Đường dây còi {siren} bình thường",
            "en": "Siren line {siren} normal again",
        },
    }
)

def _held(site: Site, key: str, loop: str | None = None) -> bool:
    """Whether the trouble board holds this trouble (raised before a reload: the board is the
    daemon's and outlives the components), of this loop state if given."""
    if key not in site.trouble_board:
        return False
    return loop is None or any(t.get("loop") == loop for t in site.trouble_board)


ARMED_PHASES = ("armed",)  # an entry delay running is still "armed" in the engine
DEFAULT_POLL = timedelta(milliseconds=200)  # with no ADC: only the mains pin to look at
# mains, battery and siren lines are read at most this often (the loops at every poll): their
# conditions wait seconds (30 s, 60 s, 5 s by default) before they count, and on the simulator's
# software SPI bus each channel read costs ~0.25 ms of CPU (bench/adc_poll.py)
POWER_POLL = timedelta(seconds=1)


@dataclass(slots=True)
class LoopWatch:
    sensor: Sensor
    channel: int
    decoder: Decoder
    tamper: LoopState | None = None  # cut/short reported and standing
    out_of_band: bool = False


@dataclass(slots=True)
class SirenWatch:
    siren: str
    channel: int
    short_below: float
    open_above: float
    cond: Condition
    fault: str | None = None
    volts: float | None = None


@dataclass(slots=True)
class PowerState:
    mains: Condition | None = None
    mains_on: bool | None = None
    battery_low: Condition | None = None
    battery_missing: Condition | None = None
    battery_v: float | None = None
    sirens: list[SirenWatch] = field(default_factory=list)


class Supervision(Component):
    """Polls the ADC: supervised loops into the engine, tampers, power and siren troubles."""

    name = "supervision"

    def __init__(self, site: Site) -> None:
        super().__init__(site)
        cfg = site.config
        self.adc = cfg.adc
        vref = self.adc.vref if self.adc is not None else 3.3
        self.loops: dict[str, LoopWatch] = {
            s.id: LoopWatch(
                s,
                s.loop.channel,
                Decoder(s.loop.band_set(vref), s.loop.hysteresis, s.loop.debounce),
            )
            for s in cfg.sensors
            if s.loop is not None
        }
        self.power = PowerState()
        p = cfg.power
        if p is not None:
            if p.mains is not None:
                self.power.mains = Condition(p.mains.delay)
            if p.battery is not None:
                self.power.battery_low = Condition(p.battery.delay)
                self.power.battery_missing = Condition(p.battery.delay)
            self.power.sirens = [
                SirenWatch(s.siren, s.channel, s.short_below, s.open_above, Condition(s.delay))
                for s in p.sirens
            ]
        self.mains_pin = p is not None and p.mains is not None and p.mains.pin is not None
        self.poll = self.adc.poll if self.adc is not None else DEFAULT_POLL
        self.loop_channels = frozenset(w.channel for w in self.loops.values())
        self.power_due: datetime | None = None  # None: read the power channels at the next poll
        self.adc_ok: bool | None = None  # None: not read yet
        self.adc_error = ""
        self.polls = 0
        self.next_at: datetime | None = None
        self._deadline = site.timers.deadline(lambda: self.next_at, self._poll)

    @property
    def active(self) -> bool:
        return self.adc is not None or self.mains_pin

    # ------------------------------------------------------------------ lifecycle

    def start(self) -> None:
        """Take over what an earlier component of this daemon left standing on the trouble
        board (a reload rebuilds the component; the board stays), then poll."""
        board = self.site.trouble_board
        for sid, w in self.loops.items():
            w.out_of_band = f"supervision:band:{sid}" in board
            for state in ("cut", "short"):
                if _held(self.site, f"supervision:tamper:{sid}", state):
                    w.tamper = state
        if "supervision:adc" in board:
            self.adc_ok = False
        ps = self.power
        for cond, key in (
            (ps.mains, "supervision:mains"),
            (ps.battery_low, "supervision:battery_low"),
            (ps.battery_missing, "supervision:battery_missing"),
            *((sw.cond, f"supervision:siren:{sw.siren}") for sw in ps.sirens),
        ):
            if cond is not None:
                cond.raised = key in board
        for sw in ps.sirens:
            if sw.cond.raised:
                sw.fault = "fault"
        if self.active:
            self._poll()  # the first reading is the baseline; then every `adc.poll`

    def close(self) -> None:
        self.next_at = None
        self._deadline.cancel()

    def clock_stepped(self, delta: timedelta) -> None:
        if self.next_at is not None:
            self.next_at += delta
        if self.power_due is not None:
            self.power_due += delta

    # ------------------------------------------------------------------ polling

    def _poll(self) -> None:
        now = self.site.clock.now()
        self.polls += 1
        readings: dict[int, float] = {}
        due = self._channels_due(now) if self.adc is not None else frozenset()
        if due is None or due:  # a poll with nothing to read says nothing of the ADC
            reader = self.site.analog()
            try:
                if reader is None:
                    raise HardwareError("the ADC could not be opened")
                readings = reader.read_all(due)
            except HardwareError as e:
                readings = {}
                self._adc_lost(now, str(e))
            else:
                self._adc_back(now)
                for sid, w in self.loops.items():
                    v = readings.get(w.channel)
                    if v is not None:
                        baseline = w.decoder.state == "unknown"
                        settled = w.decoder.feed(v, now)
                        if settled is not None:
                            self._loop_settled(sid, w, settled, v, now, baseline)
        self._power(readings, now)  # what the ADC does not read now keeps its last state
        self.next_at = now + self.poll
        self._deadline.reschedule()

    def _channels_due(self, now: datetime) -> frozenset[int] | None:
        """The channels this poll reads: every one in use (None) when the power channels are
        due, else the loops' only."""
        if self.power_due is None or now >= self.power_due:
            self.power_due = now + POWER_POLL
            return None
        return self.loop_channels

    def _adc_lost(self, now: datetime, why: str) -> None:
        self.adc_error = why
        for w in self.loops.values():
            w.decoder.lost()
        if self.adc_ok is False:
            return
        self.adc_ok = False
        if not self.mains_pin:
            self.power.mains_on = None
        self.site.trouble_board.raise_(
            "supervision:adc", {"source": "adc", "cid": "E333", "what": f"ADC not answering: {why}"}
        )
        self._record("trouble", now, "supervision.adc_lost", "E333", detail={"error": why})

    def _adc_back(self, now: datetime) -> None:
        was, self.adc_ok, self.adc_error = self.adc_ok, True, ""
        if was is False:
            self.site.trouble_board.clear("supervision:adc")
            self._record("trouble_restore", now, "supervision.adc_back", "R333")

    # ------------------------------------------------------------------ loops

    def _loop_settled(
        self,
        sid: str,
        w: LoopWatch,
        state: LoopState,
        volts: float,
        now: datetime,
        baseline: bool = False,
    ) -> None:
        """Act on a loop's new settled state. `baseline`: the first reading after start or after
        the ADC came back; a cut or short found then is reported, but sounds no alarm (as the
        engine treats a tamper loop open at boot)."""
        site = self.site
        zone = w.sensor.zone
        if state != "trouble" and w.out_of_band:
            w.out_of_band = False
            site.trouble_board.clear(f"supervision:band:{sid}")
            self._record("trouble_restore", now, "supervision.in_band", "R380", sid, zone)
        if state in ("normal", "alarm"):
            if w.tamper is not None:
                w.tamper = None
                site.trouble_board.clear(f"supervision:tamper:{sid}")
                self._record(
                    "tamper", now, "supervision.tamper_restore", f"R{TAMPER_CID}", sid, zone
                )
            active = state == "alarm"
            st = site.engine.sensors.get(sid)
            if st is not None and st.active != active:
                site.submit(SensorChange(sid, active))
        elif state in ("cut", "short"):
            if w.tamper == state:
                return
            if w.tamper is None and baseline and _held(site, f"supervision:tamper:{sid}", state):
                w.tamper = state  # reported before a reload: adopt it, no second event
                return
            w.tamper = state
            key = f"supervision.{state}"
            site.trouble_board.raise_(
                f"supervision:tamper:{sid}",
                {
                    "source": sid,
                    "zone": zone,
                    "cid": f"E{TAMPER_CID}",
                    "what": f"loop {state}",
                    "loop": state,
                },
            )
            detail = {"loop": state, "volts": round(volts, 3)}
            self._record("tamper", now, key, f"E{TAMPER_CID}", sid, zone, detail=detail)
            st = site.engine.sensors.get(sid)
            bypassed = st is not None and (st.bypassed or st.force_bypassed)
            armed = site.engine.zones[zone].phase in ARMED_PHASES
            if armed and not bypassed and not baseline:
                text = self._text(key, sid, zone)
                site.submit(
                    ExternalAlarm(zone, sid, TAMPER_CID, text, audible=not w.sensor.is_silent)
                )
        elif state == "trouble" and not w.out_of_band:
            w.out_of_band = True
            if baseline and f"supervision:band:{sid}" in site.trouble_board:
                return  # reported before a reload
            shown = f"{volts:.2f}"
            site.trouble_board.raise_(
                f"supervision:band:{sid}",
                {
                    "source": sid,
                    "zone": zone,
                    "cid": "E380",
                    "what": f"loop reads {shown} V outside every band",
                },
            )
            self._record(
                "trouble",
                now,
                "supervision.out_of_band",
                "E380",
                sid,
                zone,
                detail={"volts": round(volts, 3)},
                volts=shown,
            )

    # ------------------------------------------------------------------ power

    def _power(self, readings: dict[int, float], now: datetime) -> None:
        p = self.site.config.power
        if p is None:
            return
        ps = self.power
        if p.mains is not None and ps.mains is not None:
            if p.mains.pin is not None:
                present = self.site.power_input(MAINS_INPUT)
            else:
                v = readings.get(p.mains.channel) if p.mains.channel is not None else None
                present = None if v is None else v > p.mains.present_above
            if present is not None:
                ps.mains_on = present
                change = ps.mains.update(not ps.mains_on, now)
                if change == "raise":
                    self._power_trouble("mains", True, now, "supervision.mains_lost", 301)
                elif change == "clear":
                    self._power_trouble("mains", False, now, "supervision.mains_back", 301)
        b = p.battery
        if b is not None and ps.battery_low is not None and ps.battery_missing is not None:
            v = readings.get(b.channel)
            if v is not None:
                bv = v * b.divider
                ps.battery_v = round(bv, 1)  # the divider makes a step of the ADC ~16 mV
                low, missing = battery_faults(
                    bv, b.low, b.restore, b.missing, ps.battery_low.raised
                )
                shown = f"{bv:.1f}"
                for cond, bad, what, code, on_key, off_key in (
                    (
                        ps.battery_missing,
                        missing,
                        "battery_missing",
                        311,
                        "supervision.battery_missing",
                        "supervision.battery_present",
                    ),
                    (
                        ps.battery_low,
                        low,
                        "battery_low",
                        302,
                        "supervision.battery_low",
                        "supervision.battery_ok",
                    ),
                ):
                    change = cond.update(bad, now)
                    if change is not None:
                        raised = change == "raise"
                        self._power_trouble(
                            what, raised, now, on_key if raised else off_key, code, volts=shown
                        )
        outputs = self.site.engine.outputs
        for sw in ps.sirens:
            v = readings.get(sw.channel)
            if v is None or outputs.get(sw.siren, False):
                continue  # a siren sounding reads its drive, not its supervision current
            sw.volts = v
            fault = siren_line_fault(v, sw.short_below, sw.open_above)
            change = sw.cond.update(fault is not None, now)
            if change == "raise":
                sw.fault = fault
                self._power_trouble(
                    f"siren:{sw.siren}",
                    True,
                    now,
                    "supervision.siren_fault",
                    321,
                    siren=sw.siren,
                    fault=fault,
                )
            elif change == "clear":
                sw.fault = None
                self._power_trouble(
                    f"siren:{sw.siren}", False, now, "supervision.siren_ok", 321, siren=sw.siren
                )

    def _power_trouble(
        self, what: str, raised: bool, now: datetime, key: str, code: int, **fields: Any
    ) -> None:
        board_key = f"supervision:{what}"
        cid = f"{'E' if raised else 'R'}{code:03d}"
        if raised:
            text = texts.render(self.site.config.site.language, key, **fields)
            self.site.trouble_board.raise_(board_key, {"source": what, "cid": cid, "what": text})
        else:
            self.site.trouble_board.clear(board_key)
        detail = {"supervision": what, **fields}
        self._record(
            "trouble" if raised else "trouble_restore", now, key, cid, detail=detail, **fields
        )

    # ------------------------------------------------------------------ events, status

    def _text(
        self, key: str, sensor: str | None = None, zone: str | None = None, **fields: Any
    ) -> str:
        cfg = self.site.config
        names: dict[str, str] = {}
        if sensor is not None:
            names["sensor"] = cfg.sensor(sensor).name or sensor
        if zone is not None:
            names["zone"] = cfg.zone(zone).name or zone
        return texts.render(cfg.site.language, key, **names, **fields)

    def _record(
        self,
        kind: str,
        now: datetime,
        key: str,
        cid: str,
        sensor: str | None = None,
        zone: str | None = None,
        detail: dict[str, Any] | None = None,
        **fields: Any,
    ) -> None:
        text = self._text(key, sensor, zone, **fields)
        self.site.record(
            [
                EventDraft(
                    kind=kind,
                    ts=now,
                    text=text,
                    cid=cid,
                    zone=zone,
                    sensor=sensor,
                    detail=detail or {},
                )
            ]
        )

    def loop_state(self, sensor: str) -> LoopState:
        return self.loops[sensor].decoder.state

    def status(self) -> dict[str, Any] | None:
        if not self.active:
            return None
        ps = self.power
        loops = {
            sid: {
                "state": w.decoder.state,
                "volts": None if w.decoder.last_volts is None else round(w.decoder.last_volts, 3),
                "channel": w.channel,
            }
            for sid, w in self.loops.items()
        }
        power: dict[str, Any] = {}
        if ps.mains is not None:
            power["mains"] = (
                "unknown"
                if ps.mains_on is None
                else ("on" if ps.mains_on else "off")
            )
        if ps.battery_low is not None and ps.battery_missing is not None:
            state = (
                "missing" if ps.battery_missing.raised else "low" if ps.battery_low.raised else "ok"
            )
            power["battery"] = {"state": state if self.adc_ok else "unknown", "volts": ps.battery_v}
        if ps.sirens:
            power["sirens"] = {sw.siren: sw.fault or "ok" for sw in ps.sirens}
        return {
            "supervision": {
                "adc": "none" if self.adc is None else "ok" if self.adc_ok else "not answering",
                "polls": self.polls,
                "loops": loops,
                "power": power,
            }
        }
