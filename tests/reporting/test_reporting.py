"""Retained state topics (controller/reporting/component.py) on the daemon's virtual clock: a sensor's
topic is throttled to one publish per 250 ms window (at once when quiet, else at the window's
end with the latest state), zone and trouble state go out in the loop turn of the change."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from controller.clock import VirtualClock
from controller.config import parse_config
from controller.daemon import Daemon
from controller.reporting import component as reporting
from tests.e2e import DEMO_CONFIG
from tests.fake_link import SendViaPublish

P = "officeguard/office-a"
T0 = datetime(2026, 3, 4, 5, 0, tzinfo=UTC)


class FakeLink(SendViaPublish):
    """Stands in for MqttLink: records what would be published."""

    def __init__(self, cfg: Any, site: str, now: Callable[[], datetime]) -> None:
        self.prefix = f"{cfg.topic_prefix}/{site}"
        self.connected = False
        self.sent: list[tuple[str, dict[str, Any] | str, bool]] = []
        self.connect_listeners: list[Callable[[], None]] = []
        self.disconnect_listeners: list[Callable[[], None]] = []

    def start(self) -> None:
        pass

    async def close(self, offline: Any = None) -> None:
        self.connected = False

    def subscribe(
        self, topic_filter: str, handler: Any, qos: int = 1, *, retained: bool = True
    ) -> None:
        pass

    @property
    def paused(self) -> frozenset[str]:
        return frozenset()

    def publish(
        self,
        topic: str,
        payload: str | bytes,
        qos: int = 1,
        retain: bool = False,
        *,
        bulk: bool = False,
    ) -> asyncio.Future[bool]:
        text = payload.decode() if isinstance(payload, bytes) else payload
        try:
            body: dict[str, Any] | str = json.loads(text)
        except ValueError:
            body = text
        self.sent.append((topic, body, retain))
        fut: asyncio.Future[bool] = asyncio.get_running_loop().create_future()
        fut.set_result(True)
        return fut

    def up(self) -> None:
        self.connected = True
        for cb in list(self.connect_listeners):
            cb()

    def down(self) -> None:
        self.connected = False
        for cb in list(self.disconnect_listeners):
            cb()

    def on(self, topic: str) -> list[Any]:
        return [body for t, body, _ in self.sent if t == f"{P}/{topic}"]


async def settle() -> None:
    for _ in range(5):
        await asyncio.sleep(0)


async def until(cond: Callable[[], bool]) -> None:
    """Let the loop (and the logbook's fsync thread) run until cond holds; fail after ~5 s."""
    for _ in range(1000):
        if cond():
            return
        await asyncio.sleep(0.005)
    raise AssertionError("timed out")


class Site:
    def __init__(self, daemon: Daemon, clock: VirtualClock) -> None:
        self.daemon = daemon
        self.clock = clock

    @property
    def link(self) -> FakeLink:
        assert self.daemon.reporting is not None
        link = self.daemon.reporting.link
        assert isinstance(link, FakeLink)
        return link

    async def set(self, sensor: str, active: bool) -> None:
        """Drive the simulated pin (the clock stays put: the tests move it past the 30 ms
        debounce between two changes of one sensor)."""
        assert self.daemon.hw is not None and self.daemon.hw.sim is not None
        self.daemon.hw.sim.set(sensor, active)
        await self.written()

    async def advance(self, ms: int) -> None:
        self.clock.advance(timedelta(milliseconds=ms))
        await self.written()

    async def written(self) -> None:
        """Let the loop turn end and the logbook's fsync (worker thread) return: retained
        state that waited for the turn's events goes out then."""
        await settle()
        journal = self.daemon.journal
        assert journal is not None
        await until(lambda: not journal.writing())
        await settle()


def run(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, body: Callable[[Site], Any]) -> None:
    monkeypatch.setattr(reporting, "MqttLink", FakeLink)
    text = DEMO_CONFIG.read_text(encoding="utf-8")

    async def main() -> None:
        clock = VirtualClock(T0)
        d = Daemon(parse_config(text, "demo.yaml"), tmp_path / "state", simulate=True, clock=clock)
        await d.start()
        try:
            site = Site(d, clock)
            site.link.up()
            await settle()
            await site.advance(1000)  # every topic has been quiet for a while
            await body(site)
        finally:
            await d.stop("test over")

    asyncio.run(main())


def test_a_sensor_change_goes_out_at_once_then_once_per_window_with_the_latest_state(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    async def body(site: Site) -> None:
        link = site.link
        assert link.on("sensor/tamper.cabinet/state")[-1]["active"] is False
        before = len(link.on("sensor/tamper.cabinet/state"))
        await site.set("tamper.cabinet", True)  # quiet topic: at once
        states = link.on("sensor/tamper.cabinet/state")
        assert len(states) == before + 1 and states[-1]["active"] is True
        # the trouble list is not throttled: it went out in the same turn
        assert link.on("trouble/state")[-1]["troubles"] != []
        # within the window: held back (past the 30 ms debounce, on the daemon's clock)
        await site.advance(40)
        await site.set("tamper.cabinet", False)
        assert link.on("trouble/state")[-1]["troubles"] == []  # immediate
        await site.advance(40)
        await site.set("tamper.cabinet", True)
        await site.advance(40)
        await site.set("tamper.cabinet", False)
        assert len(link.on("sensor/tamper.cabinet/state")) == before + 1
        await site.advance(129)  # 249 ms after the first publish: still waiting
        assert len(link.on("sensor/tamper.cabinet/state")) == before + 1
        await site.advance(1)  # the window ends: the latest state, once
        states = link.on("sensor/tamper.cabinet/state")
        assert len(states) == before + 2
        assert states[-1]["active"] is False and states[-1]["bypassed"] is False
        # a new window started with that publish: a change 100 ms later waits for its end
        await site.advance(100)
        await site.set("tamper.cabinet", True)
        assert len(link.on("sensor/tamper.cabinet/state")) == before + 2
        await site.advance(150)
        states = link.on("sensor/tamper.cabinet/state")
        assert len(states) == before + 3 and states[-1]["active"] is True

        # every event was still journaled and published, none held back (each once the
        # logbook's fsync, on its worker thread, has returned)
        def tamper_events() -> list[str]:
            events = [b for t, b, _ in link.sent if t == f"{P}/event"]
            return [e["cid"] for e in events if e.get("sensor") == "tamper.cabinet"]

        await until(lambda: len(tamper_events()) == 5)
        assert tamper_events() == [
            "E137",
            "R137",
            "E137",
            "R137",
            "E137",
        ]

    run(tmp_path, monkeypatch, body)


def test_a_window_ending_on_the_published_state_sends_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    async def body(site: Site) -> None:
        link = site.link
        await site.set("tamper.cabinet", True)
        n = len(link.on("sensor/tamper.cabinet/state"))
        await site.advance(40)
        await site.set("tamper.cabinet", False)
        await site.advance(40)
        await site.set("tamper.cabinet", True)  # back to what the topic holds
        await site.advance(500)
        assert len(link.on("sensor/tamper.cabinet/state")) == n
        await site.set("tamper.cabinet", False)  # quiet again: at once
        assert link.on("sensor/tamper.cabinet/state")[-1]["active"] is False
        assert len(link.on("sensor/tamper.cabinet/state")) == n + 1

    run(tmp_path, monkeypatch, body)


def test_sensors_are_throttled_each_on_its_own_and_zones_are_not(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    async def body(site: Site) -> None:
        link = site.link
        await site.set("tamper.cabinet", True)
        await site.advance(100)
        await site.set("gate.main", True)  # another sensor's quiet topic: at once
        assert link.on("sensor/gate.main/state")[-1]["active"] is True
        await site.advance(40)
        await site.set("gate.main", False)
        assert link.on("sensor/gate.main/state")[-1]["active"] is True  # its own window
        assert link.on("sensor/tamper.cabinet/state")[-1]["active"] is True
        # a zone's state goes out in the turn of the change, whatever its sensors do
        d = site.daemon
        zone_before = len(link.on("zone/perimeter/state"))
        from controller.engine import Arm

        d.submit(Arm(("perimeter",), "away", user="guard", source="cli", instant=True))
        await settle()
        zones = link.on("zone/perimeter/state")
        assert len(zones) == zone_before + 1 and zones[-1]["state"] == "armed_away"
        await site.advance(250)
        assert link.on("sensor/gate.main/state")[-1]["active"] is False

    run(tmp_path, monkeypatch, body)


def test_a_reconnect_republishes_every_sensor_at_once(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    async def body(site: Site) -> None:
        link = site.link
        await site.set("tamper.cabinet", True)
        await site.advance(40)
        await site.set("tamper.cabinet", False)  # held for the window's end
        link.down()
        link.sent.clear()
        link.up()
        await settle()
        assert link.on("sensor/tamper.cabinet/state") == [
            {
                "active": False,
                "bypassed": False,
                "ts": link.on("sensor/tamper.cabinet/state")[0]["ts"],
            }
        ]
        assert len(link.on("sensor/door.director/state")) == 1
        await site.advance(1000)  # the old window's end sends nothing more
        assert len(link.on("sensor/tamper.cabinet/state")) == 1

    run(tmp_path, monkeypatch, body)


def test_a_clock_step_back_does_not_hold_a_sensor_state_back(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    async def body(site: Site) -> None:
        link = site.link
        await site.set("tamper.cabinet", True)
        await site.advance(40)
        await site.set("tamper.cabinet", False)  # waits for the window's end...
        assert link.on("sensor/tamper.cabinet/state")[-1]["active"] is True
        site.clock.jump(site.clock.now() - timedelta(hours=1))  # ...which a step back moves away
        site.clock.run_due()
        await settle()
        assert link.on("sensor/tamper.cabinet/state")[-1]["active"] is False

    run(tmp_path, monkeypatch, body)


def test_a_sensor_change_without_an_event_is_published(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A door opened in a disarmed zone journals nothing, but its retained state changes."""

    async def body(site: Site) -> None:
        link = site.link
        n = len(link.on("sensor/door.finance/state"))
        await site.set("door.finance", True)
        assert len(link.on("sensor/door.finance/state")) == n + 1
        assert link.on("sensor/door.finance/state")[-1]["active"] is True

    run(tmp_path, monkeypatch, body)


def test_the_turns_events_go_out_before_the_retained_state_they_change(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    async def body(site: Site) -> None:
        link = site.link
        start = len(link.sent)
        await site.set("tamper.cabinet", True)
        topics = [t for t, _, _ in link.sent[start:]]
        event = topics.index(f"{P}/event")
        assert event < topics.index(f"{P}/trouble/state")
        assert event < topics.index(f"{P}/sensor/tamper.cabinet/state")

    run(tmp_path, monkeypatch, body)
