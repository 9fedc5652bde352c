"""`check-config` checks what the config points at, and says OK only for a site that `run`
will start and guard with secrets of its own."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from controller.access.codes import hash_code
from controller.config import EXIT_CONFIG, load_config, parse_config
from controller.preflight import pi_pin_findings
from tests.e2e import ROOT

OFFICE_A = ROOT / "config" / "office-a.yaml"
DEMO = ROOT / "config" / "demo.yaml"
REFERENCE = ROOT / "config" / "reference-site.yaml"


def check_config(
    config: Path, *extra: str, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "controller", "check-config", "-c", str(config), *extra],
        cwd=ROOT,
        env={**os.environ, **(env or {})},
        capture_output=True,
        text=True,
        timeout=60,
    )


MOCK_PINS = {"GPIOZERO_PIN_FACTORY": "mock"}  # stands in for a Pi's GPIO on this machine


def own_site(tmp_path: Path) -> tuple[Path, Path]:
    """office-a.yaml made a real site of its own: new codes, its files in place, a detector
    port that exists. Returns (config, password file)."""
    etc = tmp_path / "etc"
    etc.mkdir()
    password = etc / "mqtt.pass"
    password.write_text("a-site-password\n")
    password.chmod(0o640)
    (etc / "ca.pem").write_text("-----BEGIN CERTIFICATE-----\n")
    key = etc / "command.key"
    key.write_text("0123456789abcdef" * 4 + "\n")
    key.chmod(0o640)
    text = OFFICE_A.read_text(encoding="utf-8")
    text = text.replace("/etc/officeguard/mqtt.pass", str(password))
    text = text.replace("/etc/officeguard/command.key", str(key))
    text = text.replace("/etc/officeguard/ca.pem", str(etc / "ca.pem"))
    text = text.replace("/dev/serial0", "/dev/null")
    cfg = load_config(OFFICE_A).config
    for user, new in zip(cfg.users, ("9731", "8642"), strict=True):
        assert user.code_hash is not None
        text = text.replace(user.code_hash, hash_code(new))
    duress = cfg.users[1].duress_code_hash
    assert duress is not None
    text = text.replace(duress, hash_code("8643"))
    path = tmp_path / "site.yaml"
    path.write_text(text, encoding="utf-8")
    return path, password


def test_a_real_site_with_its_own_codes_and_files_is_ok(tmp_path: Path) -> None:
    config, _ = own_site(tmp_path)
    r = check_config(config, env=MOCK_PINS)
    assert r.returncode == 0, r.stderr
    assert f"{config}: OK" in r.stdout
    assert "warning" not in r.stderr


def test_a_missing_password_file_is_a_problem_naming_the_setting_the_file_and_the_fix(
    tmp_path: Path,
) -> None:
    config, password = own_site(tmp_path)
    password.unlink()
    r = check_config(config, env=MOCK_PINS)
    assert r.returncode == EXIT_CONFIG
    assert "OK" not in r.stdout
    assert f"{config}: 1 problem" in r.stderr
    line = next(ln for ln in r.stderr.splitlines() if "mqtt.password_file" in ln)
    assert str(password) in line and "No such file" in line and "create it" in line


def test_a_password_file_others_can_read_is_a_warning_with_the_chmod(tmp_path: Path) -> None:
    config, password = own_site(tmp_path)
    password.chmod(0o644)
    r = check_config(config, env=MOCK_PINS)
    assert r.returncode == 0, r.stderr
    assert f"warning: mqtt.password_file: {password} has mode 0644" in r.stderr
    assert f"chmod 0640 {password}" in r.stderr
    assert "a-site-password" not in r.stdout + r.stderr


def test_the_shipped_example_with_only_its_site_id_changed_is_refused(tmp_path: Path) -> None:
    config, _ = own_site(tmp_path)
    example = OFFICE_A.read_text(encoding="utf-8").replace("id: office-a", "id: office-b")
    # its own files, but the example's code hashes
    example = example.replace("/etc/officeguard/mqtt.pass", str(tmp_path / "etc/mqtt.pass"))
    example = example.replace("/etc/officeguard/ca.pem", str(tmp_path / "etc/ca.pem"))
    config.write_text(example, encoding="utf-8")
    r = check_config(config, env=MOCK_PINS)
    assert r.returncode == EXIT_CONFIG
    for path in ("users[0].code_hash", "users[1].code_hash", "users[1].duress_code_hash"):
        assert f"  {path}: published example" in r.stderr
    assert "scrypt$" not in r.stdout + r.stderr


def test_published_plain_codes_are_never_ok_and_refused_when_strict() -> None:
    # the public reference site is written with plain example codes and must keep loading:
    # without --strict they are warnings that keep check-config from saying OK
    warned = check_config(DEMO)
    assert warned.returncode == 0, warned.stderr
    assert "OK" not in warned.stdout and "not ready to guard a site" in warned.stdout
    assert "warning: users[0].code: published example" in warned.stderr
    refused = check_config(DEMO, "--strict")
    assert refused.returncode == EXIT_CONFIG
    assert "  users[0].code: published example" in refused.stderr
    assert "2468" not in warned.stdout + warned.stderr + refused.stdout + refused.stderr


def test_the_public_reference_site_keeps_loading() -> None:
    r = check_config(REFERENCE)
    assert r.returncode == 0, r.stderr
    assert "published example" in r.stderr  # never silently accepted


def test_simulate_allows_the_published_examples_with_a_warning() -> None:
    r = check_config(DEMO, "--simulate")
    assert r.returncode == 0, r.stderr
    assert f"{DEMO}: OK" in r.stdout
    assert "warning: users[0].code: published example" in r.stderr
    assert "2468" not in r.stdout + r.stderr


@pytest.mark.skipif(os.path.exists("/dev/serial0"), reason="this machine has /dev/serial0")
def test_a_missing_detector_port_is_a_warning_not_a_problem(tmp_path: Path) -> None:
    config, _ = own_site(tmp_path)
    config.write_text(config.read_text().replace("/dev/null", "/dev/serial0"))
    r = check_config(config, env=MOCK_PINS)
    assert r.returncode == 0, r.stderr
    assert "warning: drone_detectors[0].port: /dev/serial0 does not exist" in r.stderr


def test_no_gpio_here_is_a_warning_that_withholds_ok_and_a_problem_when_strict(
    tmp_path: Path,
) -> None:
    from tests.daemon.test_operator_errors import _no_gpio_here

    if not _no_gpio_here():
        pytest.skip("this machine has GPIO")
    config, _ = own_site(tmp_path)
    env = {k: v for k, v in os.environ.items() if k != "GPIOZERO_PIN_FACTORY"}
    def run(*extra: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "controller", "check-config", "-c", str(config), *extra],
            cwd=ROOT,
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
        )

    lenient = run()
    assert lenient.returncode == 0, lenient.stderr
    assert "warning: hardware.backend: no GPIO found" in lenient.stderr
    assert "OK" not in lenient.stdout
    strict = run("--strict")
    assert strict.returncode == EXIT_CONFIG
    assert "  hardware.backend: no GPIO found" in strict.stderr


def _with_pin(text: str, sensor_pin: int, port: str = "/dev/serial0") -> str:
    return text.replace("    pin: 17\n", f"    pin: {sensor_pin}\n").replace("/dev/serial0", port)


@pytest.mark.parametrize(
    ("pin", "i2c", "port", "taken"),
    [
        (0, False, "/dev/ttyUSB0", "ID EEPROM"),
        (1, False, "/dev/ttyUSB0", "ID EEPROM"),
        (2, True, "/dev/ttyUSB0", "I2C SDA"),
        (3, True, "/dev/ttyUSB0", "I2C SCL"),
        (14, False, "/dev/serial0", "TXD"),
        (15, False, "/dev/ttyAMA0", "RXD"),
        (15, False, "/dev/ttyS0", "RXD"),
    ],
)
def test_pins_a_pi_keeps_for_something_else_are_refused(
    pin: int, i2c: bool, port: str, taken: str
) -> None:
    cfg = parse_config(_with_pin(OFFICE_A.read_text(encoding="utf-8"), pin, port)).config
    found = pi_pin_findings(cfg, i2c_enabled=i2c)
    assert [(f.path, f.error) for f in found] == [("sensors[0].pin", True)]
    assert taken in found[0].message and f"GPIO{pin}" in found[0].message


@pytest.mark.parametrize(
    ("pin", "i2c", "port"),
    [(2, False, "/dev/ttyUSB0"), (3, False, "/dev/serial0"), (14, True, "/dev/ttyUSB0")],
)
def test_i2c_and_uart_pins_are_free_while_nothing_uses_them(pin: int, i2c: bool, port: str) -> None:
    cfg = parse_config(_with_pin(OFFICE_A.read_text(encoding="utf-8"), pin, port)).config
    assert pi_pin_findings(cfg, i2c_enabled=i2c) == []
