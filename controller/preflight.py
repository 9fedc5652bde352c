"""What a valid config points at, checked where the daemon will run: the files it names
(password, CA, certificate, key, command key), the serial devices of the drone detectors, the
GPIO itself and the pins a Raspberry Pi keeps for other uses, and the published example codes.

`check-config` reports all of it. Errors (a problem the file must fix: an unreadable secret,
a reserved pin, a published example hash) make it exit 78. What only this machine lacks (no
GPIO on a PC) and plain example codes (the public reference site is written with them) are
warnings that keep it from saying OK: it says OK only when `run` will start here and guard
the site with secrets of its own. `--strict`, which the installer uses, makes those errors too.
The daemon uses the same checks at start for what it can run without (a file it cannot read,
a loose mode, a missing serial port).
"""

from __future__ import annotations

import os
import stat
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from controller.config import Mqtt, SiteConfig
from controller.examples import example_secrets
from controller.reporting.exposure import exposures

# The UART on GPIO 14 (TXD) and 15 (RXD), under the names Raspberry Pi OS gives it.
PI_UART_PORTS = frozenset({"/dev/serial0", "/dev/ttyAMA0", "/dev/ttyS0"})
I2C_DEVICE = Path("/dev/i2c-1")  # present when I2C on GPIO 2-3 is enabled (dtparam=i2c_arm=on)


@dataclass(frozen=True)
class Finding:
    """One thing to tell the installer: where in the config, what, and whether `run` would
    fail to guard the site with it (an error) or merely deserves a look (a warning)."""

    path: str
    message: str
    error: bool
    # `run` would not start here, or would guard the site with a published code: no "OK"
    blocks_ok: bool = False

    def __str__(self) -> str:
        return f"{self.path}: {self.message}"


def mqtt_files(m: Mqtt) -> list[tuple[str, str, bool]]:
    """(setting, file, holds a secret) for every file the MQTT settings name and use: the TLS
    files only with an mqtts:// URL (the link ignores them otherwise)."""
    tls = m.url.startswith(("mqtts://", "ssl://"))
    named = [
        ("mqtt.password_file", m.password_file, True),
        ("mqtt.ca_file", m.ca_file if tls else None, False),
        ("mqtt.cert_file", m.cert_file if tls else None, False),
        ("mqtt.key_file", m.key_file if tls else None, True),
        ("mqtt.command_key_file", m.command_key_file, True),
    ]
    return [(setting, f, secret) for setting, f, secret in named if f]


def unreadable_files(m: Mqtt) -> list[Finding]:
    """Every named file this process cannot read, each with its setting and the fix."""
    out = []
    for setting, path, secret in mqtt_files(m):
        try:
            with open(path, "rb") as f:
                f.read(1)
        except OSError as e:
            why = e.strerror or type(e).__name__
            fix = (
                "create it, mode 0640, owner root, group officeguard"
                if secret
                else "put it there, readable by the officeguard group"
            )
            out.append(Finding(setting, f"{path} cannot be read ({why}): {fix}", True))
    return out


def loose_secret_files(m: Mqtt) -> list[Finding]:
    """Secret files readable beyond owner and group (more than 0640) or open to others."""
    out = []
    for setting, path, secret in mqtt_files(m):
        if not secret:
            continue
        try:
            mode = stat.S_IMODE(os.stat(path).st_mode)
        except OSError:
            continue  # unreadable_files says so
        if mode & 0o037:
            out.append(
                Finding(
                    setting,
                    f"{path} has mode {mode:04o}, open beyond its owner and group: "
                    f"chmod 0640 {path}",
                    False,
                )
            )
    return out


def _pins(cfg: SiteConfig) -> list[tuple[str, int]]:
    pins = [(f"sensors[{i}].pin", s.pin) for i, s in enumerate(cfg.sensors) if s.pin is not None]
    pins += [(f"sirens[{i}].pin", s.pin) for i, s in enumerate(cfg.sirens)]
    if cfg.power is not None and cfg.power.mains is not None and cfg.power.mains.pin is not None:
        pins.append(("power.mains.pin", cfg.power.mains.pin))
    for i, k in enumerate(cfg.keypads):
        pins += [(f"keypads[{i}].rows[{j}]", p) for j, p in enumerate(k.rows)]
        pins += [(f"keypads[{i}].cols[{j}]", p) for j, p in enumerate(k.cols)]
        if k.buzzer is not None:
            pins.append((f"keypads[{i}].buzzer", k.buzzer))
    return pins


def pi_pin_findings(cfg: SiteConfig, i2c_enabled: bool) -> list[Finding]:
    """Pins a Raspberry Pi keeps for something else: 0-1 (the HAT ID EEPROM) always, 2-3 while
    I2C is enabled, 14-15 when a drone detector listens on the Pi's own UART."""
    uart = next((d.port for d in cfg.drone_detectors if d.port in PI_UART_PORTS), None)
    taken: dict[int, str] = {
        0: "the HAT ID EEPROM's I2C (ID_SD) on every Pi",
        1: "the HAT ID EEPROM's I2C (ID_SC) on every Pi",
    }
    if i2c_enabled:
        taken[2] = f"I2C SDA ({I2C_DEVICE} is enabled)"
        taken[3] = f"I2C SCL ({I2C_DEVICE} is enabled)"
    if uart is not None:
        taken[14] = f"the UART's TXD, used by the drone detector on {uart}"
        taken[15] = f"the UART's RXD, used by the drone detector on {uart}"
    return [
        Finding(path, f"GPIO{pin} is {taken[pin]}: wire this to a free pin", True)
        for path, pin in _pins(cfg)
        if pin in taken
    ]


