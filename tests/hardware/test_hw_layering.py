"""hardware/ is a layer under the daemon: it imports nothing of controller/, and the daemon's
clocks drive its drivers through hardware's own Scheduler protocol (checked by mypy)."""

from __future__ import annotations

import ast
import subprocess
import sys
import textwrap
from pathlib import Path

from tests.conftest import ROOT

HARDWARE = ROOT / "hardware"


def _imported_modules(path: Path) -> set[str]:
    """Every module a file imports, at any depth (a function-level import counts too)."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), str(path))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            assert node.level == 0, f"{path.name}: use absolute imports"
            found.add(node.module or "")
    return found


def test_no_module_under_hardware_imports_the_controller() -> None:
    files = sorted(HARDWARE.rglob("*.py"))
    imports = {p.relative_to(ROOT).as_posix(): _imported_modules(p) for p in files}
    assert "hardware/sim.py" in imports and "gpiozero" in imports["hardware/inputs.py"]
    offending = {
        name: sorted(m for m in mods if m == "controller" or m.startswith("controller."))
        for name, mods in imports.items()
    }
    assert {name: mods for name, mods in offending.items() if mods} == {}


def test_the_daemons_clocks_are_schedulers_and_a_clockless_object_is_not(tmp_path: Path) -> None:
    probe = tmp_path / "probe.py"
    probe.write_text(
        textwrap.dedent(
            """\
            import asyncio
            from datetime import UTC, datetime

            from controller.clock import Clock, RealClock, VirtualClock
            from hardware.timing import Scheduler, SimScheduler


            def clocks(loop: asyncio.AbstractEventLoop, clock: Clock) -> None:
                real: SimScheduler = RealClock(loop)
                virtual: SimScheduler = VirtualClock(datetime.now(UTC))
                any_clock: SimScheduler = clock
                not_a_clock: Scheduler = object()  # the control: mypy must refuse this one
            """
        ),
        encoding="utf-8",
    )
    result = subprocess.run(
        [sys.executable, "-m", "mypy", "--strict", "--no-incremental", str(probe)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )
    errors = [line for line in result.stdout.splitlines() if ": error:" in line]
    assert len(errors) == 1, result.stdout
    assert errors[0].startswith(f"{probe}:12:") and '"Scheduler"' in errors[0]
