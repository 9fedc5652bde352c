"""The daemon: wires hardware, engine, journal and the control socket onto one asyncio loop.

One event loop owns the engine. Pin callbacks arrive from driver threads through
`loop.call_soon_threadsafe` (see hardware/); everything else runs on the loop. The order of work
for anything that happens is fixed: engine -> outputs (sirens) -> journal -> reporting.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
from collections.abc import Callable
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any, TypeVar, cast

from controller import __version__, texts
from controller.access.gate import Action, Attempt
from controller.access.service import AccessService
from controller.clock import Clock, TimerHandle, VirtualClock
from controller.component import Component
from controller.config import (
    ConfigError,
    Loaded,
    Problem,
    SiteConfig,
    load_config,
    parse_duration,
)
from controller.control import PEER, ControlError, ControlServer
from controller.devices import Devices
from controller.drone.component import DetectorStation, DroneDetectors
from controller.engine import (
    Arm,
    Bypass,
    Disarm,
    Effect,
    Emit,
    Engine,
    Input,
    OutputFault,
    SensorChange,
    SetOutput,
    Silence,
)
from controller.engine.model import Mode
from controller.events import Event, EventDraft
from controller.examples import example_secrets
from controller.journal import Journal
from controller.keypad.component import Keypads
from controller.notify import Notifier
from controller.patrol.component import Patrols
from controller.preflight import loose_secret_files
from controller.refusals import refusal
from controller.registry import components_for, position
from controller.remote.commands import Command
from controller.reporting.component import Reporting
from controller.reporting.exposure import exposures
from controller.site import Trouble, TroubleBoard
from controller.statelock import StateLock
from controller.supervision.component import Supervision
from controller.supervision.sim import sim_loop_volts, sim_power_volts
from controller.timers import TimerDriver
from hardware import Buzzer
from hardware.adc import AdcReader

log = logging.getLogger(__name__)

DEFAULT_STATE_DIR = "/var/lib/officeguard"
JOURNAL_NAME = "journal.db"
JOURNAL_RETRY = timedelta(seconds=30)  # a logbook that refused a write is tried again
PRUNE_EVERY = timedelta(days=1)  # retention upkeep
MAX_ADVANCE = timedelta(days=7)  # `sim advance` at most this far in one request

C = TypeVar("C", bound=Component)

texts.register(
    {
        "daemon.started": {
            "vi": "Bộ điều khiển khởi động (phiên bản {version}){sim}",
            "en": "Controller started (version {version}){sim}",
        },
        "daemon.stopped": {
            "vi": "Bộ điều khiển dừng ({reason})",
            "en": "Controller stopped ({reason})",
        },
        "daemon.reloaded": {
            "vi": "Đã nạp lại cấu hình",
            "en": "Configuration reloaded",
        },
        "daemon.clock_stepped": {
            "vi": "Đồng hồ hệ thống bị chỉnh {delta}; các thời gian chờ đang chạy giữ nguyên độ dài",
            "en": "System clock stepped by {delta}; running delays keep their length",
        },
        "daemon.reload_refused": {
            "vi": "Từ chối nạp lại cấu hình: {n} lỗi; cấu hình đang chạy được giữ nguyên",
            "en": "Configuration reload refused: {n} problem(s); the running configuration stays",
        },
        "daemon.journal_trouble": {
            "vi": "Sự cố lưu trữ: không ghi được sổ nhật ký ({error}); sự kiện được giữ trong bộ nhớ",
            "en": "Storage trouble: cannot write the logbook ({error}); events kept in memory",
        },
        "daemon.journal_restore": {
            "vi": "Hết sự cố lưu trữ: sổ nhật ký ghi được trở lại",
            "en": "Storage trouble restored: the logbook is writable again",
        },
    }
)


class Daemon:
    """The site: owns the engine, the logbook, the devices and access control, implements
    the port its components get (controller/site.py) and walks them (controller/registry.py)."""

    def __init__(
        self,
        loaded: Loaded,
        state_dir: str | Path,
        *,
        simulate: bool = False,
        clock: Clock,
        detector_nodes: bool = True,
        sim_commands: bool | None = None,
    ):
        """`detector_nodes=False`: in simulation, the drone detectors' firmware twins stay
        off (tests that write every line themselves). `sim_commands`: whether `sim` commands
        are taken (by default when simulated; the command line gives it only for --simulate,
        never for a config that merely says `backend: simulated`)."""
        self.loaded = loaded
        self.cfg: SiteConfig = loaded.config
        self.state_dir = Path(state_dir)
        self.simulate = simulate
        self.sim_commands = simulate if sim_commands is None else sim_commands
        self.clock = clock
        self.timers = TimerDriver(clock)
        self.detector_nodes = detector_nodes
        self._advancing = asyncio.Lock()
        self.engine = Engine(self.cfg)
        self.journal: Journal | None = None
        self.control: ControlServer | None = None
        self.hw: Devices | None = None
        self._access: AccessService | None = None
        self._engine_deadline = self.timers.deadline(self._engine_due, self._on_engine_timer)
        self._started_at = clock.now()
        self._saved_state: Any = None
        self._saved_lockout: Any = None
        self._journal_retry: TimerHandle | None = None
        self._status_due = False
        self._prune_timer: TimerHandle | None = None
        self._stop = asyncio.Event()
        self._stop_reason = "stopped"
        self.state_listeners: list[Callable[[], None]] = []
        self.trouble_board = TroubleBoard()
        self.components: list[Component] = []  # started, in the registry's order
        self.notifier = Notifier()
        self.lock = StateLock(self.state_dir)

    # ------------------------------------------------------------------ the port (site.py)

    @property
    def config(self) -> SiteConfig:
        return self.cfg

    @property
    def logbook(self) -> Journal:
        assert self.journal is not None, "the logbook is open from start to stop"
        return self.journal

    @property
    def access(self) -> AccessService:
        assert self._access is not None, "access control exists from start to stop"
        return self._access

    def record(self, drafts: list[EventDraft]) -> list[Event]:
        return self._record(drafts)

    def started_at(self) -> datetime:
        return self._started_at

    def buzzer(self, keypad: str) -> Buzzer | None:
        assert self.hw is not None
        return self.hw.buzzers.get(keypad)

    @property
    def pin_factory(self) -> Any:
        return self.hw.factory if self.hw is not None else None

    def serial_port(self, detector: str, path: str) -> str:
        assert self.hw is not None
        return self.hw.serial_port(detector, path)

    def listen_keys(self, handler: Callable[[str, str, datetime], None]) -> None:
        assert self.hw is not None
        self.hw.set_key_handler(handler)

    def power_input(self, name: str) -> bool | None:
        return self.hw.power_input(name) if self.hw is not None else None

    def analog(self) -> AdcReader | None:
        return self.hw.adc if self.hw is not None else None

    def component_status(self, key: str) -> Any:
        for comp in self.components:
            st = comp.status()
            if st is not None and key in st:
                return st[key]
        return None

    def component(self, kind: type[C]) -> C | None:
        """The running component of this class, if any."""
        return next((c for c in self.components if isinstance(c, kind)), None)

    @property
    def reporting(self) -> Reporting | None:
        return self.component(Reporting)

    @property
    def keypads(self) -> dict[str, Any]:
        kp = self.component(Keypads)
        return kp.stations if kp is not None else {}

    @property
    def detectors(self) -> dict[str, DetectorStation]:
        det = self.component(DroneDetectors)
        return det.stations if det is not None else {}

    @property
    def broker_connected(self) -> bool:
        rep = self.reporting
        return rep is not None and rep.connected

    # ------------------------------------------------------------------ start / stop

    async def start(self) -> None:
        loop = asyncio.get_running_loop()
        self._started_at = self.clock.now()
        self.clock.add_jump_listener(self._clock_stepped)
        try:
            self.state_dir.mkdir(parents=True, exist_ok=True, mode=0o750)
        except OSError as e:  # a read-only card: the journal keeps events in memory meanwhile
            log.error("cannot create the state directory %s: %s", self.state_dir, e)
        # before anything in the state directory is touched: a second daemon stops here
        # (StateDirLocked), leaving the first one's logbook and socket alone
        self.lock.acquire()
        try:
            await self._start_locked(loop)
        except BaseException:  # e.g. no GPIO: let go of the logbook and the state directory
            self._close_components()
            if self.journal is not None:
                self.journal.close()
                self.journal = None
            self.lock.release()
            raise

    async def _start_locked(self, loop: asyncio.AbstractEventLoop) -> None:
        # group commit: everything journaled in one loop turn is one transaction, made durable
        # by an fsync on a worker thread, so the loop never waits for the disk
        self.journal = Journal(
            self.state_dir / JOURNAL_NAME,
            self.cfg.site.id,
            self.cfg.tz,
            group_commit=True,
            sync_in_background=True,
        )
        self.journal.flush_listeners.append(lambda ok: self._check_journal())
        self.journal.state_provider = self._changed_state
        self._check_secrets()
        self._build_site(loop)
        assert self.hw is not None
        baseline = self.hw.read_inputs()
        saved = self.journal.load_state("engine")
        self._saved_state = saved
        started = self._notice(
            "daemon.started",
            detail={"version": __version__, "simulate": self.simulate, "restored": saved is not None},
            version=__version__,
            sim=" [simulation]" if self.simulate else "",
        )
        self._apply([Emit(started), *self.engine.boot(self.clock.now(), baseline, saved)])
        self._check_journal()  # a logbook that could not even be opened is a trouble now
        self._prune_journal()
        self._start_components(components_for(self.cfg))
        self.control = ControlServer(self.state_dir, self._handlers())
        await self.control.start()
        if self.notifier.enabled:  # systemd's STATUS= line, once per loop turn at most
            self.state_listeners.append(self._status_soon)
        self.notifier.ready(self.summary())
        self.notifier.start_watchdog()
        log.info(
            "officeguard %s started for site %s (%s)",
            __version__,
            self.cfg.site.id,
            "simulation" if self.simulate else "gpio",
        )

    def _check_secrets(self) -> None:
        """At start and reload: secret files open beyond owner and group are logged, and on a
        real site a published example code is a trouble (E300) until it is replaced. Neither
        stops the alarm: the codes still work, the office just hears about it."""
        for finding in loose_secret_files(self.cfg.mqtt):
            log.warning("%s", finding)
        for exposed in exposures(self.cfg.mqtt):
            log.warning("%s: %s", exposed.path, exposed.message)
        self.trouble_board.clear("example_codes")
        examples = [] if self.simulate else example_secrets(self.cfg)
        if examples:
            where = ", ".join(examples)
            log.error(
                "published example codes in use (%s): anyone who has read the documentation "
                "can use them; make new ones with `officeguard hash-code`",
                where,
            )
            self.trouble_board.raise_(
                "example_codes",
                {"source": "config", "cid": "E300", "what": f"published example codes in use ({where})"},
            )

    def _build_site(self, loop: asyncio.AbstractEventLoop) -> None:
        """Access control and devices for the current configuration."""
        saved_lockout = self.journal.load_state("lockout") if self.journal else None
        self._access = AccessService(self.cfg, self.timers, self._record, saved_lockout)
        self._saved_lockout = self._access.gate.lockout.snapshot()
        self.hw = Devices(
            self.cfg, self.clock, loop, simulate=self.simulate, on_change=self._on_sensor
        )

    def _start_components(self, kinds: tuple[type[Component], ...]) -> None:
        """Build and start these components of the registry (once the engine has booted),
        each seeing the hooks from the moment it is built; then the detectors' twins."""
        for kind in kinds:
            comp = kind(self)
            self.components.append(comp)
            comp.start()
        self.components.sort(key=lambda c: position(type(c)))
        if self.hw is not None and self.detector_nodes:
            self.hw.start_detector_nodes()  # simulation: the detectors' heartbeats

    def _close_components(self, keep: bool = False) -> None:
        """Close the components (a reload keeps those that `keeps_on_reload`)."""
        kept = []
        for comp in reversed(self.components):
            if keep and comp.keeps_on_reload:
                kept.append(comp)
            else:
                comp.close()
        self.components = kept[::-1]

    def _close_site(self) -> None:
        if self.hw is not None:
            self.hw.close()
            self.hw = None
        if self._access is not None:
            self._access.close()
            self._access = None

    def reload(self) -> bool:
        """SIGHUP: read the configuration file again. A bad file is refused with all its
        problems and the running configuration stays; a good one is applied keeping the armed
        state, alarms in progress, bypasses and every queued event."""
        loop = asyncio.get_running_loop()
        try:
            loaded = load_config(self.loaded.source)
            if loaded.config.site.id != self.cfg.site.id:
                raise ConfigError(
                    self.loaded.source,
                    [Problem("site.id", "the site id cannot change on a reload (restart instead)")],
                )
        except ConfigError as e:
            log.error("configuration reload refused; the running configuration stays\n%s", e)
            problems = [str(p) for p in e.problems]
            self._record(
                [
                    self._notice(
                        "daemon.reload_refused",
                        detail={"reload": "refused", "problems": problems},
                        n=len(problems),
                    )
                ]
            )
            return False
        snapshot = self.engine.snapshot()
        self._check_secrets()
        self._close_components(keep=True)
        self._close_site()
        self.loaded, self.cfg = loaded, loaded.config
        if self.journal is not None:
            self.journal.tz = self.cfg.tz
        self.engine = Engine(self.cfg)
        self._saved_state = None
        self._build_site(loop)
        assert self.hw is not None
        reloaded = self._notice("daemon.reloaded", cid="E627", detail={"reload": "applied"})
        self._apply(
            [Emit(reloaded), *self.engine.boot(self.clock.now(), self.hw.read_inputs(), snapshot)]
        )
        kept = {type(c) for c in self.components}
        for comp in self.components:
            comp.reload(self.cfg)
        self._start_components(tuple(k for k in components_for(self.cfg) if k not in kept))
        log.info("configuration reloaded from %s", self.loaded.source)
        return True

    def _status_soon(self) -> None:
        if not self._status_due:
            self._status_due = True
            asyncio.get_running_loop().call_soon(self._send_status)

    def _send_status(self) -> None:
        self._status_due = False
        self.notifier.status(self.summary())

    def summary(self) -> str:
        """One line for systemd's STATUS=: zone states, alarms, troubles, outbox."""
        zones = " ".join(f"{z}={self.engine.zone_state(z)}" for z in self.engine.zones)
        troubles = len(self.engine.troubles()) + len(self.trouble_board)
        outbox = self.journal.outbox_depth() if self.journal else 0
        return f"{zones}; troubles {troubles}; outbox {outbox}"

    async def stop(self, reason: str = "stopped") -> None:
        self.clock.remove_jump_listener(self._clock_stepped)
        self.notifier.stopping(f"stopping ({reason})")
        await self.notifier.stop()
        if self.control is not None:
            await self.control.stop()
        self._engine_deadline.cancel()
        for timer in (self._journal_retry, self._prune_timer):
            if timer is not None:
                timer.cancel()
        if self.hw is not None:
            self.hw.safe_state()
        if self.journal is not None:
            self._record([self._notice("daemon.stopped", detail={"reason": reason}, reason=reason)])
        while self.components:  # in reverse: reporting sends the last events before the rest
            await self.components.pop().stop(reason)
        if self.journal is not None:
            self.journal.close()
            self.journal = None
        self._close_site()
        self.timers.close()
        self.lock.release()

    async def run(self) -> int:
        loop = asyncio.get_running_loop()
        for sig, reason in ((signal.SIGTERM, "SIGTERM"), (signal.SIGINT, "SIGINT")):
            with contextlib.suppress(NotImplementedError, RuntimeError):
                loop.add_signal_handler(sig, self.request_stop, reason)
        with contextlib.suppress(NotImplementedError, RuntimeError):
            loop.add_signal_handler(signal.SIGHUP, self.reload)
        await self.start()
        try:
            await self._stop.wait()
        finally:
            await self.stop(self._stop_reason)
        return 0

    def request_stop(self, reason: str = "stopped") -> None:
        self._stop_reason = reason
        self._stop.set()

    # ------------------------------------------------------------------ the core path

    def _on_sensor(self, sensor: str, active: bool, at: Any = None) -> None:
        self.submit(SensorChange(sensor, active))

    def submit(self, inp: Input) -> list[Event]:
        """Feed one input to the engine and carry out what it says."""
        # a sensor's own state is reported (retained topic, status) even without an event
        changed = isinstance(inp, (SensorChange, Bypass))
        events = self._apply(self.engine.handle(inp, self.clock.now()), state_changed=changed)
        for comp in self.components:
            comp.input_submitted(inp)
        return events

    def _clock_stepped(self, delta: timedelta) -> None:
        """NTP or someone stepped the time of day: running delays (exit, entry, siren time)
        keep their length instead of ending at once or stretching, and the logbook says so.
        Called by the clock before any timer fires at the new time."""
        secs = delta.total_seconds()
        log.warning("clock stepped by %+.1f s; running delays keep their length", secs)
        self.engine.clock_stepped(delta)
        if self._access is not None:
            self._access.clock_stepped(delta)
        self._record(
            [self._notice("daemon.clock_stepped", detail={"clock_step_s": secs}, delta=f"{secs:+g} s")]
        )
        self._engine_deadline.reschedule()
        for comp in list(self.components):
            comp.clock_stepped(delta)
        self.timers.reschedule_all()

    def _engine_due(self) -> datetime | None:
        return self.engine.next_due()

    def _on_engine_timer(self) -> None:
        self._apply(self.engine.advance(self.clock.now()))

    def _apply(self, effects: list[Effect], state_changed: bool = False) -> list[Event]:
        for eff in effects:
            if isinstance(eff, SetOutput):
                self._set_output(eff.output, eff.on)
        drafts = [eff.event for eff in effects if isinstance(eff, Emit)]
        events = self._record(drafts)
        self._engine_deadline.reschedule()
        for comp in self.components:
            comp.engine_stepped()
        if drafts or state_changed:
            for comp in self.components:
                comp.state_changed()
            for cb in self.state_listeners:
                cb()
        return events

    def zone_states(self) -> dict[str, str]:
        return {z: self.engine.zone_state(z) for z in self.engine.zones}

    def apply_decision(self, decision: Any) -> bool:
        """Carry out an access decision (arm/disarm zones as a user), unless a component
        claims it (a schedule's pre-arm warning postpones). True when it took effect."""
        for comp in self.components:
            claimed = comp.claim_decision(decision)
            if claimed is not None:
                return claimed
        if decision.kind == "arm":
            events = self.submit(
                Arm(
                    tuple(decision.zones),
                    decision.mode or "away",
                    user=decision.user,
                    source=decision.source,
                )
            )
            return not any(e.kind == "arm_failed" for e in events)
        if decision.kind == "disarm":
            self.submit(Disarm(tuple(decision.zones), user=decision.user, source=decision.source))
            return True
        return False

    def _set_output(self, output: str, on: bool) -> None:
        assert self.hw is not None
        try:
            self.hw.set_output(output, on)
        except Exception as e:  # a relay that cannot be driven is a trouble, never a crash
            log.error("cannot drive output %s: %s", output, e)
            asyncio.get_running_loop().call_soon(self.submit, OutputFault(output, True, str(e)))

    def _record(self, drafts: list[EventDraft]) -> list[Event]:
        """Journal drafts (with the engine's state), then tell the listeners (MQTT outbox...)."""
        assert self.journal is not None
        # the engine's state goes with the events: taken by the journal when it writes them
        # (once per loop turn under group commit); here only when there is no event to carry it
        state = None if drafts else self._changed_state()
        if not drafts and state is None:
            return []
        events = self.journal.append(drafts, state=state)
        self._check_journal()
        for ev in events:
            log.info("event %s %s %s %s", ev.seq, ev.kind, ev.cid or "", ev.text)
        if events:
            for comp in self.components:
                comp.events(events)
        return events

    def _changed_state(self) -> dict[str, Any] | None:
        """What must survive a restart and changed since the journal last took it: the engine
        (armed zones, delays, bypasses) and the wrong-code counts (E461 always has an event)."""
        state: dict[str, Any] = {}
        snapshot = self.engine.snapshot()
        if snapshot != self._saved_state:
            state["engine"] = snapshot
            self._saved_state = snapshot
        if self.access is not None:
            lockout = self.access.gate.lockout.snapshot()
            if lockout != self._saved_lockout:
                state["lockout"] = lockout
                self._saved_lockout = lockout
        return state or None

    def _notice(
        self,
        message: str,
        *,
        kind: str = "system",
        cid: str | None = None,
        detail: dict[str, Any],
        **fields: Any,
    ) -> EventDraft:
        """An event of the controller itself (start, stop, reload, clock, storage), now, with its
        text in the site's language."""
        return EventDraft(
            kind=kind,
            ts=self.clock.now(),
            cid=cid,
            text=texts.render(self.cfg.site.language, message, **fields),
            detail=detail,
        )

    def _check_journal(self) -> None:
        """A logbook that cannot be written is a trouble the office hears about (E300, kept in
        memory and sent like any event), retried every JOURNAL_RETRY on the daemon's clock;
        the restore (R300) follows once the waiting events are on disk."""
        journal = self.journal
        if journal is None:
            return
        err = journal.write_error
        if err is not None and "journal" not in self.trouble_board:
            self.trouble_board.raise_(
                "journal",
                {"source": "journal", "cid": "E300", "what": f"logbook not writable: {err}"},
            )
            self._record(
                [
                    self._notice(
                        "daemon.journal_trouble",
                        kind="trouble",
                        cid="E300",
                        detail={"trouble": "storage", "error": err},
                        error=err,
                    )
                ]
            )
        elif err is None and "journal" in self.trouble_board:
            self.trouble_board.clear("journal")
            self._record(
                [
                    self._notice(
                        "daemon.journal_restore",
                        kind="trouble_restore",
                        cid="R300",
                        detail={"trouble": "storage"},
                    )
                ]
            )
        if journal.write_error is not None and self._journal_retry is None:
            self._journal_retry = self.clock.call_at(
                self.clock.now() + JOURNAL_RETRY, self._retry_journal
            )

    def _retry_journal(self) -> None:
        self._journal_retry = None
        if self.journal is not None:
            self.journal.flush()
            self._check_journal()
            if self.journal.write_error is None:
                self._wake_outbox()

    def _wake_outbox(self) -> None:
        reporting = self.reporting
        if reporting is not None:
            reporting.outbox.wake()

    def _prune_journal(self) -> None:
        """Retention (see docs/storage.md): at start and once a day on the daemon's clock."""
        self._prune_timer = None
        if self.journal is not None:
            try:
                removed = self.journal.prune(self.clock.now())
            except Exception:  # upkeep must never take the alarm down
                log.exception("logbook pruning failed")
                removed = 0
            if removed:
                log.info("logbook retention: %d old delivered event(s) removed", removed)
        self._prune_timer = self.clock.call_at(self.clock.now() + PRUNE_EVERY, self._prune_journal)

    # ------------------------------------------------------------------ status

    def troubles(self) -> list[Trouble]:
        """Every trouble now: the engine's, the components' and the trouble board's."""
        return (
            self.engine.troubles()
            + [t for comp in self.components for t in comp.troubles()]
            + list(self.trouble_board)
        )

    def status(self) -> dict[str, Any]:
        st = self.engine.status()
        outputs = dict(st["outputs"])
        if self.hw is not None:
            outputs.update(self.hw.output_states())
        status: dict[str, Any] = {
            "site": self.cfg.site.id,
            "name": self.cfg.site.name,
            "version": __version__,
            "time": self.clock.now().astimezone(self.cfg.tz).isoformat(timespec="seconds"),
            "simulate": self.simulate,
            "virtual_clock": self.clock.virtual,
            "zones": st["zones"],
            "sensors": st["sensors"],
            "outputs": outputs,
            "troubles": self.troubles(),
            "detectors": {},
            "outbox": self.journal.outbox_depth() if self.journal else None,
            "unwritten": self.journal.unwritten if self.journal else None,
            "last_seq": self.journal.last_seq() if self.journal else None,
            "broker": {"connected": self.broker_connected, "url": self.cfg.mqtt.url},
            "commands": None,
        }
        for comp in self.components:  # a component's entries keep the places shown above
            status.update(comp.status() or {})
        return status

    # ------------------------------------------------------------------ control socket

    def _handlers(self) -> dict[str, Any]:
        return {
            "status": self._h_status,
            "arm": self._h_arm,
            "disarm": self._h_disarm,
            "bypass": self._h_bypass,
            "silence": self._h_silence,
            "sim.set": self._h_sim_set,
            "sim.pulse": self._h_sim_pulse,
            "sim.advance": self._h_sim_advance,
            "sim.keys": self._h_sim_keys,
            "sim.serial": self._h_sim_serial,
            "sim.outputs": self._h_sim_outputs,
            "sim.heartbeat": self._h_sim_heartbeat,
            "sim.badge": self._h_sim_badge,
            "sim.checkpoint": self._h_sim_checkpoint,
            "sim.wiring": self._h_sim_wiring,
            "sim.power": self._h_sim_power,
        }

    async def _h_status(self, req: dict[str, Any]) -> dict[str, Any]:
        return {"status": self.status()}

    def _refusal(self, reason: str, **fields: Any) -> ControlError:
        """A refusal in the site's language (controller/refusals.py)."""
        return refusal(self.cfg.site.language, reason, **fields)

    def _zones_arg(self, req: dict[str, Any]) -> tuple[str, ...]:
        zones = req.get("zones")
        if not isinstance(zones, list) or not zones or not all(isinstance(z, str) for z in zones):
            raise self._refusal("no_zone")
        unknown = [z for z in zones if z not in self.engine.zones]
        if unknown:
            raise self._refusal(
                "unknown_zone", name=", ".join(unknown), known=", ".join(self.engine.zones)
            )
        return tuple(zones)

    def _sensor_arg(self, req: dict[str, Any]) -> str:
        sensor = req.get("sensor")
        if not isinstance(sensor, str) or sensor not in self.engine.sensors:
            raise self._refusal(
                "unknown_sensor", name=repr(sensor), known=", ".join(self.engine.sensors)
            )
        return sensor

    async def operate(
        self, cmd: Command, channel: str, source: str | None = None
    ) -> dict[str, Any]:
        """Arm, disarm, bypass, unbypass or silence for a user whose code is checked here, with
        the same permissions, lockout (one counter per `source`: a socket user, a signing key,
        unsigned MQTT; the channel when not given) and duress rules as the keypad.
        Used by the local CLI and by remote commands. A refusal raises ControlError with the
        reason in the site's language, never with the code. An empty or missing code is no
        code: refused and logged, but not a wrong code toward the lockout."""
        if cmd.action in ("bypass", "unbypass"):
            sensor = self._sensor_arg({"sensor": cmd.sensor})
            zones: tuple[str, ...] = (self.cfg.sensor(sensor).zone,)
        else:
            zones = self._zones_arg({"zones": list(cmd.zones)})
        # bypassing needs the right to arm the zone; silencing the right to disarm it
        access_action: Action = "arm" if cmd.action in ("arm", "bypass", "unbypass") else "disarm"
        # the command's mode was checked when it was parsed (controller/remote/commands.py)
        mode = cast(Mode | None, (cmd.mode or "away") if cmd.action == "arm" else None)
        source = source or channel
        if not cmd.code:
            self.access.refuse("no_code", source, channel, zones)
            raise self._refusal("no_code")
        attempt = Attempt(
            source=source,
            zones=zones,
            action=access_action,
            mode=mode,
            channel=channel,
        )
        decision = await self.access.check(attempt, cmd.code, self.zone_states())
        if not decision.ok:
            reason = decision.reason or "wrong_code"
            if decision.locked_until is not None:
                until = decision.locked_until.astimezone(self.cfg.tz).strftime("%H:%M:%S")
                raise self._refusal("locked_out", until=until)
            if reason == "not_permitted":
                raise self._refusal(reason, user=decision.user or "?", zones=", ".join(zones))
            raise self._refusal(reason)
        user = decision.user
        if cmd.action == "arm":
            events = self.submit(
                Arm(zones, mode or "away", user=user, source=channel, force=cmd.force)
            )
            failed = [e.text for e in events if e.kind == "arm_failed"]
            if failed:
                raise self._refusal("arm_failed", why="; ".join(failed))
        elif cmd.action == "disarm":
            self.submit(Disarm(zones, user=user, source=channel))
        elif cmd.action == "silence":
            self.submit(Silence(zones, user=user, source=channel))
        else:
            assert cmd.sensor is not None
            self.submit(Bypass(cmd.sensor, cmd.action == "bypass", user=user, source=channel))
            return {"sensor": cmd.sensor, "bypassed": self.engine.sensors[cmd.sensor].bypassed}
        return {"zones": {z: self.engine.zone_state(z) for z in zones}}

    @staticmethod
    def _cli_source(req: dict[str, Any]) -> str:
        """The lockout source of a local command: each socket user their own."""
        peer = req.get(PEER)
        return f"cli:{peer}" if isinstance(peer, str) else "cli"

    @staticmethod
    def _cli_command(req: dict[str, Any], action: str) -> Command:
        zones = req.get("zones")
        return Command(
            id=None,
            action=action,  # type: ignore[arg-type]
            zones=tuple(zones) if isinstance(zones, list) else (),
            mode=req.get("mode", "away") if action == "arm" else None,
            sensor=req.get("sensor"),
            force=bool(req.get("force")),
            code=req.get("code"),
        )

    async def _h_arm(self, req: dict[str, Any]) -> dict[str, Any]:
        if req.get("mode", "away") not in ("away", "home", "night"):
            raise self._refusal("bad_mode")
        return await self.operate(self._cli_command(req, "arm"), "cli", self._cli_source(req))

    async def _h_disarm(self, req: dict[str, Any]) -> dict[str, Any]:
        return await self.operate(self._cli_command(req, "disarm"), "cli", self._cli_source(req))

    async def _h_bypass(self, req: dict[str, Any]) -> dict[str, Any]:
        action = "bypass" if req.get("bypass", True) else "unbypass"
        return await self.operate(self._cli_command(req, action), "cli", self._cli_source(req))

    async def _h_silence(self, req: dict[str, Any]) -> dict[str, Any]:
        res = await self.operate(self._cli_command(req, "silence"), "cli", self._cli_source(req))
        return {**res, "outputs": dict(self.engine.outputs)}

    def _need_sim(self) -> None:
        if not self.sim_commands:
            raise self._refusal("not_simulated")

    async def _settle(self) -> None:
        """Let pin callbacks handed over with call_soon_threadsafe run before replying."""
        for _ in range(3):
            await asyncio.sleep(0)

    def _detector_arg(self, req: dict[str, Any]) -> str:
        det = req.get("detector")
        if not isinstance(det, str) or det not in self.detectors:
            raise self._refusal("unknown_detector", name=repr(det), known=", ".join(self.detectors))
        return det

    async def _h_sim_set(self, req: dict[str, Any]) -> dict[str, Any]:
        self._need_sim()
        sensor = self._sensor_arg(req)
        state = req.get("state")
        if state not in ("active", "inactive"):
            raise self._refusal("bad_state")
        assert self.hw is not None
        await self.hw.sim_set(sensor, state == "active")
        return {"sensor": sensor, "active": self.engine.sensors[sensor].active}

    async def _h_sim_pulse(self, req: dict[str, Any]) -> dict[str, Any]:
        self._need_sim()
        sensor = self._sensor_arg(req)
        count = req.get("count", 1)
        interval = req.get("interval", 0.3)
        if not isinstance(count, int) or not 1 <= count <= 1000:
            raise self._refusal("bad_count")
        if not isinstance(interval, int | float) or not 0.001 <= interval <= 3600:
            raise self._refusal("bad_interval")
        assert self.hw is not None
        await self.hw.sim_pulse(sensor, count=count, interval=float(interval))
        return {"sensor": sensor, "count": count}

    async def _h_sim_keys(self, req: dict[str, Any]) -> dict[str, Any]:
        self._need_sim()
        assert self.hw is not None and self.hw.sim is not None
        keypad, keys = req.get("keypad"), req.get("keys")
        if not isinstance(keypad, str) or keypad not in self.keypads:
            raise self._refusal("unknown_keypad", name=repr(keypad), known=", ".join(self.keypads))
        if not isinstance(keys, str) or not keys or len(keys) > 64:
            raise self._refusal("bad_keys")
        layout = "".join(self.hw.sim.keypad(keypad).layout)
        missing = next((k for k in keys if k not in layout), None)
        if missing is not None:  # checked before any key is pressed
            raise self._refusal("no_such_key", keypad=keypad, name=repr(missing), known=layout)
        await self.hw.sim_keys(keypad, keys)
        keypads = self.component(Keypads)
        if keypads is not None:
            await keypads.idle(keypad)
        await self._settle()
        return {"keypad": keypad, "pressed": len(keys)}

    async def _serial_caught_up(self, marks: dict[str, tuple[int, int]]) -> None:
        """Wait until each detector's reader has read what was written into its pty since
        `marks` ({detector: (reader bytes in, bytes written)}), so a line is handled at the
        virtual time it was sent. Bounded: a reader that is not reading is not waited for."""
        for det, (bytes_in, written) in marks.items():
            station = self.detectors.get(det)
            if station is None:
                continue
            want = bytes_in + self._serial_written(det) - written
            for i in range(400):
                if station.reader.bytes_in >= want or not station.reader.is_open:
                    break
                await asyncio.sleep(0 if i < 50 else 0.005)

    def _serial_written(self, det: str) -> int:
        sim = self.hw.sim if self.hw is not None else None
        port = sim.serial.get(det) if sim is not None else None
        return port.written if port is not None else 0

    def _serial_marks(self) -> dict[str, tuple[int, int]]:
        return {
            det: (station.reader.bytes_in, self._serial_written(det))
            for det, station in self.detectors.items()
        }

    async def _h_sim_serial(self, req: dict[str, Any]) -> dict[str, Any]:
        self._need_sim()
        assert self.hw is not None
        det, line = self._detector_arg(req), req.get("line")
        if not isinstance(line, str) or len(line) > 4096:
            raise self._refusal("bad_line")
        data = line.encode("utf-8", "surrogateescape").rstrip(b"\n") + b"\n"
        marks = self._serial_marks()
        self.hw.sim_serial(det, data)
        await self._serial_caught_up(marks)  # the real reader picks it up from the pty
        await self._settle()
        return {"detector": det, "bytes": len(data)}

    async def _h_sim_heartbeat(self, req: dict[str, Any]) -> dict[str, Any]:
        self._need_sim()
        assert self.hw is not None
        det, state = self._detector_arg(req), req.get("state")
        if state not in ("on", "off") or det not in self.hw.detector_nodes:
            raise self._refusal("bad_switch")
        self.hw.sim_heartbeat(det, state == "on")
        return {"detector": det, "heartbeat": state}

    def _checkpoint_arg(self, req: dict[str, Any], kind: str) -> tuple[Patrols, str]:
        patrols = self.component(Patrols)
        cp = req.get("checkpoint")
        known = [c.id for c in self.cfg.checkpoints if c.kind == kind]
        if patrols is None or not isinstance(cp, str) or cp not in patrols.twins or cp not in known:
            raise self._refusal("unknown_checkpoint", name=repr(cp), known=", ".join(known))
        return patrols, cp

    async def _h_sim_badge(self, req: dict[str, Any]) -> dict[str, Any]:
        """A badge presented at a simulated reader; the number is never echoed."""
        self._need_sim()
        patrols, cp = self._checkpoint_arg(req, "badge")
        number, garble = req.get("number"), req.get("garble")
        if not isinstance(number, int) or isinstance(number, bool) or not 0 <= number < 2**32:
            raise self._refusal("bad_badge")
        if garble not in (None, "parity", "length"):
            raise self._refusal("bad_badge")
        await patrols.sim_badge(cp, number, garble)
        return {"checkpoint": cp, "counts": patrols.counts[cp]}

    async def _h_sim_checkpoint(self, req: dict[str, Any]) -> dict[str, Any]:
        self._need_sim()
        patrols, cp = self._checkpoint_arg(req, "button")
        await patrols.sim_press(cp)
        return {"checkpoint": cp, "counts": patrols.counts[cp]}

    async def _h_sim_wiring(self, req: dict[str, Any]) -> dict[str, Any]:
        """A supervised loop's twin: normal, alarm, cut, short, or a voltage."""
        self._need_sim()
        assert self.hw is not None
        sensor = self._sensor_arg(req)
        volts = sim_loop_volts(self.cfg, sensor, req.get("state"))
        await self.hw.sim_wiring(sensor, volts)
        await self._settle()
        sup = self.component(Supervision)
        state = sup.loop_state(sensor) if sup is not None else "unknown"
        return {"sensor": sensor, "volts": volts, "state": state}

    async def _h_sim_power(self, req: dict[str, Any]) -> dict[str, Any]:
        """Mains on/off, the battery's volts, a siren line ok/open/short, the ADC on/off."""
        self._need_sim()
        assert self.hw is not None
        what, value = req.get("what"), req.get("value")
        mains = self.cfg.power.mains if self.cfg.power is not None else None
        if what == "adc" and value in ("on", "off") and self.hw.sim_adc is not None:
            await self.hw.sim_adc_plugged(value == "on")
        elif what == "mains" and value in ("on", "off") and mains is not None and mains.pin is not None:
            await self.hw.sim_mains_pin(value == "on")
        else:
            channel, volts = sim_power_volts(self.cfg, what, value, req.get("siren"))
            await self.hw.sim_channel(channel, volts)
        await self._settle()
        return {"what": what, "value": value}

    async def _h_sim_advance(self, req: dict[str, Any]) -> dict[str, Any]:
        self._need_sim()
        if not isinstance(self.clock, VirtualClock):
            raise self._refusal("no_virtual_clock")
        try:
            delta = parse_duration(req.get("duration"))
        except ValueError:
            raise self._refusal("bad_duration", value=repr(req.get("duration"))) from None
        if delta > MAX_ADVANCE:
            raise self._refusal("advance_too_long", days=MAX_ADVANCE.days)
        fired = await self._advance(self.clock, delta)
        await self._settle()
        return {
            "now": self.clock.now().astimezone(self.cfg.tz).isoformat(timespec="seconds"),
            "timers": fired,
        }

    async def _advance(self, clock: VirtualClock, delta: timedelta) -> int:
        """Move the virtual clock timer by timer, in order, and give the loop a turn after
        each: lines the simulated detectors wrote are read at the time they were sent, and the
        loop keeps serving (status, MQTT) however far the clock goes. Advances queue up."""
        async with self._advancing:
            target = clock.now() + delta
            fired = 0
            while True:
                due = clock.next_due()
                if due is None or due > target:
                    break
                marks = self._serial_marks()
                fired += clock.advance_to(due)
                await self._serial_caught_up(marks)
                await asyncio.sleep(0)
            return fired + clock.advance_to(target)

    async def _h_sim_outputs(self, req: dict[str, Any]) -> dict[str, Any]:
        self._need_sim()
        assert self.hw is not None
        return {"outputs": self.hw.sim_outputs()}


def default_state_dir(cfg: SiteConfig | None) -> str:
    return os.environ.get("OFFICEGUARD_STATE_DIR") or (
        cfg.state_dir if cfg and cfg.state_dir else DEFAULT_STATE_DIR
    )
