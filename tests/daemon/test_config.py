"""Configuration: the reference file loads unchanged; a broken file is refused with every problem."""

from __future__ import annotations

import subprocess
import sys
from datetime import timedelta
from pathlib import Path

import pytest

from controller.config import EXIT_CONFIG, ConfigError, load_config, parse_config, parse_duration
from tests.conftest import REFERENCE, ROOT, reference_text


def test_reference_config_loads_unchanged():
    loaded = load_config(REFERENCE)
    cfg = loaded.config
    assert cfg.site.id == "office-a"
    assert [z.id for z in cfg.zones] == ["leadership", "finance", "perimeter"]
    assert cfg.sensor("pir.director").effective_response == "follower"
    assert cfg.sensor("vib.safe1").effective_response == "24h"
    assert cfg.sensor("vib.safe1").attack_pulses == 3
    assert cfg.zone("leadership").siren_time == timedelta(minutes=4)
    assert cfg.zone("finance").siren_time == timedelta(minutes=4)  # default
    assert cfg.keypads[0].layout == ["123", "456", "789", "*0#"]


def test_plain_codes_are_warned_about_without_showing_them():
    warnings = [str(w) for w in load_config(REFERENCE).warnings]
    assert any("users[0].code" in w for w in warnings)
    assert not any("2468" in w or "1357" in w or "1358" in w for w in warnings)


@pytest.mark.parametrize(
    "text,seconds",
    [
        ("30s", 30),
        ("4m", 240),
        ("1h", 3600),
        ("1h30m", 5400),
        ("250ms", 0.25),
        ("2d", 172800),
        ("0s", 0),
        (0, 0),
        ("0", 0),
        ("2.5s", 2.5),
    ],
)
def test_durations(text, seconds):
    assert parse_duration(text) == timedelta(seconds=seconds)


@pytest.mark.parametrize(
    "bad", ["", "5x", "m5", "-3s", "1h-2m", None, True, [1], "10", 15, 2.5, "inf", "1e400"]
)
def test_bad_durations_and_numbers_without_a_unit_are_refused(bad):
    with pytest.raises(ValueError):
        parse_duration(bad)


def broken(*edits: tuple[str, str]) -> str:
    text = reference_text()
    for old, new in edits:
        assert old in text, old
        text = text.replace(old, new, 1)
    return text


def problems_of(text: str) -> list[str]:
    with pytest.raises(ConfigError) as e:
        parse_config(text, "site.yaml")
    return [str(p) for p in e.value.problems]


def test_every_problem_is_listed_with_its_path_and_line():
    text = broken(
        ("    pin: 24\n", "    pin: 22\n"),  # gate.main takes the safe's pin
        ("entry_delay: 20s", "entry_delay: 20 seconds"),
        ("    zone: perimeter\n    port:", "    zone: roof\n    port:"),
        ("    baudrate: 115200", "    baudrat: 115200"),
        ("zones: [leadership]\n\nschedules", "zones: [leadership, archive]\n\nschedules"),
        ("  language: vi", "  language: fr"),
    )
    problems = problems_of(text)
    joined = "\n".join(problems)
    assert "sensors[4].pin: pin 22 already used by vib.safe1" in joined
    assert "zones[1].entry_delay: bad duration" in joined
    assert "drone_detectors[0].zone: unknown zone 'roof'" in joined
    assert "drone_detectors[0].baudrat: unknown key" in joined
    assert "users[1].zones[1]: unknown zone 'archive'" in joined
    assert "site.language" in joined
    assert len(problems) == 6
    assert all(p.startswith("line ") for p in problems)
    line_of_pin = next(p for p in problems if "pin 22" in p)
    lines = text.splitlines()
    n = int(line_of_pin.split(":")[0].split()[1])
    assert "pin: 22" in lines[n - 1]


def test_yaml_syntax_error_has_a_line_number():
    problems = problems_of("site:\n  id: x\n zones: [\n")
    assert len(problems) == 1 and problems[0].startswith("line ") and "YAML" in problems[0]


def test_duplicate_ids_codes_and_keypad_pins():
    text = broken(
        ("  - id: pir.director", "  - id: door.director"),
        ('    code: "1357"', '    code: "2468"'),
        ("    buzzer: 21", "    buzzer: 5"),
    )
    joined = "\n".join(problems_of(text))
    assert "id door.director already used" in joined
    assert "same code as users[0]" in joined and "2468" not in joined
    assert "keypads[0].buzzer: pin 5 already used by siren.hall" in joined


def test_code_must_be_quoted_digits():
    joined = "\n".join(problems_of(broken(('code: "2468"', "code: 2468"))))
    assert "users[0].code" in joined and "quotes" in joined
    joined = "\n".join(problems_of(broken(('code: "2468"', 'code: "24"'))))
    assert "4 to 8 digits" in joined


def test_not_a_mapping_and_missing_sections():
    assert "YAML mapping" in problems_of("- a\n- b\n")[0]
    joined = "\n".join(problems_of("site: {id: x}\n"))
    assert "zones: required" in joined


def test_unquoted_time_of_day_is_read_as_meant():
    # YAML 1.1 reads an unquoted 17:30 as the base-60 number 1050
    cfg = parse_config(broken(('arm: "17:30"', "arm: 17:30"))).config
    assert cfg.schedules[0].arm.hour == 17 and cfg.schedules[0].arm.minute == 30


def run_cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "controller", *args],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=60,
    )


def test_check_config_cli_accepts_reference_and_refuses_broken_with_78(tmp_path: Path):
    # the reference's codes are published examples: fine for a simulated site only
    ok = run_cli("check-config", "-c", str(REFERENCE), "--simulate")
    assert ok.returncode == 0, ok.stderr
    assert "office-a" in ok.stdout and "door.director" in ok.stdout
    assert "2468" not in ok.stdout + ok.stderr
    bad = tmp_path / "bad.yaml"
    bad.write_text(
        broken(("    pin: 24\n", "    pin: 22\n"), ("exit_delay: 45s", "exit_delay: soon")),
        encoding="utf-8",
    )
    r = run_cli("check-config", "-c", str(bad))
    assert r.returncode == EXIT_CONFIG
    assert "2 problems" in r.stderr and "Traceback" not in r.stderr
    assert "sensors[4].pin: pin 22 already used by vib.safe1" in r.stderr
    missing = run_cli("check-config", "-c", str(tmp_path / "nope.yaml"))
    assert missing.returncode == EXIT_CONFIG and "no such file" in missing.stderr


@pytest.mark.parametrize("path", sorted((ROOT / "config").glob("*.yaml")))
def test_example_configs_load(path: Path):
    load_config(path)


def test_signatures_are_required_by_default_and_a_site_without_a_key_still_loads():
    # the reference site has no key: signed-only commands are refused until it has one
    assert parse_config(reference_text(), "site.yaml").config.mqtt.require_signature
    text = reference_text().replace(
        "  heartbeat: 60s", "  heartbeat: 60s\n  require_signature: true"
    )
    cfg = parse_config(text, "site.yaml").config
    assert cfg.mqtt.require_signature and cfg.mqtt.command_key_file is None
    # a copy of the settings (as the console makes one) validates again
    again = type(cfg.mqtt).model_validate({**cfg.mqtt.model_dump(), "url": "mqtt://h:1"})
    assert again.require_signature
