"""The station as a real process (`officeguard station serve`), for end-to-end tests."""

from __future__ import annotations

import os
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

from tests.e2e import ROOT, stop_process
from tests.station.webclient import free_port


def og_station(*args: str, input: str | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "controller", "station", *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        input=input,
        timeout=60,
    )


class StationProc:
    def __init__(self, work: Path, db: str, broker_url: str, *extra: str) -> None:
        self.work = work
        self.db = db
        self.broker_url = broker_url
        self.extra = extra
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.secret = work / "station.secret"
        if not self.secret.exists():
            fd = os.open(self.secret, os.O_WRONLY | os.O_CREAT, 0o600)
            with os.fdopen(fd, "w") as f:
                f.write("s" * 48)
        self.log_path = work / "station.log"
        self.proc: subprocess.Popen[str] | None = None

    def start(self, timeout: float = 30.0) -> None:
        log = open(self.log_path, "a")  # noqa: SIM115 - closed with the process
        self.proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "controller",
                "station",
                "serve",
                "--db",
                self.db,
                "--broker",
                self.broker_url,
                "--listen",
                f"127.0.0.1:{self.port}",
                "--secret-file",
                str(self.secret),
                *self.extra,
            ],
            cwd=ROOT,
            env={**os.environ, "PYTHONUNBUFFERED": "1"},
            stdout=log,
            stderr=subprocess.STDOUT,
            text=True,
        )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"station exited with {self.proc.returncode}:\n{self.log()}")
            try:
                with urllib.request.urlopen(self.url + "/health", timeout=2) as r:
                    if r.status == 200:
                        return
            except OSError:
                pass
            time.sleep(0.1)
        raise RuntimeError(f"station did not come up:\n{self.log()}")

    def log(self) -> str:
        return self.log_path.read_text() if self.log_path.exists() else ""

    def stop(self) -> int:
        return stop_process(self.proc)
