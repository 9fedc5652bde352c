"""Mistakes an installer makes in the first hour get a sentence, not a traceback: one line
naming the file or setting and the fix, a sysexits code, and the daemon keeps running over
anything it can run without."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from pathlib import Path

import pytest

from controller.clock import VirtualClock
from controller.config import load_config
from controller.daemon import Daemon
from tests.conftest import T0
from tests.e2e import ROOT, Site

OFFICE_A = ROOT / "config" / "office-a.yaml"
WEDNESDAY_NOON = "2026-03-04T12:00:00+07:00"


def _no_gpio_here() -> bool:
    from hardware.backend import HardwareError, close_pin_factory, pin_factory_for

    try:
        close_pin_factory(pin_factory_for("gpio"))
    except HardwareError:
        return True
    return False


def _office_a_with(tmp_path: Path, **replace: str) -> Path:
    """config/office-a.yaml with some lines' values replaced (e.g. where its files are)."""
    text = OFFICE_A.read_text(encoding="utf-8")
    for old, new in replace.items():
        assert old in text
        text = text.replace(old, new)
    path = tmp_path / "site.yaml"
    path.write_text(text, encoding="utf-8")
    return path


def _without_mock_pins() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if k != "GPIOZERO_PIN_FACTORY"}


@pytest.mark.skipif(not _no_gpio_here(), reason="this machine has GPIO")
def test_run_with_the_gpio_backend_on_a_machine_without_gpio_says_so_in_one_line(
    tmp_path: Path,
) -> None:
    r = subprocess.run(
        [
            sys.executable,
            "-m",
            "controller",
            "run",
            "-c",
            str(OFFICE_A),
            "--state-dir",
            str(tmp_path / "state"),
        ],
        cwd=ROOT,
        env=_without_mock_pins(),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert r.returncode == 69, r.stderr  # EX_UNAVAILABLE
    assert "Traceback" not in r.stderr
    own = [ln for ln in r.stderr.splitlines() if ln.startswith("officeguard:")]
    assert len(own) == 1, r.stderr
    assert str(OFFICE_A) in own[0] and "hardware.backend gpio" in own[0]
    assert "no GPIO found" in own[0] and "--simulate" in own[0]


@pytest.mark.integration
def test_a_missing_mqtt_password_file_leaves_the_alarm_running_with_the_link_as_a_trouble(
    tmp_path: Path,
) -> None:
    missing = tmp_path / "etc" / "mqtt.pass"
    config = _office_a_with(
        tmp_path,
        **{
            "/etc/officeguard/mqtt.pass": str(missing),
            "/etc/officeguard/ca.pem": str(tmp_path / "etc" / "ca.pem"),
        },
    )
    site = Site(tmp_path / "state", config=config)
    site.start(WEDNESDAY_NOON)
    try:
        st = site.status()
        mqtt = [t for t in st["troubles"] if t["source"] == "mqtt"]
        assert len(mqtt) == 1 and str(missing) in mqtt[0]["what"], st["troubles"]
        assert mqtt[0]["cid"] == "E350"
        assert st["broker"]["connected"] is False
        # the alarm itself works: arm, open the door, wait out the entry delay, siren
        site.og("arm", "perimeter", input="2468\n")
        site.og("sim", "set", "gate.main", "active")
        assert site.outputs()["siren.hall"] is True
        # one log line naming the file and the fix
        lines = [ln for ln in site.log().splitlines() if "WITHOUT the broker link" in ln]
        assert len(lines) == 1 and str(missing) in lines[0] and "create it" in lines[0]
        assert "Traceback" not in site.log()
    finally:
        assert site.stop() == 0


@pytest.mark.integration
def test_status_into_a_pipe_that_is_already_closed_exits_quietly(tmp_path: Path) -> None:
    site = Site(tmp_path / "state")
    site.start(WEDNESDAY_NOON)
    try:
        read_end, write_end = os.pipe()
        os.close(read_end)  # `| head -2` that has read its lines and gone
        try:
            r = subprocess.run(
                [
                    sys.executable,
                    "-m",
                    "controller",
                    "status",
                    "--state-dir",
                    str(site.state_dir),
                ],
                cwd=ROOT,
                env=site.env,
                stdout=write_end,
                stderr=subprocess.PIPE,
                text=True,
                timeout=60,
            )
        finally:
            os.close(write_end)
        assert r.stderr == ""
        assert r.returncode == 141  # what a shell shows for a tool stopped by SIGPIPE
    finally:
        site.stop()


def test_a_real_site_with_published_example_codes_runs_with_a_trouble(tmp_path: Path) -> None:
    """Outside simulation: the codes still work (no one is locked out), the office is told."""
    loaded = load_config(OFFICE_A)

    async def main() -> list[dict[str, object]]:
        d = Daemon(loaded, tmp_path / "state", simulate=False, clock=VirtualClock(T0))
        d._check_secrets()
        return d.troubles()

    troubles = asyncio.run(main())
    example = [t for t in troubles if t["source"] == "config"]
    assert len(example) == 1 and example[0]["cid"] == "E300"
    assert "users[0].code_hash" in str(example[0]["what"])
    assert "scrypt" not in str(example[0]["what"])
