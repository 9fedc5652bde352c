"""Installer help: `wiring calibrate` centres a loop's bands on what it read closed and open and
writes them into the config file (keeping the rest of it); `wiring test` says per loop what the
panel read open and closed. The prompts and readings are functions here; the e2e test drives
the real commands against a running daemon."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from controller.config import load_config
from controller.supervision.installer import WiringError, calibrate, walk, write_bands
from tests.conftest import reference_text


def _site_file(tmp: Path) -> Path:
    text = reference_text() + (
        "\nadc:\n  chip: mcp3008\n"
        "\n# a sensor added by the installer\n"
    )
    data = yaml.safe_load(text)
    assert data["adc"] == {"chip": "mcp3008"}
    text = text.replace(
        "sensors:\n",
        "sensors:\n"
        "  - id: door.archive\n"
        "    type: door\n"
        "    zone: finance\n"
        "    loop:\n"
        "      channel: 0          # the archive's DEOL loop\n"
        "      eol: double\n",
        1,
    )
    path = tmp / "site.yaml"
    path.write_text(text, encoding="utf-8")
    return path


class Loop:
    """What the daemon's status would say of one loop, set by the 'installer'."""

    def __init__(self) -> None:
        self.now: tuple[str, float | None] = ("normal", 1.62)
        self.prompts: list[str] = []
        self.script: list[tuple[str, float | None]] = []

    def read(self, sensor: str) -> tuple[str, float | None]:
        return self.now

    def ask(self, prompt: str) -> None:
        self.prompts.append(prompt)
        self.now = self.script.pop(0)


def test_calibration_writes_bands_centred_on_what_was_read_and_keeps_the_file(tmp_path: Path) -> None:
    path = _site_file(tmp_path)
    cfg = load_config(path).config
    loop = Loop()
    loop.script = [("normal", 1.60), ("alarm", 2.25)]
    bands = calibrate(cfg, "door.archive", loop.read, loop.ask)
    assert [p.split()[0] for p in loop.prompts] == ["Close", "Now"]
    by = {b.state: (b.lo, b.hi) for b in bands}
    assert by["normal"] == (1.468, 1.732) and by["alarm"] == (2.118, 2.382)
    before = path.read_text(encoding="utf-8")
    write_bands(path, "door.archive", bands)
    after = path.read_text(encoding="utf-8")
    assert "# the archive's DEOL loop" in after and "# a sensor added by the installer" in after
    assert len(after.splitlines()) == len(before.splitlines()) + 5
    loaded = load_config(path).config.sensor("door.archive").loop
    assert loaded is not None and loaded.bands is not None
    assert tuple(loaded.bands["normal"]) == (1.468, 1.732)
    # calibrating again replaces the bands, it does not add a second block
    write_bands(path, "door.archive", bands)
    assert path.read_text(encoding="utf-8") == after


def test_a_loop_that_reads_the_same_open_and_closed_cannot_be_calibrated(tmp_path: Path) -> None:
    cfg = load_config(_site_file(tmp_path)).config
    loop = Loop()
    loop.script = [("normal", 1.60), ("normal", 1.62)]
    with pytest.raises(WiringError, match="too close to tell apart"):
        calibrate(cfg, "door.archive", loop.read, loop.ask)


def test_a_sensor_on_a_pin_or_a_loop_with_no_reading_is_refused(tmp_path: Path) -> None:
    cfg = load_config(_site_file(tmp_path)).config
    loop = Loop()
    with pytest.raises(WiringError, match="on a pin"):
        calibrate(cfg, "door.director", loop.read, loop.ask)
    loop.script = [("unknown", None)]
    with pytest.raises(WiringError, match="no reading"):
        calibrate(cfg, "door.archive", loop.read, loop.ask)


def test_the_wiring_test_says_per_loop_what_it_read_open_and_closed(tmp_path: Path) -> None:
    cfg = load_config(_site_file(tmp_path)).config
    loop = Loop()
    loop.script = [("alarm", 2.2), ("normal", 1.65)]
    (check,) = walk(cfg, loop.read, loop.ask)
    assert check.ok and check.line().endswith("OK")
    assert "open: alarm (2.20 V)" in check.line()
    loop.script = [("cut", 3.3), ("normal", 1.65)]
    (check,) = walk(cfg, loop.read, loop.ask)
    assert not check.ok and check.line().endswith("CHECK THE WIRING")
