"""The port: what a component of the daemon may ask of the site, and nothing more.

Components (keypads, schedules, drone detectors, reporting, the self-test) get a `Site`, never
the daemon, so none of them imports the daemon and each is unit-tested with a fake site
(tests/fake_site.py). The daemon is the one implementation that runs. Troubles that are not
the engine's (the logbook, the broker link, a command key, example codes) go on the
`TroubleBoard`, raised and cleared by whoever finds them.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Iterator, Mapping
from datetime import datetime
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    from controller.access.service import AccessService
    from controller.clock import Clock
    from controller.config import SiteConfig
    from controller.engine import Input
    from controller.engine.model import SensorState, ZoneState
    from controller.events import Event, EventDraft
    from controller.journal import Journal
    from controller.remote.commands import Command
    from controller.timers import TimerDriver
    from hardware import Buzzer

Trouble = dict[str, Any]  # {"source", "cid", "what", ...} as status and MQTT show it


class TroubleBoard:
    """The site's own troubles, one per key (E300 storage, E350 broker link...), in the order
    they were raised. Raising a key again replaces its trouble; clearing an absent one is a
    no-op, so a check can clear before it looks again."""

    def __init__(self) -> None:
        self._troubles: dict[str, Trouble] = {}

    def raise_(self, key: str, trouble: Trouble) -> None:
        self._troubles[key] = trouble

    def clear(self, key: str) -> None:
        self._troubles.pop(key, None)

    def __contains__(self, key: object) -> bool:
        return key in self._troubles

    def __len__(self) -> int:
        return len(self._troubles)

    def __iter__(self) -> Iterator[Trouble]:
        return iter(list(self._troubles.values()))


class EngineView(Protocol):
    """The engine as a component may read it (never drive it: that is `Site.submit`)."""

    @property
    def zones(self) -> Mapping[str, ZoneState]: ...

    @property
    def sensors(self) -> Mapping[str, SensorState]: ...

    def zone_state(self, zone: str) -> str: ...

    def zone_report(self, zone: str) -> dict[str, Any]: ...

    def sensor_report(self, sensor: str) -> dict[str, bool]: ...

    def troubles(self) -> list[Trouble]: ...

    @property
    def outputs(self) -> Mapping[str, bool]:
        """Each siren on or off, as the engine drives it."""
        ...


class Analog(Protocol):
    """The ADC's channels in use (hardware.adc.AdcReader): volts per channel, or a
    `HardwareError` when the chip does not answer."""

    def read_all(self, only: Collection[int] | None = None) -> dict[int, float]:
        """Every channel in use, or only these of them."""


class Site(Protocol):
    """What a component may ask of the site it runs in."""

    @property
    def clock(self) -> Clock:
        """The daemon's clock: every time a component reads or waits for comes from it."""
        ...

    @property
    def config(self) -> SiteConfig:
        """The configuration now (a reload replaces it; `Component.reload` is told)."""
        ...

    @property
    def engine(self) -> EngineView: ...

    @property
    def timers(self) -> TimerDriver:
        """The one timer driver: a component's next deadline goes through it."""
        ...

    @property
    def trouble_board(self) -> TroubleBoard: ...

    @property
    def logbook(self) -> Journal:
        """The journal, for what a component keeps across restarts (`load_state`/`save_state`)
        and for reporting's outbox; events go in through `record`."""
        ...

    @property
    def access(self) -> AccessService:
        """Code checks, shared by keypads, the CLI and remote commands (one lockout each)."""
        ...

    def submit(self, inp: Input) -> list[Event]:
        """Feed one input to the engine; outputs, logbook and reporting follow."""
        ...

    def record(self, drafts: list[EventDraft]) -> list[Event]:
        """Journal events from outside the engine, then report them."""
        ...

    def zone_states(self) -> dict[str, str]: ...

    def troubles(self) -> list[Trouble]:
        """Every trouble now: the engine's, the components' and the board's."""
        ...

    def apply_decision(self, decision: Any) -> bool:
        """Carry out a keypad's accepted code (arm/disarm, or a component claims it: a code
        during a schedule's pre-arm warning postpones it). True when it took effect."""
        ...

    async def operate(
        self, cmd: Command, channel: str, source: str | None = None
    ) -> dict[str, Any]:
        """Arm/disarm/bypass/silence for a user whose code is checked here (CLI, MQTT);
        `source` is the lockout's count (a keypad, a socket user, signed or unsigned MQTT),
        the channel by default."""
        ...

    def component_status(self, key: str) -> Any:
        """The entry `key` of the status the components give (reporting reads "detectors"),
        None when no component gives it."""
        ...

    def buzzer(self, keypad: str) -> Buzzer | None: ...

    @property
    def pin_factory(self) -> Any:
        """The gpiozero pin factory the site's devices use (mock pins in simulation), for a
        component with pins of its own (patrol checkpoints); None when there are no devices."""
        ...

    def serial_port(self, detector: str, path: str) -> str:
        """The device a drone detector's reader opens (its pty in simulation)."""
        ...

    def listen_keys(self, handler: Callable[[str, str, datetime], None]) -> None:
        """Have every key pressed on a keypad, `handler(keypad, key, at)`."""
        ...

    def started_at(self) -> datetime:
        """When the daemon started (uptime for the heartbeat and the self-test)."""
        ...

    def power_input(self, name: str) -> bool | None:
        """A power input wired to a pin (`@mains`: True while mains is present), None if the
        config reads it from an ADC channel or not at all."""
        ...

    def analog(self) -> Analog | None:
        """The ADC of supervised loops and power (controller/supervision/); None without an
        `adc` section or when it could not be opened."""
        ...
