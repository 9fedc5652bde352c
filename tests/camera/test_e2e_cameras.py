"""End to end: the real daemon on a virtual clock with the simulated camera and a real
Mosquitto. An alarm-class event reaches the office at once, its snapshots follow on their own
topic with the event's id, and a `snapshot` event references each of them; a camera killed
mid-burst leaves the alarm as it was, and is a trouble."""

from __future__ import annotations

import json
from pathlib import Path

import jsonschema
import pytest

from controller.camera.twin import CameraTwin
from controller.events import event_schema
from tests.e2e import DEMO_CONFIG, Site
from tests.mqtt_broker import Broker, Recorder, wait_for

pytestmark = [pytest.mark.integration]

CAMERA = """
cameras:
  - id: cam.gate
    url: {url}
    credentials_file: {creds}
    zones: [perimeter]
    burst: 3
    interval: 2s
    timeout: 2s
"""


def _site(tmp_path: Path, broker: Broker, url: str, onvif: str | None = None) -> Site:
    creds = tmp_path / "camera.secret"
    creds.write_text("admin:s3cret-pass\n", encoding="utf-8")
    creds.chmod(0o600)
    text = DEMO_CONFIG.read_text(encoding="utf-8").replace("mqtt://127.0.0.1:1883", broker.url)
    cfg = tmp_path / "site.yaml"
    camera = CAMERA.format(url=url, creds=creds)
    if onvif is not None:  # the snapshot URL asked of the camera's ONVIF Media service
        camera = camera.replace(f"url: {url}", f"onvif: {{url: {onvif}}}")
    cfg.write_text(text + camera, encoding="utf-8")
    return Site(tmp_path / "state", config=cfg)


def _events(rec: Recorder) -> list[dict[str, object]]:
    return [json.loads(p) for t, p, _ in rec.snapshot() if t.endswith("/event")]


def test_the_office_gets_the_alarm_then_its_snapshots_with_matching_ids(
    tmp_path: Path, broker: Broker
) -> None:
    rec = Recorder(broker.port, "officeguard/office-a/#")
    with CameraTwin("admin", "s3cret-pass", label="gate") as twin:
        site = _site(tmp_path, broker, twin.url)
        site.start("2026-03-04T01:30:00+07:00")
        try:
            assert wait_for(lambda: site.status()["broker"]["connected"], timeout=10)
            site.og("sim", "set", "tamper.cabinet", "active")
            assert wait_for(lambda: any(e.get("cid") == "E137" for e in _events(rec)), timeout=10)
            alarm = next(e for e in _events(rec) if e.get("cid") == "E137")  # armed at 01:30: an alarm
            assert wait_for(lambda: twin.served == 1, timeout=10)
            site.advance("2s")
            assert wait_for(lambda: twin.served == 2, timeout=10)
            site.advance("2s")

            def snap() -> dict[str, object] | None:
                return next((e for e in _events(rec) if e["kind"] == "snapshot"), None)

            assert wait_for(lambda: snap() is not None, timeout=10)
            event = snap()
            assert event is not None
            jsonschema.validate(event, event_schema())
            detail = event["detail"]
            assert isinstance(detail, dict) and detail["event"] == alarm["id"]
            assert event["seq"] > alarm["seq"]  # type: ignore[operator]
            ids = [i["id"] for i in detail["images"]]
            assert ids == [f"{alarm['id']}-cam.gate-{n}" for n in range(3)]
            assert wait_for(lambda: len([t for t, *_ in rec.snapshot() if "/snapshot/" in t]) == 3)
            images = {t.rsplit("/", 1)[1]: p for t, p, _ in rec.snapshot() if "/snapshot/" in t}
            assert sorted(images) == ids
            assert all(f"/snapshot/{alarm['id']}/" in t for t, *_ in rec.snapshot() if "/snapshot/" in t)
            assert not any(r for t, _, r in rec.snapshot() if "/snapshot/" in t)  # never retained
            for ref in detail["images"]:
                assert len(images[ref["id"]]) == ref["size"] and images[ref["id"]][:2] == b"\xff\xd8"
            assert (tmp_path / "state" / "snapshots" / f"{ids[0]}.jpg").exists()
        finally:
            site.stop()
            rec.close()


def test_a_camera_killed_mid_burst_leaves_the_alarm_delivered_and_is_a_trouble(
    tmp_path: Path, broker: Broker
) -> None:
    rec = Recorder(broker.port, "officeguard/office-a/#")
    twin = CameraTwin("admin", "s3cret-pass").start()
    site = _site(tmp_path, broker, twin.url)
    site.start("2026-03-04T01:30:00+07:00")
    try:
        assert wait_for(lambda: site.status()["broker"]["connected"], timeout=10)
        site.og("sim", "set", "tamper.cabinet", "active")
        assert wait_for(lambda: twin.served == 1, timeout=10)
        twin.close()  # the camera dies after the first snapshot of the burst
        assert wait_for(lambda: any(e.get("cid") == "E137" for e in _events(rec)), timeout=10)
        site.advance("2s")
        site.advance("2s")
        assert wait_for(lambda: any(e["kind"] == "snapshot" for e in _events(rec)), timeout=15)
        events = _events(rec)
        cids = [e.get("cid") or e["kind"] for e in events]
        assert cids.index("E137") < cids.index("E330") < cids.index("snapshot")
        trouble = next(e for e in events if e["kind"] == "trouble" and e.get("cid") == "E330")
        assert trouble["sensor"] == "cam.gate" and "s3cret" not in json.dumps(events)
        snap = next(e for e in events if e["kind"] == "snapshot")["detail"]
        assert isinstance(snap, dict)
        assert [i["n"] for i in snap["images"]] == [0]
        assert [f["n"] for f in snap["failed"]] == [1, 2]
        status = site.status()
        assert any(t.get("cid") == "E330" for t in status["troubles"])
    finally:
        site.stop()
        rec.close()


