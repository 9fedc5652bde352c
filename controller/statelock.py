"""One daemon per state directory: an exclusive `flock` held for the daemon's whole life.

Two daemons on one state directory would both drive the sirens, both flap the broker link with
the same client id, number events with colliding `seq`, and the one that stops last would take
the other's control socket with it. So the daemon locks `daemon.lock` in the state directory
before it touches anything there, and a second one is refused with one line and EX_TEMPFAIL
(75: the condition passes when the first stops; under systemd, `Restart=` simply tries again).

Where the lock lives follows where the daemon keeps its things. Normally the state directory.
A read-only card still holds the lock file from earlier runs, and `flock` works on a file
opened read-only, so the lock stays there. Only when the state directory cannot give us a lock
file at all (it is missing and cannot be made, or read-only without the file) does the lock go
to the runtime directory, under the same per-state-directory name scheme as the control
socket's fallback, so that two daemons on that state directory still meet there. A lock file
already present in the runtime directory is taken as well: a daemon that started while the
state directory was unusable keeps a later one out after the directory comes back. The kernel
drops the lock when the process dies, so a crash never leaves a stale lock behind.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import logging
import os
from collections.abc import Mapping
from pathlib import Path

from controller.control import runtime_file
from controller.errors import OfficeGuardError

log = logging.getLogger(__name__)

LOCK_NAME = "daemon.lock"
EXIT_LOCKED = 75  # EX_TEMPFAIL from sysexits.h


class StateDirLocked(OfficeGuardError):
    """Another daemon holds the state directory; the message is the one line to show."""


def runtime_lock_path(state_dir: str | Path, env: Mapping[str, str] | None = None) -> Path:
    return runtime_file(state_dir, "daemon", ".lock", env)


class StateLock:
    """The daemon's exclusive hold on its state directory (see the module's docstring)."""

    def __init__(self, state_dir: str | Path, env: Mapping[str, str] | None = None):
        self.state_dir = Path(state_dir)
        self.env = os.environ if env is None else env
        self.fds: list[int] = []
        self.paths: list[Path] = []

    def acquire(self) -> None:
        """Take the lock, or raise StateDirLocked naming the holder's pid and the way out.
        When no lock file can be opened anywhere it logs one line and goes on: the alarm then
        runs unguarded rather than not at all."""
        primary = self.state_dir / LOCK_NAME
        fallback = runtime_lock_path(self.state_dir, self.env)
        candidates = [primary]
        if fallback.exists():
            candidates.append(fallback)
        try:
            for path in candidates:
                self._take(path)
            if not self.fds:
                self._take(fallback, create_dir=True)
        except StateDirLocked:
            self.release()
            raise
        if not self.fds:
            log.error(
                "cannot lock the state directory %s (nor in %s): nothing keeps a second daemon "
                "out; make the state directory writable by the service user",
                self.state_dir,
                fallback.parent,
            )

    def _take(self, path: Path, create_dir: bool = False) -> None:
        fd = _open_lock_file(path, create_dir)
        if fd is None:
            return
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as e:
            holder = _read_pid(fd)
            os.close(fd)
            if e.errno not in (errno.EWOULDBLOCK, errno.EAGAIN, errno.EACCES):
                log.error("cannot lock %s: %s", path, e.strerror or e)
                return
            who = f"pid {holder}" if holder else "another process"
            raise StateDirLocked(
                f"another officeguard daemon ({who}) runs on the state directory "
                f"{self.state_dir} (lock {path}): stop it first, or give this one its own "
                f"--state-dir"
            ) from None
        _write_pid(fd)
        self.fds.append(fd)
        self.paths.append(path)

    def release(self) -> None:
        """Let go (the files stay: removing them would let a third daemon lock a new file while
        a second still waits on the old one)."""
        for fd in self.fds:
            with contextlib.suppress(OSError):
                os.close(fd)
        self.fds = []
        self.paths = []


def _open_lock_file(path: Path, create_dir: bool) -> int | None:
    if create_dir:
        with contextlib.suppress(OSError):
            path.parent.mkdir(parents=True, exist_ok=True, mode=0o750)
    for flags in (os.O_RDWR | os.O_CREAT, os.O_RDONLY):
        try:
            return os.open(path, flags | os.O_CLOEXEC, 0o640)
        except OSError:
            continue
    return None


def _write_pid(fd: int) -> None:
    """The holder's pid in the file, for the refusal message only (best effort: the file may
    be read-only)."""
    with contextlib.suppress(OSError):
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)


def _read_pid(fd: int) -> int | None:
    try:
        text = os.pread(fd, 32, 0).decode("ascii", "replace").strip()
    except OSError:
        return None
    return int(text) if text.isdigit() else None
