"""The cameras component against a fake site and the simulated camera on loopback: a burst on
the daemon's clock for an alarm-class event, one `snapshot` event after it that references the
alarm and each stored image, pruning, and a camera that fails is a trouble, never a delay."""

from __future__ import annotations

import asyncio
from datetime import timedelta
from pathlib import Path

from jsonschema import validate

from controller.camera.component import Cameras as _Cameras
from controller.camera.twin import CameraTwin
from controller.engine import Arm, SensorChange
from controller.events import Event, event_schema
from tests.camera.conftest import camera_config
from tests.fake_site import FakeSite


class Cameras(_Cameras):
    publish = False  # one part alone: no broker (tests/camera/test_e2e_cameras.py has one)


def _started(url: str, creds: Path, tmp_path: Path, burst: int) -> tuple[FakeSite, Cameras]:
    site = FakeSite(camera_config(url, creds, burst=burst), tmp_path)
    cams = Cameras(site)
    cams.start()
    return site, cams


def _done(site: FakeSite, cams: Cameras) -> None:
    cams.close()
    site.close()


def _alarm(site: FakeSite, cams: Cameras) -> Event:
    events = site.submit(SensorChange("door.gate", True))  # a 24-hour door: the alarm
    alarm = next(e for e in events if e.kind == "alarm")
    cams.events(events)
    return alarm


async def _burst(site: FakeSite, cams: Cameras, steps: int) -> None:
    await cams.settle()
    for _ in range(steps):
        site.advance(timedelta(seconds=1))
        await cams.settle()


def test_an_alarm_takes_a_burst_and_a_snapshot_event_references_it(tmp_path: Path, creds: Path) -> None:
    async def scenario() -> None:
        with CameraTwin("admin", "s3cret-pass", label="gate") as twin:
            site, cams = _started(twin.url, creds, tmp_path, 3)
            alarm = _alarm(site, cams)
            before = len(site.recorded)
            await _burst(site, cams, 2)
            snaps = [e for e in site.recorded[before:] if e.kind == "snapshot"]
            assert len(snaps) == 1
            snap = snaps[0]
            assert snap.seq > alarm.seq and snap.detail["event"] == alarm.id
            assert [i["id"] for i in snap.detail["images"]] == [
                f"{alarm.id}-cam.gate-{n}" for n in range(3)
            ]
            assert snap.detail["failed"] == [] and twin.served == 3
            for ref in snap.detail["images"]:
                data = cams.store.read(ref["id"])
                assert data is not None and len(data) == ref["size"]
            validate(snap.to_dict(), event_schema())
            _done(site, cams)

    asyncio.run(scenario())


def test_a_dead_camera_is_a_trouble_and_the_alarm_stands(tmp_path: Path, creds: Path) -> None:
    async def scenario() -> None:
        with CameraTwin("admin", "s3cret-pass") as twin:
            url = twin.url
        site, cams = _started(url, creds, tmp_path, 2)
        alarm = _alarm(site, cams)
        await _burst(site, cams, 1)
        kinds = [e.kind for e in site.recorded if e.seq > alarm.seq]
        assert kinds == ["trouble", "snapshot"]
        trouble = next(e for e in site.recorded if e.kind == "trouble")
        assert trouble.cid == "E330" and trouble.sensor == "cam.gate"
        assert "s3cret" not in trouble.text
        assert [t["source"] for t in site.troubles() if t["cid"] == "E330"] == ["cam.gate"]
        snap = site.recorded[-1]
        assert snap.detail["images"] == [] and [f["reason"] for f in snap.detail["failed"]] == [
            "unreachable", "unreachable"]  # fmt: skip
        assert site.engine.zone_state("gate") == "triggered"
        _done(site, cams)

    asyncio.run(scenario())


def test_a_camera_that_answers_again_restores_its_trouble(tmp_path: Path, creds: Path) -> None:
    async def scenario() -> None:
        with CameraTwin("admin", "s3cret-pass", mode="not_jpeg") as twin:
            site, cams = _started(twin.url, creds, tmp_path, 2)
            _alarm(site, cams)
            await cams.settle()
            twin.mode = "ok"
            await _burst(site, cams, 1)
        assert [e.cid for e in site.recorded if e.kind.startswith("trouble")] == ["E330", "R330"]
        assert site.troubles() == [] or all(t["cid"] != "E330" for t in site.troubles())
        _done(site, cams)

    asyncio.run(scenario())


def test_events_that_are_not_alarm_class_take_no_snapshot(tmp_path: Path, creds: Path) -> None:
    async def scenario() -> None:
        with CameraTwin("admin", "s3cret-pass") as twin:
            site, cams = _started(twin.url, creds, tmp_path, 3)
            cams.events(site.submit(Arm(("gate",), "away", user="test")))
            await cams.settle()
            assert twin.served == 0 and cams.bursts == []
            _done(site, cams)

    asyncio.run(scenario())
