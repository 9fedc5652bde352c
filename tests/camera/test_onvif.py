"""ONVIF GetSnapshotUri discovery against the simulated camera's Media service: the profiles,
the snapshot URL of the chosen one, the WS-UsernameToken digest checked by the camera, and
wrong credentials or a missing profile as a clear trouble; the daemon's cameras ask once and
keep the URL."""

from __future__ import annotations

import asyncio
from datetime import timedelta
from pathlib import Path

import pytest

from controller.camera.component import Cameras as _Cameras
from controller.camera.fetch import SnapshotError, fetch_snapshot, make_client, read_credentials
from controller.camera.onvif import envelope, snapshot_uri
from controller.camera.twin import CameraTwin
from controller.config import ConfigError, SiteConfig, parse_config
from controller.engine import SensorChange
from tests.camera.conftest import SITE
from tests.fake_site import FakeSite


class Cameras(_Cameras):
    publish = False


def onvif_config(onvif_url: str, creds: Path, profile: str | None = None, burst: int = 3) -> SiteConfig:
    source = f"onvif: {{url: {onvif_url}" + (f", profile: {profile}" if profile else "") + "}"
    text = SITE.format(url="X", creds=creds, burst=burst).replace("url: X", source)
    return parse_config(text).config


async def _uri(cfg: SiteConfig) -> str:
    cam = cfg.cameras[0]
    async with make_client(cam) as client:
        return await snapshot_uri(cam, read_credentials(cam.credentials_file), client)


def test_the_media_service_gives_the_snapshot_url_of_the_first_profile(creds: Path) -> None:
    with CameraTwin("admin", "s3cret-pass") as twin:
        assert asyncio.run(_uri(onvif_config(twin.onvif_url, creds))) == twin.url
        assert twin.onvif_calls == ["GetProfiles", "GetSnapshotUri"] and twin.refused == 0


def test_a_configured_profile_gives_its_own_snapshot_url(creds: Path) -> None:
    with CameraTwin("admin", "s3cret-pass") as twin:
        uri = asyncio.run(_uri(onvif_config(twin.onvif_url, creds, profile="Profile_2")))
        assert uri.endswith("/ISAPI/Streaming/channels/102/picture")


def test_wrong_credentials_are_refused_with_a_clear_reason_and_no_password(
    creds: Path, tmp_path: Path
) -> None:
    with CameraTwin("admin", "another-pass") as twin:
        with pytest.raises(SnapshotError) as err:
            asyncio.run(_uri(onvif_config(twin.onvif_url, creds)))
        assert err.value.reason == "auth" and "NotAuthorized" in str(err.value)
        assert "s3cret" not in str(err.value) and twin.onvif_calls == []


def test_a_profile_the_camera_does_not_have_is_named_with_the_ones_it_has(creds: Path) -> None:
    with CameraTwin("admin", "s3cret-pass") as twin:
        with pytest.raises(SnapshotError) as err:
            asyncio.run(_uri(onvif_config(twin.onvif_url, creds, profile="Profile_9")))
        assert err.value.reason == "onvif" and "Profile_1, Profile_2" in str(err.value)


def test_the_password_goes_only_as_a_digest_in_the_envelope(creds: Path) -> None:
    from controller.camera.fetch import Credentials

    body = envelope("GetProfiles", {}, Credentials("admin", "s3cret-pass")).decode()
    assert "PasswordDigest" in body and "Nonce" in body and "s3cret-pass" not in body


def test_camera_test_asks_the_media_service_then_takes_the_snapshot(creds: Path) -> None:
    with CameraTwin("admin", "s3cret-pass") as twin:
        cam = onvif_config(twin.onvif_url, creds).cameras[0]
        data = asyncio.run(fetch_snapshot(cam, read_credentials(cam.credentials_file)))
        assert data[:2] == b"\xff\xd8" and twin.served == 1


def test_a_camera_has_a_url_or_an_onvif_source_but_not_both_nor_neither(creds: Path) -> None:
    both = SITE.format(url="http://127.0.0.1/s.jpg", creds=creds, burst=1).replace(
        "auth: digest", "auth: digest\n    onvif: {url: 'http://127.0.0.1/onvif/media_service'}"
    )
    neither = SITE.format(url="X", creds=creds, burst=1).replace("    url: X\n", "")
    for text in (both, neither):
        with pytest.raises(ConfigError) as err:
            parse_config(text)
        assert "one of url" in str(err.value)


def test_the_daemon_asks_once_at_start_and_every_snapshot_uses_that_url(
    tmp_path: Path, creds: Path
) -> None:
    async def scenario() -> None:
        with CameraTwin("admin", "s3cret-pass", label="gate") as twin:
            site = FakeSite(onvif_config(twin.onvif_url, creds), tmp_path)
            cams = Cameras(site)
            cams.start()
            await cams.settle()
            assert cams.status()["cameras"]["cam.gate"]["snapshot_url"] == twin.url  # type: ignore[index]
            events = site.submit(SensorChange("door.gate", True))
            cams.events(events)
            await cams.settle()
            for _ in range(2):
                site.advance(timedelta(seconds=1))
                await cams.settle()
            snap = next(e for e in site.recorded if e.kind == "snapshot")
            assert len(snap.detail["images"]) == 3 and twin.served == 3
            assert twin.onvif_calls == ["GetProfiles", "GetSnapshotUri"]  # asked once
            cams.close()
            site.close()

    asyncio.run(scenario())


def test_wrong_onvif_credentials_are_a_camera_trouble_at_start_and_the_alarm_stands(
    tmp_path: Path, creds: Path
) -> None:
    async def scenario() -> None:
        with CameraTwin("admin", "another-pass") as twin:
            site = FakeSite(onvif_config(twin.onvif_url, creds, burst=1), tmp_path)
            cams = Cameras(site)
            cams.start()
            await cams.settle()
            trouble = next(e for e in site.recorded if e.kind == "trouble")
            assert trouble.cid == "E330" and "credentials refused" in trouble.text
            assert trouble.detail["reason"].startswith("ONVIF GetProfiles")
            events = site.submit(SensorChange("door.gate", True))
            cams.events(events)
            await cams.settle()
            assert site.engine.zone_state("gate") == "triggered"
            snap = next(e for e in site.recorded if e.kind == "snapshot")
            assert [f["reason"] for f in snap.detail["failed"]] == ["auth"]
            cams.close()
            site.close()

    asyncio.run(scenario())
