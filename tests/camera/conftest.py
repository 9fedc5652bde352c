"""Shared pieces of the camera tests: a small site that has a camera."""

from __future__ import annotations

from pathlib import Path

import pytest

from controller.config import SiteConfig, parse_config

SITE = """
site: {{id: cam-site, language: en, timezone: UTC}}
hardware: {{backend: simulated}}
zones:
  - {{id: gate, entry_delay: 10s, exit_delay: 5s}}
  - {{id: office}}
sensors:
  - {{id: door.gate, zone: gate, pin: 5, type: door, response: 24h}}
  - {{id: pir.office, zone: office, pin: 6, type: motion}}
sirens:
  - {{id: siren.gate, pin: 20, zones: [gate]}}
  - {{id: siren.office, pin: 21, zones: [office]}}
cameras:
  - id: cam.gate
    url: {url}
    auth: digest
    credentials_file: {creds}
    zones: [gate]
    burst: {burst}
    interval: 1s
    timeout: 2s
    max_image: 200000
camera_storage: {{max_bytes: 1000000, max_age: 1d}}
"""


def camera_config(url: str, creds: Path, burst: int = 3) -> SiteConfig:
    return parse_config(SITE.format(url=url, creds=creds, burst=burst)).config


@pytest.fixture
def creds(tmp_path: Path) -> Path:
    path = tmp_path / "camera.secret"
    path.write_text("admin:s3cret-pass\n", encoding="utf-8")
    path.chmod(0o600)
    return path
