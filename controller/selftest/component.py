"""The periodic self-test: every `site.self_test` (off by default) the controller journals and
reports "controller alive" with its uptime, Contact ID E602 (periodic test report), so a
central station that expects a test at that interval notices a controller that went quiet
even where it does not watch the MQTT heartbeat (which is no event and is not kept).

E602 and not R602: a periodic test is a report of its own, not the end of anything; the
number of standing troubles goes with it in `detail`. The interval is kept across a clock
step (the next test moves with the time of day) and restarts from a reload.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from controller import texts
from controller.component import Component
from controller.config import format_duration
from controller.events import EventDraft

if TYPE_CHECKING:
    from controller.site import Site

texts.register(
    {
        "selftest.alive": {
            "vi": "Tự kiểm tra định kỳ: bộ điều khiển hoạt động (đã chạy {uptime})",
            "en": "Periodic test: controller alive (up {uptime})",
        },
    }
)


class SelfTest(Component):
    """Sends E602 every `site.self_test` while the daemon runs."""

    name = "self_test"

    def __init__(self, site: Site) -> None:
        super().__init__(site)
        self.every = site.config.site.self_test
        self.next_at: datetime | None = None
        self.sent = 0
        self._deadline = site.timers.deadline(self._due, self._test)

    def _due(self) -> datetime | None:
        return self.next_at

    def start(self) -> None:
        if self.every > timedelta(0):
            self.next_at = self.site.clock.now() + self.every
            self._deadline.reschedule()

    def clock_stepped(self, delta: timedelta) -> None:
        if self.next_at is not None:
            self.next_at += delta  # the interval keeps its length

    def _test(self) -> None:
        site = self.site
        now = site.clock.now()
        up = now - site.started_at()
        uptime = format_duration(timedelta(seconds=int(up.total_seconds())))
        troubles = len(site.troubles())
        text = texts.render(site.config.site.language, "selftest.alive", uptime=uptime)
        detail = {"self_test": "periodic", "uptime_s": int(up.total_seconds()), "troubles": troubles}
        site.record([EventDraft(kind="system", ts=now, cid="E602", text=text, detail=detail)])
        self.sent += 1
        self.next_at = now + self.every
        self._deadline.reschedule()

    def status(self) -> dict[str, Any] | None:
        if self.next_at is None:
            return None
        return {"self_test": {"next": self.next_at.isoformat(), "sent": self.sent}}

    def close(self) -> None:
        self._deadline.cancel()
