"""A Mosquitto of our own on 127.0.0.1, for `make demo`, the tests and the benches.

It writes a configuration file into a work directory (a listener on a free or given port,
anonymous access, TCP_NODELAY, persistence in the work directory when asked, extra lines),
starts the system's `mosquitto` on it and returns once the port accepts connections. It can be
stopped and started again on the same port, which is how the tests simulate an outage of the
security office's broker. There is no pip-installable Mosquitto: where it is missing,
`MosquittoMissing` names the one command to run (`make demo` and `make test` run it as root).
"""

from __future__ import annotations

import contextlib
import os
import shutil
import socket
import subprocess
import time
from pathlib import Path

from controller.errors import OfficeGuardError

INSTALL_COMMAND = "apt-get install mosquitto"
# Debian puts the broker in /usr/sbin, which is not on an ordinary user's PATH
SEARCH_PATH = os.pathsep.join(
    [os.environ.get("PATH", ""), "/usr/sbin", "/usr/local/sbin", "/opt/homebrew/sbin"]
)


class MosquittoMissing(OfficeGuardError, RuntimeError):
    """No `mosquitto` binary on this machine; the message says how to install it."""

    def __init__(self) -> None:
        super().__init__(f"Mosquitto is not installed: run `sudo {INSTALL_COMMAND}`")


def mosquitto_binary(search: str | None = None) -> str:
    """The path of the `mosquitto` broker binary, looked for on `search` (by default PATH and
    the sbin directories); raises MosquittoMissing when there is none."""
    found = shutil.which("mosquitto", path=SEARCH_PATH if search is None else search)
    if found is None:
        raise MosquittoMissing()
    return found


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class LocalMosquitto:
    """Mosquitto on 127.0.0.1:`port` (a free one when not given) in a subprocess.

    `start()` (again after `stop()`, on the same port), `stop()` (SIGTERM: a persistent broker
    saves its sessions and retained messages), `kill()` (SIGKILL: nothing saved). With
    `persistent=True` the database lives in `workdir`; `nodelay` sets `set_tcp_nodelay`
    (Mosquitto's default is off, which adds ~40 ms to a small reply); `extra_conf` lines are
    appended as they are. `config` replaces all of that with a whole configuration of the
    caller's (which must listen on 127.0.0.1:`port`). The file is written at once, so a caller
    may read `conf`.
    """

    def __init__(
        self,
        workdir: Path,
        port: int | None = None,
        *,
        persistent: bool = False,
        nodelay: bool = True,
        allow_anonymous: bool = True,
        extra_conf: str = "",
        config: str | None = None,
    ) -> None:
        self.binary = mosquitto_binary()
        self.workdir = Path(workdir)
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.port = port if port is not None else free_port()
        self.conf = self.workdir / "mosquitto.conf"
        self.log = self.workdir / "mosquitto.log"
        self.proc: subprocess.Popen[bytes] | None = None
        if config is not None:
            self.conf.write_text(config, encoding="utf-8")
            return
        lines = [
            f"listener {self.port} 127.0.0.1",
            f"allow_anonymous {'true' if allow_anonymous else 'false'}",
            f"set_tcp_nodelay {'true' if nodelay else 'false'}",
        ]
        if persistent:
            lines += ["persistence true", f"persistence_location {self.workdir}/"]
        else:
            lines.append("persistence false")
        with contextlib.suppress(KeyError, OSError):
            import pwd

            # started as root, mosquitto would switch to a user who may not write to workdir
            lines.append(f"user {pwd.getpwuid(os.getuid()).pw_name}")
        self.conf.write_text("\n".join(lines) + "\n" + extra_conf, encoding="utf-8")

    @property
    def url(self) -> str:
        return f"mqtt://127.0.0.1:{self.port}"

    @property
    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def start(self, timeout: float = 10.0) -> None:
        """Start (unless running) and return once the port accepts connections."""
        if self.running:
            return
        if self._port_taken():
            # else the wait below would take another program's listener for ours
            raise RuntimeError(f"cannot start mosquitto: port {self.port} is already in use")
        with open(self.log, "ab") as out:
            self.proc = subprocess.Popen(
                [self.binary, "-c", str(self.conf)],
                stdout=out,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
            )
        end = time.monotonic() + timeout
        while time.monotonic() < end and self.proc.poll() is None:
            if self.accepting():
                return
            time.sleep(0.02)
        self.kill()
        tail = self.log.read_text(encoding="utf-8", errors="replace")[-2000:]
        raise RuntimeError(f"mosquitto did not start on port {self.port}: {tail}")

    def _port_taken(self) -> bool:
        with socket.socket() as s:
            s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            try:
                s.bind(("127.0.0.1", self.port))
            except OSError:
                return True
        return False

    def accepting(self) -> bool:
        """True when a TCP connection to the port succeeds."""
        try:
            with socket.create_connection(("127.0.0.1", self.port), timeout=0.2):
                return True
        except OSError:
            return False

    def stop(self, timeout: float = 5.0) -> None:
        """SIGTERM and wait (SIGKILL after `timeout`)."""
        if self.proc is None:
            return
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout)
        self.proc = None

    def kill(self) -> None:
        """SIGKILL: a crash, nothing saved."""
        if self.proc is None:
            return
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(5)
        self.proc = None

    def __enter__(self) -> LocalMosquitto:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()
