"""The daemon's components, in the order it starts them (and stops them in reverse).

Adding a component is its package and one line here; the daemon walks this list for every
step of the lifecycle (controller/component.py) and never names a component itself, except
for the simulator's handlers that press keys and write detector lines.

A component that only a site configured for it needs (cameras, a receiving centre) is imported
only then: their libraries (httpx, cryptography) cost a Pi ~25 MB of memory and ~0.2 s of start
that a site without them should not pay (docs/capacity.md).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from importlib import import_module
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from controller.component import Component
    from controller.config import SiteConfig


def _always(cfg: SiteConfig) -> bool:
    return True


@dataclass(frozen=True)
class Registered:
    """One component: where its class lives, and whether a site's config needs it."""

    module: str
    cls: str
    wanted: Callable[[SiteConfig], bool] = _always

    def load(self) -> type[Component]:
        kind: type[Component] = getattr(import_module(self.module), self.cls)
        return kind


REGISTRY: tuple[Registered, ...] = (
    Registered("controller.keypad.component", "Keypads"),
    Registered("controller.schedule.component", "ScheduleService"),
    Registered("controller.drone.component", "DroneDetectors"),
    Registered("controller.patrol.component", "Patrols"),
    Registered("controller.supervision.component", "Supervision"),
    Registered("controller.reporting.component", "Reporting"),
    Registered("controller.dc09.component", "Dc09Reporting", lambda cfg: cfg.dc09 is not None),
    # after reporting: the alarm is on its way before a snapshot is asked for
    Registered("controller.camera.component", "Cameras", lambda cfg: bool(cfg.cameras)),
    Registered("controller.selftest", "SelfTest"),
)


def components_for(cfg: SiteConfig) -> tuple[type[Component], ...]:
    """The components this site's configuration needs, in the registry's order."""
    return tuple(r.load() for r in REGISTRY if r.wanted(cfg))


def all_components() -> tuple[type[Component], ...]:
    """Every registered component (imports them all: for checks, not for the daemon)."""
    return tuple(r.load() for r in REGISTRY)


def position(kind: type[Component]) -> int:
    """Where a component stands in the registry's order (the daemon keeps its list sorted)."""
    for i, r in enumerate(REGISTRY):
        if (r.module, r.cls) == (kind.__module__, kind.__name__):
            return i
    return len(REGISTRY)
