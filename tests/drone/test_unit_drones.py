"""The drone detectors component against a fake site: a detector's line read from its serial
port (a pseudo-terminal here), its silence turned into a trouble by the timer driver, its
status and troubles as the daemon shows them, and nothing left open after close."""

from __future__ import annotations

import asyncio
import os
import tty
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest

from controller.config import load_config
from controller.drone.component import DetectorStation, DroneDetectors
from controller.drone.protocol import encode_line
from tests.conftest import REFERENCE
from tests.fake_site import FakeSite

DET = "rf.roof"


def heartbeat(seq: int) -> bytes:
    return encode_line({"v": 1, "t": "hb", "seq": seq, "up": seq * 5, "adv": 0, "drop": 0})


async def until(cond: object, what: str) -> None:
    for _ in range(400):
        if callable(cond) and cond():
            return
        await asyncio.sleep(0.005)
    raise AssertionError(f"timed out waiting for {what}")


@pytest.fixture
def line(tmp_path: Path) -> Iterator[tuple[FakeSite, int]]:
    """A fake site whose detector's port is a pseudo-terminal; the test writes into `master`."""
    site = FakeSite(load_config(REFERENCE).config, tmp_path)
    master, slave = os.openpty()
    tty.setraw(slave)
    site.ports[DET] = os.ttyname(slave)
    yield site, master
    os.close(master)
    os.close(slave)
    site.close()


async def heard(site: FakeSite, master: int) -> tuple[DroneDetectors, DetectorStation]:
    """Start the detectors and let the first heartbeat be read."""
    detectors = DroneDetectors(site)
    detectors.start()
    station = detectors.stations[DET]
    await until(lambda: station.reader.is_open, "the port to open")
    os.write(master, heartbeat(1))
    await until(lambda: station.monitor.lines_ok == 1, "the heartbeat")
    return detectors, station


def test_a_detector_heard_then_silent_is_a_trouble_raised_by_the_timer_driver(
    line: tuple[FakeSite, int],
) -> None:
    site, master = line

    async def body() -> None:
        detectors, station = await heard(site, master)
        assert detectors.troubles() == []
        assert detectors.status()["detectors"][DET]["link"] == "ok"
        site.advance(timedelta(seconds=16))  # past the 15 s heartbeat_timeout
        [trouble] = detectors.troubles()
        assert trouble["cid"] == "E333" and trouble["source"] == DET
        detectors.close()
        assert site.timers.pending() == 0 and not station.reader.is_open

    asyncio.run(body())
    assert "E333" in site.cids()


def test_a_clock_step_moves_the_silence_deadline_with_the_time_of_day(
    line: tuple[FakeSite, int],
) -> None:
    site, master = line

    async def body() -> None:
        detectors, station = await heard(site, master)
        due = station.monitor.next_due()
        site.clock.jump(site.clock.now() + timedelta(hours=1))
        detectors.clock_stepped(timedelta(hours=1))
        assert due is not None and station.monitor.next_due() == due + timedelta(hours=1)
        assert detectors.troubles() == []  # a step is not a silence
        detectors.close()

    asyncio.run(body())
