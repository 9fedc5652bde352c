"""The one lifecycle every component of the daemon follows, and the hooks the daemon calls.

A component is built with the site's port (controller/site.py), started once the engine has
booted, told about a reload, a clock step and the site's events, asked for its status and
troubles, and stopped. The daemon walks the registry (controller/registry.py) in order for
each of these, so adding a component is its package plus one line there.
"""

from __future__ import annotations

from datetime import timedelta
from typing import TYPE_CHECKING, Any, ClassVar

if TYPE_CHECKING:
    from controller.config import SiteConfig
    from controller.engine import Input
    from controller.events import Event
    from controller.site import Site, Trouble


class Component:
    """Base of every component: each hook does nothing until a component needs it."""

    name: ClassVar[str]  # how the daemon's sim handlers and the tests find it
    # a reload keeps this component and calls its reload(); else it is closed before the
    # devices are rebuilt and built again after (its ports and buzzers are new)
    keeps_on_reload: ClassVar[bool] = False

    def __init__(self, site: Site) -> None:
        self.site = site

    def start(self) -> None:
        """The engine has booted: open ports, catch up, set deadlines."""

    def reload(self, config: SiteConfig) -> None:
        """The configuration was reloaded and the engine booted on it; only called when
        `keeps_on_reload` (the others are closed before and built again after)."""

    def close(self) -> None:
        """Let go of timers, tasks and ports at once (a reload, or the end of `stop`)."""

    async def stop(self, reason: str) -> None:
        """The daemon stops (`reason` as the logbook says it)."""
        self.close()

    def status(self) -> dict[str, Any] | None:
        """Its entries in the daemon's status (`{"detectors": {...}}`), or None for none."""
        return None

    def troubles(self) -> list[Trouble]:
        """Its troubles now (besides what it put on the trouble board)."""
        return []

    def clock_stepped(self, delta: timedelta) -> None:
        """The time of day stepped by `delta`; the timer driver sets every deadline again
        after this."""

    def engine_stepped(self) -> None:
        """The engine took an input or a timer (keypads follow the exit and entry delays)."""

    def input_submitted(self, inp: Input) -> None:
        """An input went to the engine (schedules remember manual arming)."""

    def claim_decision(self, decision: Any) -> bool | None:
        """A keypad's accepted code is about to arm or disarm: None lets it; a bool takes it
        over and says whether it took effect (a schedule's pre-arm warning postpones)."""
        return None

    def events(self, events: list[Event]) -> None:
        """Events were journaled (reporting sends them)."""

    def state_changed(self) -> None:
        """The site's state changed (a zone, a sensor, a trouble): reporting publishes it."""
