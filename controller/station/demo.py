"""The monitoring station beside `make demo`'s simulated site: a throwaway SQLite database in
the demo's directory, one demo operator with a password made for this run, the station process
on a free loopback port. `controller/demo/run.py` starts it, prints its address and login, and
at the end reads how many incidents the night left in the queue."""

from __future__ import annotations

import html
import http.cookiejar
import json
import os
import re
import secrets
import signal
import socket
import subprocess
import sys
import time
import urllib.parse
import urllib.request
from pathlib import Path
from typing import IO

DEMO_LOGIN = "demo"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class DemoStation:
    def __init__(self, workdir: Path, broker_url: str, root: Path) -> None:
        self.dir = workdir
        self.dir.mkdir(parents=True, exist_ok=True)
        self.db = f"sqlite:///{self.dir / 'station.db'}"
        self.broker_url = broker_url
        self.root = root
        self.port = _free_port()
        self.url = f"http://127.0.0.1:{self.port}/"
        self.password = "demo-" + secrets.token_urlsafe(9)
        self.proc: subprocess.Popen[str] | None = None
        self._log: IO[str] | None = None

    def _og(self, *args: str, input: str | None = None) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "controller", "station", *args],
            capture_output=True, text=True, input=input, cwd=self.root, timeout=60,
        )  # fmt: skip

    def start(self, timeout: float = 30.0) -> None:
        r = self._og(
            "operator", DEMO_LOGIN, "--role", "admin", "--db", self.db, input=self.password + "\n"
        )
        if r.returncode != 0:
            raise RuntimeError(f"station operator: {r.stderr.strip()}")
        self._log = open(self.dir / "station.log", "w")  # noqa: SIM115 - closed in stop()
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "controller", "station", "serve", "--db", self.db,
             "--broker", self.broker_url, "--listen", f"127.0.0.1:{self.port}"],
            stdout=self._log, stderr=subprocess.STDOUT, cwd=self.root,
            env={**os.environ, "PYTHONUNBUFFERED": "1"}, text=True,
        )  # fmt: skip
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError((self.dir / "station.log").read_text())
            try:
                with urllib.request.urlopen(self.url + "health", timeout=2) as resp:  # noqa: S310 - http://127.0.0.1
                    if resp.status == 200:
                        return
            except OSError:
                time.sleep(0.1)
        raise RuntimeError("the station did not come up")

    def health(self) -> dict[str, object]:
        with urllib.request.urlopen(self.url + "health", timeout=5) as resp:  # noqa: S310 - http://127.0.0.1
            return dict(json.loads(resp.read()))

    def open_incidents(self) -> list[str]:
        """The open queue's incidents as an operator sees them (logged in over HTTP)."""
        opener = urllib.request.build_opener(
            urllib.request.HTTPCookieProcessor(http.cookiejar.CookieJar())
        )
        with opener.open(self.url + "login", timeout=10) as resp:
            page = resp.read().decode()
        m = re.search(r'name="csrf" value="([^"]+)"', page)
        form = {"csrf": m.group(1) if m else "", "login": DEMO_LOGIN, "password": self.password}
        with opener.open(
            self.url + "login", urllib.parse.urlencode(form).encode(), timeout=10
        ) as resp:
            page = resp.read().decode()
        return [html.unescape(t) for t in re.findall(r"</a><br><small>([^<]*)</small>", page)]

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
        if self._log is not None:
            self._log.close()
