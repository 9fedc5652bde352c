"""The daemon as a walker of components: no module of the daemon imports the daemon but its
entry point, every registered component follows the lifecycle, and the self-test (one line
in the registry) runs in a real daemon, through a reload, on the virtual clock."""

from __future__ import annotations

import ast
import asyncio
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

import pytest
import yaml

from controller.clock import VirtualClock
from controller.component import Component
from controller.config import parse_config
from controller.daemon import Daemon
from controller.registry import all_components, components_for
from controller.reporting import component as reporting
from tests.conftest import REFERENCE, ROOT
from tests.e2e import DEMO_CONFIG
from tests.reporting.test_reporting import FakeLink

T0 = datetime(2026, 3, 4, 5, 0, tzinfo=UTC)
ENTRY_POINTS = {"controller/daemon.py", "controller/cli.py"}


def imported_modules(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module)
            names.update(f"{node.module}.{a.name}" for a in node.names)
        elif isinstance(node, ast.Import):
            names.update(a.name for a in node.names)
    return names


def test_no_module_of_the_daemon_imports_the_daemon_but_its_entry_point() -> None:
    importers = sorted(
        str(p.relative_to(ROOT))
        for p in (ROOT / "controller").rglob("*.py")
        if "controller.daemon" in imported_modules(p)
    )
    assert set(importers) <= ENTRY_POINTS, importers


def test_every_registered_component_is_a_component_with_a_name_of_its_own() -> None:
    kinds = all_components()
    assert all(issubclass(kind, Component) for kind in kinds)
    names = [kind.name for kind in kinds]
    assert len(set(names)) == len(names)


def test_the_self_test_runs_in_the_daemon_and_starts_again_after_a_reload(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(reporting, "MqttLink", FakeLink)
    data = yaml.safe_load(DEMO_CONFIG.read_text(encoding="utf-8"))
    data["site"]["self_test"] = "1h"
    config = tmp_path / "site.yaml"
    config.write_text(yaml.safe_dump(data, allow_unicode=True), encoding="utf-8")

    async def main() -> tuple[list[str], dict[str, object]]:
        d = Daemon(
            parse_config(config.read_text(encoding="utf-8"), str(config)),
            tmp_path / "state",
            simulate=True,
            clock=VirtualClock(T0),
        )
        await d.start()
        try:
            await d._h_sim_advance({"duration": "90m"})
            assert d.reload()
            await d._h_sim_advance({"duration": "1h"})
            assert d.journal is not None
            cids = [e.cid or "" for e in d.journal.events(kind="system")]
            return cids, d.status()
        finally:
            await d.stop("test over")

    cids, status = asyncio.run(main())
    assert cids.count("E602") == 2  # at 1 h, then 1 h after the reload at 1 h 30 (7:30)
    assert status["self_test"] == {
        "next": datetime(2026, 3, 4, 8, 30, tzinfo=UTC).isoformat(),
        "sent": 1,
    }


def test_a_site_without_cameras_or_a_receiving_centre_never_loads_their_libraries() -> None:
    """httpx and cryptography cost a Pi ~25 MB and ~0.2 s of start (docs/capacity.md)."""
    script = (
        "import sys\n"
        "from controller.config import load_config\n"
        "from controller.registry import components_for\n"
        "import controller.daemon, controller.cli\n"
        f"cfg = load_config({str(REFERENCE)!r}).config\n"
        "assert not cfg.cameras and cfg.dc09 is None\n"
        "names = [k.name for k in components_for(cfg)]\n"
        "assert 'cameras' not in names and 'dc09' not in names, names\n"
        "heavy = sorted(m for m in sys.modules if m.split('.')[0] in\n"
        "               ('httpx', 'cryptography', 'controller') and\n"
        "               (m.startswith(('httpx', 'cryptography', 'controller.camera',\n"
        "                              'controller.dc09'))))\n"
        "assert not heavy, heavy\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", script], cwd=ROOT, capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stderr


def test_cameras_and_a_receiving_centre_are_started_when_the_site_has_them(tmp_path: Path) -> None:
    data = yaml.safe_load(DEMO_CONFIG.read_text(encoding="utf-8"))
    data["dc09"] = {"account": "1234", "primary": {"host": "127.0.0.1", "port": 9}}
    creds = tmp_path / "camera.secret"
    creds.write_text("viewer:secret\n", encoding="utf-8")
    creds.chmod(0o600)
    data["cameras"] = [
        {"id": "cam.hall", "url": "http://127.0.0.1:9/snap.jpg",
         "credentials_file": str(creds), "zones": ["finance"]}
    ]  # fmt: skip
    cfg = parse_config(yaml.safe_dump(data, allow_unicode=True), "site.yaml").config
    names = [k.name for k in components_for(cfg)]
    assert names == [k.name for k in all_components()]