def _images(rec: Recorder) -> list[tuple[str, bytes]]:
    return [(t, p) for t, p, _ in rec.snapshot() if "/snapshot/" in t]


def _take_burst_offline(site: Site, twin: CameraTwin, broker: Broker) -> None:
    """An alarm with the office's broker away: the whole burst is taken and stored."""
    assert wait_for(lambda: site.status()["broker"]["connected"], timeout=10)
    broker.stop()
    site.og("sim", "set", "tamper.cabinet", "active")
    assert wait_for(lambda: twin.served == 1, timeout=10)
    site.advance("2s")
    assert wait_for(lambda: twin.served == 2, timeout=10)
    site.advance("2s")
    assert wait_for(lambda: site.status()["camera_images"]["waiting"] == 3, timeout=10)


def _check_delivered(site: Site, rec: Recorder, alarm_id: str) -> None:
    ids = [f"{alarm_id}-cam.gate-{n}" for n in range(3)]
    assert wait_for(lambda: {t.rsplit("/", 1)[1] for t, _ in _images(rec)} >= set(ids), timeout=20)
    first: dict[str, str] = {}
    for t, _ in _images(rec):
        first.setdefault(t.rsplit("/", 1)[1], t)
    assert list(first) == ids  # in the order they were taken
    assert all(f"/snapshot/{alarm_id}/" in t for t in first.values())
    # the snapshot event comes through the events' path, the images on their own link
    assert wait_for(lambda: any(e["kind"] == "snapshot" for e in _events(rec)), timeout=20)
    snap = next(e for e in _events(rec) if e["kind"] == "snapshot")["detail"]
    assert isinstance(snap, dict) and snap["event"] == alarm_id
    sizes = {i["id"]: i["size"] for i in snap["images"]}
    assert all(len(p) == sizes[t.rsplit("/", 1)[1]] for t, p in _images(rec))
    assert wait_for(lambda: site.status()["camera_images"]["waiting"] == 0, timeout=10)


def test_images_taken_while_the_broker_is_away_are_sent_when_it_returns(
    tmp_path: Path, broker: Broker
) -> None:
    rec = Recorder(broker.port, "officeguard/office-a/#")
    with CameraTwin("admin", "s3cret-pass", label="gate") as twin:
        site = _site(tmp_path, broker, twin.url)
        site.start("2026-03-04T01:30:00+07:00")
        try:
            _take_burst_offline(site, twin, broker)
            assert _images(rec) == []
            broker.start()
            assert wait_for(lambda: any(e.get("cid") == "E137" for e in _events(rec)), timeout=20)
            alarm = next(e for e in _events(rec) if e.get("cid") == "E137")
            _check_delivered(site, rec, str(alarm["id"]))
        finally:
            site.stop()
            rec.close()


def test_images_still_waiting_when_the_daemon_stops_are_sent_after_it_restarts(
    tmp_path: Path, broker: Broker
) -> None:
    rec = Recorder(broker.port, "officeguard/office-a/#")
    with CameraTwin("admin", "s3cret-pass", label="gate") as twin:
        site = _site(tmp_path, broker, twin.url)
        site.start("2026-03-04T01:30:00+07:00")
        try:
            _take_burst_offline(site, twin, broker)
            alarm_id = next(e["id"] for e in site.events() if e.get("cid") == "E137")
            site.stop()
            broker.start()
            site.start("2026-03-04T01:35:00+07:00")
            _check_delivered(site, rec, str(alarm_id))
            assert site.status()["camera_images"]["dropped"] == 0
        finally:
            site.stop()
            rec.close()


def test_a_camera_found_by_onvif_sends_the_office_its_snapshots_with_the_alarm_id(
    tmp_path: Path, broker: Broker
) -> None:
    rec = Recorder(broker.port, "officeguard/office-a/#")
    with CameraTwin("admin", "s3cret-pass", label="gate") as twin:
        site = _site(tmp_path, broker, twin.url, onvif=twin.onvif_url)
        site.start("2026-03-04T01:30:00+07:00")
        try:
            assert wait_for(lambda: site.status()["broker"]["connected"], timeout=10)
            assert wait_for(lambda: len(twin.onvif_calls) == 2, timeout=10)
            assert site.status()["cameras"]["cam.gate"]["snapshot_url"] == twin.url
            site.og("sim", "set", "tamper.cabinet", "active")
            assert wait_for(lambda: twin.served == 1, timeout=10)
            site.advance("2s")
            assert wait_for(lambda: twin.served == 2, timeout=10)
            site.advance("2s")
            assert wait_for(lambda: any(e.get("cid") == "E137" for e in _events(rec)), timeout=10)
            alarm = next(e for e in _events(rec) if e.get("cid") == "E137")
            _check_delivered(site, rec, str(alarm["id"]))
            assert twin.onvif_calls == ["GetProfiles", "GetSnapshotUri"]
        finally:
            site.stop()
            rec.close()
