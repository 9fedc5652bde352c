"""The keypads component against a fake site: keys in, a decision out through the port, the
buzzer's answers, the entry timeout on the timer driver, and delay beeps after the engine."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest

from controller.config import load_config
from controller.engine import Arm, Disarm
from controller.keypad.component import Keypads
from tests.conftest import REFERENCE
from tests.fake_site import FakeSite

KEYPAD = "keypad.hall"


@pytest.fixture
def site(tmp_path: Path) -> Iterator[FakeSite]:
    fake = FakeSite(load_config(REFERENCE).config, tmp_path)
    yield fake
    fake.close()


def press(site: FakeSite, keys: str) -> None:
    assert site.key_handler is not None, "the keypads listen once started"
    for key in keys:
        site.key_handler(KEYPAD, key, site.clock.now())


def type_keys(site: FakeSite, keys: str) -> None:
    """Start the keypads, type `keys` at the hall keypad, wait for the code check, close."""

    async def body() -> None:
        keypads = Keypads(site)
        keypads.start()
        press(site, keys)
        await keypads.idle(KEYPAD)
        keypads.close()

    asyncio.run(body())


def sounds(site: FakeSite) -> list[str]:
    return [what for call, what in site.buzzers[KEYPAD].calls if call == "play"]


def test_a_good_code_and_arm_away_is_carried_out_through_the_site_and_beeps_accept(
    site: FakeSite,
) -> None:
    type_keys(site, "2468*1")
    [decision] = site.decisions
    assert (decision.kind, decision.mode, decision.user) == ("arm", "away", "bao-ve-1")
    assert set(decision.zones) == {"leadership", "finance"}
    assert sounds(site)[-1] == "accept"
    assert sounds(site).count("key") == 6


def test_a_wrong_code_is_refused_without_reaching_the_engine(site: FakeSite) -> None:
    type_keys(site, "9999#")
    assert site.decisions == [] and site.submitted == []
    assert sounds(site)[-1] == "refuse"


def test_an_unfinished_entry_is_dropped_when_the_timer_driver_fires_its_timeout(
    site: FakeSite,
) -> None:
    async def body() -> None:
        keypads = Keypads(site)
        keypads.start()
        press(site, "24")
        assert site.timers.pending() == 1  # the keypad's entry timeout
        site.advance(timedelta(seconds=11))
        assert site.timers.pending() == 0
        keypads.close()

    asyncio.run(body())
    assert sounds(site) == ["key", "key", "refuse"]


def test_the_buzzer_beeps_through_the_exit_delay_and_stops_at_a_disarm(site: FakeSite) -> None:
    async def body() -> None:
        keypads = Keypads(site)
        keypads.start()
        site.submit(Arm(("finance",), "away", user="bao-ve-1"))
        keypads.engine_stepped()  # the daemon calls this after every engine step
        site.submit(Disarm(("finance",), user="bao-ve-1"))
        keypads.engine_stepped()
        keypads.close()

    asyncio.run(body())
    calls = [call for call, _ in site.buzzers[KEYPAD].calls]
    exit_due = site.engine.zones["finance"].exit_due
    assert calls == ["delay", "stop"] and exit_due is None
    assert site.buzzers[KEYPAD].calls[0][1] > site.clock.now()


def test_closing_the_keypads_leaves_no_timer_behind(site: FakeSite) -> None:
    async def body() -> None:
        keypads = Keypads(site)
        keypads.start()
        press(site, "1")
        keypads.close()

    asyncio.run(body())
    assert site.timers.pending() == 0
