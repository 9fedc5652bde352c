"""The fetcher against the simulated camera on loopback: one good snapshot, and every bad
answer a camera can give is a SnapshotError with its reason, bounded in time and memory."""

from __future__ import annotations

import asyncio
import ssl
import subprocess
import sys
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from controller.camera.fetch import (
    SnapshotError,
    fetch_snapshot,
    jpeg_problem,
    read_credentials,
)
from controller.camera.twin import CameraTwin, Mode, render_jpeg
from controller.config import Camera
from tests.camera.conftest import SITE
from tests.pki import make_pki


def _camera(url: str, creds: Path, **extra: object) -> Camera:
    return Camera.model_validate(
        {"id": "cam.gate", "url": url, "credentials_file": str(creds), "timeout": "1s",
         "max_image": 200_000, **extra}  # fmt: skip
    )


def _fetch(cam: Camera) -> bytes:
    return asyncio.run(fetch_snapshot(cam, read_credentials(cam.credentials_file)))


def _reason(cam: Camera) -> str:
    with pytest.raises(SnapshotError) as err:
        _fetch(cam)
    assert "s3cret" not in str(err.value)
    return err.value.reason


def test_a_good_camera_gives_a_whole_jpeg_with_digest_authentication(creds: Path) -> None:
    with CameraTwin("admin", "s3cret-pass") as twin:
        data = _fetch(_camera(twin.url, creds))
    assert data[:2] == b"\xff\xd8" and data[-2:] == b"\xff\xd9"
    assert twin.served == 1 and twin.refused == 0


def test_wrong_credentials_are_an_auth_trouble(creds: Path) -> None:
    with CameraTwin("admin", "another-pass") as twin:
        assert _reason(_camera(twin.url, creds)) == "auth"
    assert twin.refused == 1


def test_an_unreadable_credentials_file_is_its_own_trouble(tmp_path: Path) -> None:
    with pytest.raises(SnapshotError) as err:
        read_credentials(str(tmp_path / "missing"))
    assert err.value.reason == "credentials"
    bad = tmp_path / "bad"
    bad.write_text("no-colon-here\n")
    with pytest.raises(SnapshotError):
        read_credentials(str(bad))


def test_the_credentials_never_show_in_their_repr(creds: Path) -> None:
    assert "s3cret" not in repr(read_credentials(str(creds)))


@pytest.mark.parametrize(
    ("mode", "reason"),
    [
        ("slow", "timeout"),
        ("stall", "timeout"),
        ("huge", "too_big"),
        ("huge_unsized", "too_big"),
        ("redirect_loop", "redirects"),
        ("not_jpeg", "not_jpeg"),
    ],
)
def test_a_misbehaving_camera_is_a_clear_trouble(creds: Path, mode: Mode, reason: str) -> None:
    with CameraTwin("admin", "s3cret-pass", mode=mode, delay=3.0) as twin:
        assert _reason(_camera(twin.url, creds)) == reason


def test_a_50_mb_answer_is_refused_by_its_declared_length_and_never_read_whole(creds: Path) -> None:
    with CameraTwin("admin", "s3cret-pass", mode="huge") as twin, pytest.raises(SnapshotError) as err:
        _fetch(_camera(twin.url, creds))
    assert "50000000" in str(err.value)


def test_an_unreachable_camera_is_unreachable(creds: Path) -> None:
    with CameraTwin("admin", "s3cret-pass") as twin:
        url = twin.url
    assert _reason(_camera(url, creds)) == "unreachable"


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_pki(tmp_path_factory.mktemp("pki"))


def _tls(pki: Path) -> ssl.SSLContext:
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(pki / "broker.pem", pki / "broker.key")
    return ctx


def test_a_certificate_nothing_vouches_for_is_refused(creds: Path, pki: Path) -> None:
    with CameraTwin("admin", "s3cret-pass", tls=_tls(pki)) as twin:
        assert twin.url.startswith("https://")
        assert _reason(_camera(twin.url, creds)) == "tls"


def test_the_cameras_own_ca_file_lets_its_certificate_through(creds: Path, pki: Path) -> None:
    with CameraTwin("admin", "s3cret-pass", tls=_tls(pki)) as twin:
        data = _fetch(_camera(twin.url, creds, ca_file=str(pki / "ca.pem")))
    assert data[:2] == b"\xff\xd8"


def test_a_generated_picture_is_a_jpeg_by_its_markers() -> None:
    from datetime import UTC, datetime

    assert jpeg_problem(render_jpeg(datetime(2026, 1, 1, tzinfo=UTC)), 200_000) is None


@given(st.binary(max_size=400))
def test_random_bytes_are_never_taken_for_a_jpeg_unless_they_carry_both_markers(data: bytes) -> None:
    ok = jpeg_problem(data, 1000) is None
    assert ok == (len(data) >= 125 and data.startswith(b"\xff\xd8\xff")
                  and data.rstrip(b"\0\r\n").endswith(b"\xff\xd9"))  # fmt: skip


def _og(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "controller", *args], capture_output=True,
                          text=True, timeout=60)  # fmt: skip


def test_camera_test_prints_the_size_and_time_of_one_snapshot(tmp_path: Path, creds: Path) -> None:
    with CameraTwin("admin", "s3cret-pass") as twin:
        cfg = tmp_path / "site.yaml"
        cfg.write_text(SITE.format(url=twin.url, creds=creds, burst=1), encoding="utf-8")
        r = _og("camera", "test", "-c", str(cfg), "cam.gate", "--save", str(tmp_path / "s.jpg"))
    assert r.returncode == 0, r.stderr
    size = (tmp_path / "s.jpg").stat().st_size
    assert r.stdout.startswith(f"cam.gate: {size} bytes, JPEG, taken ")


def test_camera_test_says_why_a_camera_fails_without_the_password(tmp_path: Path, creds: Path) -> None:
    with CameraTwin("admin", "other") as twin:
        cfg = tmp_path / "site.yaml"
        cfg.write_text(SITE.format(url=twin.url, creds=creds, burst=1), encoding="utf-8")
        r = _og("camera", "test", "-c", str(cfg), "cam.gate")
    assert r.returncode == 69 and "FAILED (auth)" in r.stderr
    assert "s3cret" not in r.stderr + r.stdout
