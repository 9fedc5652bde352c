"""One daemon per state directory: a second `run` is refused, and nobody removes a control
socket it did not make."""

from __future__ import annotations

import asyncio
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from controller.control import ControlServer, socket_path
from controller.statelock import EXIT_LOCKED, LOCK_NAME, StateDirLocked, StateLock
from tests.e2e import DEMO_CONFIG, ROOT, Site

WEDNESDAY_NOON = "2026-03-04T12:00:00+07:00"


@pytest.mark.integration
def test_a_second_daemon_on_a_live_state_dir_is_refused_and_the_first_keeps_answering(
    tmp_path: Path,
) -> None:
    site = Site(tmp_path / "state")
    site.start(WEDNESDAY_NOON)
    try:
        sock = socket_path(site.state_dir)
        inode = sock.stat().st_ino
        seq_before = site.status()["last_seq"]
        second = subprocess.run(
            [
                sys.executable,
                "-m",
                "controller",
                "run",
                "-c",
                str(DEMO_CONFIG),
                "--simulate",
                "--state-dir",
                str(site.state_dir),
                "--clock",
                WEDNESDAY_NOON,
            ],
            cwd=ROOT,
            env=site.env,
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert second.returncode == EXIT_LOCKED, second.stderr
        # one line of its own (the config's warnings are logged before it, as at every start)
        lines = [ln for ln in second.stderr.splitlines() if ln.startswith("officeguard:")]
        assert len(lines) == 1, second.stderr
        assert "another officeguard daemon" in lines[0]
        assert site.proc is not None and f"pid {site.proc.pid}" in lines[0]
        assert str(site.state_dir) in lines[0] and "--state-dir" in lines[0]
        assert "Traceback" not in second.stdout + second.stderr
        # the first one still has its socket, answers, and nothing was written in its name
        assert sock.stat().st_ino == inode
        st = site.status()
        assert st["site"] == "office-a"
        assert st["last_seq"] == seq_before
    finally:
        assert site.stop() == 0


def test_the_lock_is_refused_to_a_second_holder_and_free_again_after_release(
    tmp_path: Path,
) -> None:
    env = {"RUNTIME_DIRECTORY": str(tmp_path / "run")}
    first = StateLock(tmp_path / "state", env)
    (tmp_path / "state").mkdir()
    first.acquire()
    assert first.paths == [tmp_path / "state" / LOCK_NAME]
    with pytest.raises(StateDirLocked, match="another officeguard daemon"):
        StateLock(tmp_path / "state", env).acquire()
    first.release()
    again = StateLock(tmp_path / "state", env)
    again.acquire()
    again.release()


def test_the_lock_holds_on_a_read_only_lock_file_left_by_an_earlier_run(tmp_path: Path) -> None:
    """A card that came back read-only still has the lock file: flock works on it read-only."""
    state = tmp_path / "state"
    state.mkdir()
    (state / LOCK_NAME).write_text("")
    (state / LOCK_NAME).chmod(0o444)
    env = {"RUNTIME_DIRECTORY": str(tmp_path / "run")}
    first = StateLock(state, env)
    first.acquire()
    try:
        assert first.paths == [state / LOCK_NAME]
        with pytest.raises(StateDirLocked):
            StateLock(state, env).acquire()
    finally:
        first.release()


def test_a_state_dir_that_cannot_hold_a_lock_file_is_locked_in_the_runtime_dir(
    tmp_path: Path,
) -> None:
    """Where the control socket falls back to, the lock does too, so two daemons still meet."""
    blocker = tmp_path / "not-a-dir"
    blocker.write_text("")
    state = blocker / "state"  # cannot be created, even by root
    env = {"RUNTIME_DIRECTORY": str(tmp_path / "run")}
    first = StateLock(state, env)
    first.acquire()
    try:
        assert len(first.paths) == 1 and first.paths[0].parent == tmp_path / "run"
        with pytest.raises(StateDirLocked):
            StateLock(state, env).acquire()
    finally:
        first.release()


def test_a_daemon_that_started_on_the_runtime_lock_keeps_a_later_one_out(tmp_path: Path) -> None:
    env = {"RUNTIME_DIRECTORY": str(tmp_path / "run")}
    state = tmp_path / "state"
    state.write_text("")  # not a directory yet: no lock file can go there
    first = StateLock(state, env)
    first.acquire()
    try:
        assert first.paths[0].parent == tmp_path / "run"
        state.unlink()
        state.mkdir()  # the state directory is usable again
        second = StateLock(state, env)
        with pytest.raises(StateDirLocked):
            second.acquire()
        assert second.fds == []  # what it had taken meanwhile is let go
    finally:
        first.release()


def test_stopping_leaves_a_control_socket_that_another_process_put_in_its_place(
    tmp_path: Path,
) -> None:
    async def scenario() -> None:
        server = ControlServer(tmp_path, {})
        await server.start()
        path = socket_path(tmp_path)
        assert server.path == path
        # someone else's socket now sits at the same path
        path.unlink()
        other = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        other.bind(str(path))
        try:
            await server.stop()
            assert path.exists()
        finally:
            other.close()

    asyncio.run(scenario())


def test_stopping_removes_the_control_socket_it_made(tmp_path: Path) -> None:
    async def scenario() -> None:
        server = ControlServer(tmp_path, {})
        await server.start()
        assert socket_path(tmp_path).exists()
        await server.stop()
        assert not socket_path(tmp_path).exists()

    asyncio.run(scenario())


def test_a_daemon_that_fails_to_start_lets_go_of_its_state_dir(tmp_path: Path) -> None:
    """No GPIO here (or a pin another program holds): the refusal leaves nothing locked."""
    from controller.clock import VirtualClock
    from controller.config import load_config
    from controller.daemon import Daemon
    from hardware.backend import HardwareError
    from tests.conftest import T0
    from tests.daemon.test_operator_errors import OFFICE_A, _no_gpio_here

    if not _no_gpio_here():
        pytest.skip("this machine has GPIO")

    async def main() -> None:
        d = Daemon(load_config(OFFICE_A), tmp_path / "state", clock=VirtualClock(T0))
        with pytest.raises(HardwareError):
            await d.start()
        assert d.journal is None

    asyncio.run(main())
    after = StateLock(tmp_path / "state", {"RUNTIME_DIRECTORY": str(tmp_path / "run")})
    after.acquire()
    assert after.paths == [tmp_path / "state" / LOCK_NAME]
    after.release()
