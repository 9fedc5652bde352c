"""The daemon as a walker of components: no module of the daemon imports the daemon but its
entry point, every registered component follows the lifecycle, and the self-test (one line
in the registry) runs in a real daemon, through a reload, on the virtual clock."""

from __future__ import annotations

import ast
import asyncio
from datetime import UTC, datetime
from pathlib import Path

import pytest
import yaml

from controller.clock import VirtualClock
from controller.component import Component
from controller.config import parse_config
from controller.daemon import Daemon
from controller.registry import COMPONENTS
from controller.reporting import component as reporting
from tests.conftest import ROOT
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
    assert all(issubclass(kind, Component) for kind in COMPONENTS)
    names = [kind.name for kind in COMPONENTS]
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
