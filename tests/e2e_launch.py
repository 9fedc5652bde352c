"""A tests/e2e.py Site whose daemon starts through another command line: run as another user
(`setpriv ...` in front) or through a small launcher instead of `python -m controller`.
(tests/e2e.py itself builds a fixed argv; this keeps everything else of it.)"""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

from tests.e2e import DEMO_CONFIG, ROOT, Site


class LaunchedSite(Site):
    def __init__(
        self,
        state_dir: Path,
        config: Path = DEMO_CONFIG,
        extra_env: dict[str, str] | None = None,
        *,
        prefix: list[str] | None = None,
        launcher: list[str] | None = None,
    ):
        super().__init__(state_dir, config, extra_env)
        self.prefix = list(prefix or [])
        self.launcher = list(launcher or [sys.executable, "-m", "controller"])

    def start(self, clock: str, *extra: str, timeout: float = 30.0) -> None:
        self.state_dir.mkdir(parents=True, exist_ok=True)
        sock = self.state_dir / "control.sock"
        if sock.exists():
            sock.unlink()
        log = open(self.log_path, "a")  # noqa: SIM115 - closed with the process
        argv = [
            *self.prefix,
            *self.launcher,
            "run",
            "-c",
            str(self.config),
            "--simulate",
            "--state-dir",
            str(self.state_dir),
            "--clock",
            clock,
            *extra,
        ]
        self.proc = subprocess.Popen(
            argv, cwd=ROOT, env=self.env, stdout=log, stderr=subprocess.STDOUT, text=True
        )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"daemon exited with {self.proc.returncode}:\n{self.log()}")
            if sock.exists():
                try:
                    self.og("status", "--json")
                    return
                except AssertionError:
                    pass
            time.sleep(0.05)
        raise RuntimeError(f"daemon did not come up:\n{self.log()}")


# the daemon with controller.logs in charge of logging (what cli.main will call), verbose
LOGS_LAUNCHER = [
    sys.executable,
    "-c",
    "import sys; from controller.logs import setup_logging; setup_logging(verbose=True); "
    "from controller.cli import main; sys.exit(main(sys.argv[1:]))",
]