def serial_findings(cfg: SiteConfig) -> list[Finding]:
    return [
        Finding(
            f"drone_detectors[{i}].port",
            f"{d.port} does not exist here (UART not enabled, or the adapter unplugged? see "
            "hardware/README.md); the daemon runs and reports the detector as a trouble",
            False,
        )
        for i, d in enumerate(cfg.drone_detectors)
        if not os.path.exists(d.port)
    ]


def gpio_finding(probe: Callable[[], object] | None = None, strict: bool = True) -> list[Finding]:
    """Whether `run` finds GPIO here (gpiozero's real pin factory, opened and closed again).
    Not strict, a missing GPIO is this machine's lack, not the file's: a warning."""
    from hardware.backend import HardwareError, close_pin_factory, pin_factory_for

    try:
        factory = probe() if probe is not None else pin_factory_for("gpio")
    except HardwareError as e:
        return [Finding("hardware.backend", str(e), strict, blocks_ok=True)]
    close_pin_factory(factory)
    return []


def example_findings(cfg: SiteConfig, simulate: bool, strict: bool = True) -> list[Finding]:
    """Published example codes: on a real site an error for a hash or a key (only a copied
    example has one) and, unless strict, a warning for a plain code (the public reference site
    is written with them, and a plain code is warned about anyway); a warning when simulated."""
    fix = "published example: anyone can use it; make a new one with `officeguard hash-code`"
    out = []
    for path in example_secrets(cfg):
        plain = path.endswith((".code", ".duress_code"))
        out.append(Finding(path, fix, not simulate and (strict or not plain), blocks_ok=not simulate))
    return out


def camera_files(cfg: SiteConfig) -> list[Finding]:
    """A camera's credentials or CA file that cannot be read, or a credentials file open beyond
    its owner and group: warnings (the site runs, that camera is a trouble E330)."""
    out = []
    for i, cam in enumerate(cfg.cameras):
        for key, path, secret in (
            ("credentials_file", cam.credentials_file, True),
            ("ca_file", cam.ca_file, False),
        ):
            if path is None:
                continue
            setting = f"cameras[{i}].{key}"
            try:
                with open(path, "rb") as f:
                    f.read(1)
                mode = stat.S_IMODE(os.stat(path).st_mode)
            except OSError as e:
                out.append(Finding(setting, f"{path} cannot be read ({e.strerror}): camera {cam.id} will be a trouble", False))
                continue
            if secret and mode & 0o037:
                out.append(Finding(setting, f"{path} has mode {mode:04o}, open beyond its owner and group: chmod 0640 {path}", False))
    return out


def check(
    cfg: SiteConfig, simulate: bool, i2c_enabled: bool | None = None, strict: bool = False
) -> list[Finding]:
    """Everything `check-config` reports beyond the file's own validity. `simulate` (said on
    the command line, as for `run --simulate`): a simulated site, where the published example
    codes are allowed (with a warning) and there is no GPIO, pin or serial device to look at.
    A file that says `backend: simulated` is not taken at its word for the codes: a copy of
    the demo must not become a real site with its codes."""
    found = unreadable_files(cfg.mqtt) + loose_secret_files(cfg.mqtt) + camera_files(cfg)
    found += [Finding(e.path, e.message, False, e.blocks_ok) for e in exposures(cfg.mqtt)]
    found += example_findings(cfg, simulate, strict)
    if cfg.dc09 is not None and cfg.dc09.key_file is not None:
        from controller.dc09.keyfile import Dc09KeyError, read_key

        try:
            read_key(cfg.dc09.key_file, cfg.dc09.key_format)  # the key itself is never shown
        except Dc09KeyError as e:
            found.append(Finding("dc09.key_file", str(e), True, blocks_ok=True))
    if not simulate and cfg.hardware.backend == "simulated":
        found.append(
            Finding(
                "hardware.backend",
                "simulated: no real input, siren or keypad is used; set gpio for a real site",
                False,
            )
        )
    elif not simulate:
        found += gpio_finding(strict=strict)
        if i2c_enabled is None:
            i2c_enabled = I2C_DEVICE.exists()
        found += pi_pin_findings(cfg, i2c_enabled)
        found += serial_findings(cfg)
        found += spi_findings(cfg)
    return found


def spi_findings(cfg: SiteConfig, dev: Path = Path("/dev")) -> list[Finding]:
    """An `adc` on a Pi whose SPI is not enabled: the daemon would run with every loop unknown
    (E333), so check-config says it first (a warning: this machine's lack, like the GPIO)."""
    if cfg.adc is None:
        return []
    node = dev / f"spidev0.{cfg.adc.device}"
    if node.exists():
        return []
    return [
        Finding(
            "adc",
            f"{node} is missing: enable SPI (dtparam=spi=on in /boot/firmware/config.txt) "
            "or the supervised loops stay unknown",
            False,
            blocks_ok=True,
        )
    ]


def report(source: str, findings: list[Finding]) -> tuple[list[str], list[str]]:
    """The lines `check-config` prints: (errors under a "FILE: N problems" head, warnings)."""
    errors = [f for f in findings if f.error]
    head = f"{source}: {len(errors)} problem{'s' if len(errors) != 1 else ''}"
    err_lines = [head, *(f"  {f}" for f in errors)] if errors else []
    return err_lines, [f"warning: {f}" for f in findings if not f.error]
