"""A fake of the port components get (controller/site.py), for unit tests of one component.

It runs a real engine and a real logbook (in a temporary directory) on a virtual clock, so a
component under test sees the same answers as in the daemon, but nothing else runs: no
devices, no broker, no other component. What the component asked for is kept in lists the
tests read (`submitted`, `recorded`, `decisions`), and buzzers are recorders.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from controller.access.service import AccessService
from controller.clock import VirtualClock
from controller.config import SiteConfig
from controller.engine import Arm, Disarm, Emit, Engine, Input
from controller.events import Event, EventDraft
from controller.journal import Journal
from controller.remote.commands import Command
from controller.site import Trouble, TroubleBoard
from controller.timers import TimerDriver

T0 = datetime(2026, 3, 4, 11, 0, tzinfo=UTC)  # 18:00 in Hanoi, a Wednesday


class FakeBuzzer:
    """Records what a component asked the buzzer to do."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, Any]] = []

    def play(self, sound: str) -> None:
        self.calls.append(("play", sound))

    def start_delay_beeps(self, until: datetime) -> None:
        self.calls.append(("delay", until))

    def start_prearm_beeps(self, until: datetime) -> None:
        self.calls.append(("prearm", until))

    def stop(self) -> None:
        self.calls.append(("stop", None))


class FakeSite:
    """The port, with a real engine and logbook on a virtual clock and nothing else."""

    def __init__(self, cfg: SiteConfig, state_dir: Path, start: datetime = T0) -> None:
        self.clock = VirtualClock(start)
        self.config = cfg
        self.timers = TimerDriver(self.clock)
        self.trouble_board = TroubleBoard()
        self.engine = Engine(cfg)
        self.engine.boot(start, {s.id: False for s in cfg.sensors}, None)
        self.logbook = Journal(state_dir / "journal.db", cfg.site.id, cfg.tz)
        self.access = AccessService(cfg, self.timers, self.record)
        self.submitted: list[Input] = []
        self.recorded: list[Event] = []
        self.decisions: list[Any] = []
        self.operated: list[tuple[Command, str]] = []
        self.sources: list[str] = []  # the lockout source each command was counted under
        self.buzzers: dict[str, FakeBuzzer] = {
            k.id: FakeBuzzer() for k in cfg.keypads if k.buzzer is not None
        }
        self.key_handler: Callable[[str, str, datetime], None] | None = None
        self.statuses: dict[str, Any] = {}
        self.ports: dict[str, str] = {}
        self.pin_factory: Any = None  # no pins: a component's drivers stay closed
        self.adc: Any = None  # what `analog()` hands out (a simulated ADC's reader)
        self.power_inputs: dict[str, bool] = {}  # what `power_input()` says (the mains pin)

    def close(self) -> None:
        self.access.close()
        self.timers.close()
        self.logbook.close()

    def advance(self, delta: timedelta) -> None:
        self.clock.advance(delta)

    # ------------------------------------------------------------------ the port

    def submit(self, inp: Input) -> list[Event]:
        self.submitted.append(inp)
        effects = self.engine.handle(inp, self.clock.now())
        return self.record([e.event for e in effects if isinstance(e, Emit)])

    def record(self, drafts: list[EventDraft]) -> list[Event]:
        events = self.logbook.append(drafts) if drafts else []
        self.recorded += events
        return events

    def zone_states(self) -> dict[str, str]:
        return {z: self.engine.zone_state(z) for z in self.engine.zones}

    def troubles(self) -> list[Trouble]:
        return self.engine.troubles() + list(self.trouble_board)

    def apply_decision(self, decision: Any) -> bool:
        self.decisions.append(decision)
        zones = tuple(decision.zones)
        if decision.kind == "arm":
            self.submit(Arm(zones, decision.mode or "away", user=decision.user))
        elif decision.kind == "disarm":
            self.submit(Disarm(zones, user=decision.user))
        return True

    async def operate(
        self, cmd: Command, channel: str, source: str | None = None
    ) -> dict[str, Any]:
        self.operated.append((cmd, channel))
        self.sources.append(source or channel)
        return {"zones": {z: "armed_away" for z in cmd.zones}}

    def component_status(self, key: str) -> Any:
        return self.statuses.get(key)

    def buzzer(self, keypad: str) -> FakeBuzzer | None:
        return self.buzzers.get(keypad)

    def serial_port(self, detector: str, path: str) -> str:
        return self.ports.get(detector, path)

    def listen_keys(self, handler: Callable[[str, str, datetime], None]) -> None:
        self.key_handler = handler

    def started_at(self) -> datetime:
        return T0

    def analog(self) -> Any:
        return self.adc

    def power_input(self, name: str) -> bool | None:
        return self.power_inputs.get(name)

    # the recorded events, in short
    def kinds(self) -> list[str]:
        return [e.kind for e in self.recorded]

    def cids(self) -> list[str | None]:
        return [e.cid for e in self.recorded]
