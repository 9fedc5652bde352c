"""Which events take snapshots, from which cameras, and when: pure functions of the event and
the config, no I/O.

An alarm-class event is one the security office must look at: an alarm, a tamper, a duress
code, a drone first heard (not its position updates) and a missed patrol round. A camera takes
a burst for it when it looks at the event's zone, its sensor, its drone detector or its patrol
checkpoint. A burst is `burst` snapshots, the first at once, then one every `interval`, on the
daemon's clock.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from controller.config import Camera
    from controller.events import Event

ALARM_KINDS = frozenset({"alarm", "tamper", "duress", "drone"})
# a missed patrol round (controller/patrol/, landing separately) is an alarm-class event too:
# whatever kind it gets, it names its checkpoint in `detail.checkpoint`
CHECKPOINT_KEY = "checkpoint"


def is_alarm_class(event: Event) -> bool:
    if event.kind == "drone":
        return not event.detail.get("update")  # the first report, not every position
    return event.kind in ALARM_KINDS or (
        event.detail.get("missed") is True and CHECKPOINT_KEY in event.detail
    )


def looks_at(cam: Camera, event: Event) -> bool:
    """Whether `cam` watches where `event` happened."""
    if event.zone is not None and event.zone in cam.zones:
        return True
    if event.sensor is not None and (event.sensor in cam.sensors or event.sensor in cam.detectors):
        return True
    checkpoint = event.detail.get(CHECKPOINT_KEY)
    return isinstance(checkpoint, str) and checkpoint in cam.checkpoints


def cameras_for(event: Event, cameras: list[Camera]) -> list[Camera]:
    """The cameras that take a burst for `event` (none unless it is alarm-class)."""
    if not is_alarm_class(event):
        return []
    return [c for c in cameras if looks_at(c, event)]


def plan(start: datetime, count: int, interval: timedelta) -> list[datetime]:
    """When the snapshots of a burst are due: at `start`, then every `interval`."""
    return [start + i * interval for i in range(count)]


@dataclass
class Burst:
    """One camera's snapshots for one event, as they come in."""

    event_id: str
    event_seq: int
    camera: str
    zone: str | None
    sensor: str | None
    due: list[datetime]  # snapshots not started yet, soonest first
    taken: list[dict[str, Any]] = field(default_factory=list)  # references, in order
    failed: list[dict[str, Any]] = field(default_factory=list)  # {"n", "reason"}
    running: int = 0

    @property
    def done(self) -> bool:
        return not self.due and self.running == 0

    def next_index(self, total: int) -> int:
        return total - len(self.due)

    def shift(self, delta: timedelta) -> None:
        self.due = [t + delta for t in self.due]

    def detail(self) -> dict[str, Any]:
        """The `snapshot` event's detail: which event, which camera, each image's reference."""
        return {
            "event": self.event_id,
            "event_seq": self.event_seq,
            "camera": self.camera,
            "images": sorted(self.taken, key=lambda r: r["n"]),
            "failed": sorted(self.failed, key=lambda r: r["n"]),
        }
