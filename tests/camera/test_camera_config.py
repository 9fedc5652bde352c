from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest

from controller.config import ConfigError, parse_config
from tests.camera.conftest import SITE, camera_config


def test_a_camera_takes_its_url_credentials_targets_and_burst(creds: Path) -> None:
    cfg = camera_config("http://127.0.0.1:8080/snap.jpg", creds, burst=4)
    cam = cfg.cameras[0]
    assert (cam.id, cam.auth, cam.zones, cam.burst) == ("cam.gate", "digest", ["gate"], 4)
    assert cam.interval == timedelta(seconds=1) and cam.timeout == timedelta(seconds=2)
    assert cfg.camera_storage.max_age == timedelta(days=1)


def test_a_site_without_cameras_has_none_and_default_storage_limits() -> None:
    text = SITE.split("cameras:")[0]
    cfg = parse_config(text.format(url="", creds="", burst=1)).config
    assert cfg.cameras == [] and cfg.camera_storage.max_bytes == 200_000_000


@pytest.mark.parametrize(
    ("old", "new", "complaint"),
    [
        ("url: http://", "url: rtsp://", "http:// or https://"),
        ("url: http://", "url: http://admin:pw@", "no user or password in a camera's url"),
        ("zones: [gate]\n    burst", "zones: [nowhere]\n    burst", "unknown zone 'nowhere'"),
        ("zones: [gate]\n    burst", "sensors: [door.nope]\n    burst", "unknown sensor 'door.nope'"),
        ("    credentials_file: CREDS\n", "", "needs credentials_file"),
        ("burst: 3", "burst: 0", "cameras[0].burst"),
        ("id: cam.gate", "id: door.gate", "id door.gate already used"),
    ],
)
def test_a_bad_camera_is_refused_with_its_path(old: str, new: str, complaint: str) -> None:
    text = SITE.format(url="http://cam.local/snap", creds="CREDS", burst=3)
    assert old in text
    with pytest.raises(ConfigError) as err:
        parse_config(text.replace(old, new))
    assert complaint in str(err.value.problems)


def test_check_config_warns_of_an_unreadable_or_loose_credentials_file(tmp_path: Path, creds: Path) -> None:
    from controller.preflight import camera_files

    assert camera_files(camera_config("http://cam.local/snap", creds)) == []
    creds.chmod(0o644)
    loose = camera_files(camera_config("http://cam.local/snap", creds))
    assert [(f.path, "chmod 0640" in f.message) for f in loose] == [("cameras[0].credentials_file", True)]
    missing = camera_files(camera_config("http://cam.local/snap", tmp_path / "nope"))
    assert "cannot be read" in missing[0].message and "s3cret" not in str(loose + missing)


def test_the_camera_password_is_among_the_secrets_the_logs_are_checked_for(creds: Path) -> None:
    from controller.examples import secrets_in

    cfg = camera_config("http://cam.local/snap", creds)
    assert ("cameras[0].credentials_file", "s3cret-pass") in secrets_in(cfg)
