"""Shutdown closes the pin factory: every pin is released and the factory's own close runs (on
a Raspberry Pi that is lgpio's handle on the GPIO chip), so a restarted daemon can claim the
pins again."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from typing import Any

import pytest

from controller.clock import VirtualClock
from controller.config import load_config
from controller.devices import Devices
from hardware.backend import close_pin_factory
from tests.e2e import DEMO_CONFIG


def _devices(loop: asyncio.AbstractEventLoop) -> Devices:
    cfg = load_config(DEMO_CONFIG).config
    clock = VirtualClock(datetime(2026, 3, 4, 5, 0, tzinfo=UTC))
    return Devices(cfg, clock, loop, simulate=True, on_change=lambda *a: None)


def test_close_releases_every_pin_and_closes_the_factory() -> None:
    loop = asyncio.new_event_loop()
    try:
        dev = _devices(loop)
        factory = dev.factory
        pins = list(factory.pins.values())
        assert len(pins) >= 10  # sensors, siren, keypad rows and columns, buzzer
        closed: list[bool] = []
        real_close = factory.close

        def spy() -> None:
            closed.append(True)
            real_close()

        factory.close = spy
        dev.set_output("siren.hall", True)
        dev.safe_state()
        dev.close()
        assert closed == [True]
        assert factory.pins == {}  # gpiozero's PiFactory.close closed and forgot every pin
        assert dev.factory is None
        dev.close()  # a second close is harmless and does not close the factory again
        assert closed == [True]
        # the same pins can be claimed again by a new set of devices (a restart or a reload)
        again = _devices(loop)
        again.close()
    finally:
        loop.close()


class _Broken:
    def close(self) -> None:
        raise RuntimeError("chip went away")


def test_a_factory_that_fails_to_close_is_logged_not_raised(
    caplog: pytest.LogCaptureFixture,
) -> None:
    assert close_pin_factory(_Broken()) is False
    assert "could not close the GPIO pin factory: chip went away" in caplog.text
    assert close_pin_factory(None) is True


def test_the_daemon_stop_closes_the_factory(tmp_path: Any) -> None:
    """Through the Daemon: start, stop, and the factory it used is closed."""
    from controller.daemon import Daemon

    text = DEMO_CONFIG.read_text(encoding="utf-8").replace(
        "mqtt://127.0.0.1:1883", "mqtt://127.0.0.1:9"
    )
    cfg_path = tmp_path / "site.yaml"
    cfg_path.write_text(text, encoding="utf-8")
    loaded = load_config(cfg_path)
    clock = VirtualClock(datetime(2026, 3, 4, 5, 0, tzinfo=UTC))
    seen: dict[str, Any] = {}

    async def main() -> None:
        d = Daemon(loaded, tmp_path / "state", simulate=True, clock=clock)
        await d.start()
        assert d.hw is not None
        factory = d.hw.factory
        seen["pins_before"] = len(factory.pins)
        await d.stop("test")
        seen["pins_after"] = len(factory.pins)
        seen["hw"] = d.hw

    asyncio.run(main())
    assert seen["pins_before"] >= 10
    assert seen["pins_after"] == 0
    assert seen["hw"] is None
