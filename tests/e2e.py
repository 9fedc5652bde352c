"""Running the real daemon as a separate process and driving it through the real CLI."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from controller.control import fallback_socket_path


def shows_code(code: str, text: str) -> bool:
    """Whether `text` shows `code` as a value of its own: not the same digits inside an event id,
    a timestamp or a pid, which random ids and clocks produce now and then (a flaky check)."""
    return re.search(rf"(?<![0-9A-Za-z]){re.escape(code)}(?![0-9A-Za-z])", text) is not None

ROOT = Path(__file__).resolve().parent.parent
DEMO_CONFIG = ROOT / "config" / "demo.yaml"

def stop_process(proc: subprocess.Popen[Any] | None) -> int:
    """SIGTERM a daemon-like process and return its exit status (a clean stop is part of what
    the tests check); one that does not stop within 15 s is killed and the test fails."""
    if proc is None or proc.poll() is not None:
        return proc.returncode if proc else 0
    proc.send_signal(signal.SIGTERM)
    try:
        return proc.wait(15)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(5)
        raise



class Site:
    """One simulated site: a daemon process on a virtual clock, with its own state directory."""

    def __init__(
        self,
        state_dir: Path,
        config: Path = DEMO_CONFIG,
        extra_env: dict[str, str] | None = None,
        *,
        prefix: list[str] | None = None,
    ):
        """`prefix`: put in front of the daemon's command line, e.g. `setpriv --reuid=nobody`
        to run it as an unprivileged user."""
        self.state_dir = state_dir
        self.prefix = list(prefix or [])
        self.config = config
        self.proc: subprocess.Popen[str] | None = None
        self.env = {**os.environ, "PYTHONUNBUFFERED": "1", **(extra_env or {})}
        self.log_path = state_dir / "daemon.log"

    def start(self, clock: str, *extra: str, timeout: float = 30.0) -> None:
        self.state_dir.mkdir(parents=True, exist_ok=True)
        sock = self.state_dir / "control.sock"
        if sock.exists():
            sock.unlink()
        # where the daemon listens when the state directory cannot hold its socket
        fallback = fallback_socket_path(self.state_dir, self.env)
        log = open(self.log_path, "a")  # noqa: SIM115 - closed with the process
        self.proc = subprocess.Popen(
            [
                *self.prefix,
                sys.executable,
                "-m",
                "controller",
                "run",
                "-c",
                str(self.config),
                "--simulate",
                "--state-dir",
                str(self.state_dir),
                "--clock",
                clock,
                *extra,
            ],
            cwd=ROOT,
            env=self.env,
            stdout=log,
            stderr=subprocess.STDOUT,
            text=True,
        )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"daemon exited with {self.proc.returncode}:\n{self.log()}")
            if sock.exists() or fallback.exists():
                try:
                    self.og("status", "--json")
                    return
                except AssertionError:
                    pass
            time.sleep(0.05)
        raise RuntimeError(f"daemon did not come up:\n{self.log()}")

    def log(self) -> str:
        return self.log_path.read_text() if self.log_path.exists() else ""

    def og(
        self, *args: str, input: str | None = None, check: bool = True
    ) -> subprocess.CompletedProcess[str]:
        """Run `officeguard ARGS --state-dir DIR` (the option goes after the sub-command)."""
        argv = [sys.executable, "-m", "controller", *args]
        if args and args[0] not in ("check-config", "schedule", "hash-code", "monitor"):
            argv += ["--state-dir", str(self.state_dir)]
        r = subprocess.run(
            argv, cwd=ROOT, env=self.env, capture_output=True, text=True, input=input, timeout=60
        )
        if check:
            assert r.returncode == 0, f"{args}: exit {r.returncode}\n{r.stdout}\n{r.stderr}"
        return r

    def status(self) -> dict[str, Any]:
        return json.loads(self.og("status", "--json").stdout)

    def zone(self, zone: str) -> str:
        return str(self.status()["zones"][zone]["state"])

    def outputs(self) -> dict[str, bool]:
        return json.loads(self.og("sim", "outputs").stdout)

    def advance(self, duration: str) -> None:
        self.og("sim", "advance", duration)

    def events(self) -> list[dict[str, Any]]:
        out = self.og("log", "--json").stdout
        return [json.loads(line) for line in out.splitlines() if line.strip()]

    def kill(self) -> None:
        assert self.proc is not None
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(10)

    def stop(self) -> int:
        return stop_process(self.proc)
