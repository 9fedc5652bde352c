"""The logbook on a real disk, through the real daemon process (tests/e2e.py Site).

- Idle: ten minutes with nothing happening (virtual clock) write nothing at all: the journal
  file and its WAL keep the same bytes, and SQLite's data_version seen from another
  connection does not move (an idle controller does not wear its SD card).
- Full disk: the state directory on a small tmpfs filled to the last byte (a real ENOSPC from
  the kernel): an intrusion still sounds the siren, the daemon shows a storage trouble and keeps
  the events in memory, and once space is freed they are written with no gap in seq and an
  intact database. Needs root for the mount (skipped otherwise).
"""

from __future__ import annotations

import errno
import hashlib
import os
import shutil
import sqlite3
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.e2e import DEMO_CONFIG, ROOT, Site, shows_code
from tests.mqtt_broker import Broker, wait_for

pytestmark = pytest.mark.integration

WEDNESDAY_NOON = "2026-03-04T12:00:00+07:00"  # no schedule transition for hours


def _fingerprint(state: Path) -> dict[str, tuple[int, int, str]]:
    """Size, mtime and content hash of the journal and its WAL (not the -shm index, which
    readers touch too)."""
    out = {}
    for name in ("journal.db", "journal.db-wal"):
        p = state / name
        if p.exists():
            st = p.stat()
            out[name] = (st.st_size, st.st_mtime_ns, hashlib.sha256(p.read_bytes()).hexdigest())
    return out


def test_ten_idle_minutes_write_nothing(tmp_path: Path) -> None:
    (tmp_path / "broker").mkdir()
    broker = Broker(tmp_path / "broker")
    broker.start()
    cfg = tmp_path / "site.yaml"
    cfg.write_text(
        DEMO_CONFIG.read_text(encoding="utf-8").replace("mqtt://127.0.0.1:1883", broker.url),
        encoding="utf-8",
    )
    state = tmp_path / "state"
    site = Site(state, config=cfg)
    site.start(WEDNESDAY_NOON)
    try:
        # arm a zone (an armed site is the usual idle state at night), let the start-up and
        # the detector's first silence trouble happen, and let the outbox drain
        site.og("arm", "perimeter", "--mode", "night", input="2468\n")
        site.advance("1m")
        assert wait_for(lambda: site.status()["broker"]["connected"], timeout=15)
        assert wait_for(lambda: site.status()["outbox"] == 0, timeout=15)
        last_seq = site.status()["last_seq"]
        before = _fingerprint(state)
        assert "journal.db" in before
        watcher = sqlite3.connect(f"file:{state / 'journal.db'}?mode=ro", uri=True)
        try:
            v0 = watcher.execute("PRAGMA data_version").fetchone()[0]
            for _ in range(5):
                site.advance("2m")
            v1 = watcher.execute("PRAGMA data_version").fetchone()[0]
        finally:
            watcher.close()
        st = site.status()
        assert st["zones"]["perimeter"]["state"] == "armed_night"
        assert st["last_seq"] == last_seq  # no event in ten idle minutes
        assert v1 == v0, "another connection committed to the journal while idle"
        assert _fingerprint(state) == before
    finally:
        site.stop()
        broker.stop()


# ------------------------------------------------------------------------------ full disk


def _mount_tmpfs(where: Path, size: str) -> bool:
    if os.geteuid() != 0:
        return False
    where.mkdir(parents=True, exist_ok=True)
    r = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", f"size={size},mode=0755", "tmpfs", str(where)],
        capture_output=True,
        text=True,
    )
    return r.returncode == 0


def _fill(disk: Path) -> Path:
    """Fill the file system to the last byte; returns the filler file."""
    filler = disk / "filler"
    chunk = b"\0" * 65536
    with open(filler, "wb", buffering=0) as f:
        while True:
            try:
                f.write(chunk)
            except OSError as e:
                if e.errno != errno.ENOSPC:
                    raise
                if len(chunk) == 1:
                    break
                chunk = chunk[: len(chunk) // 2]
    return filler


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    disk = tmp_path / "disk"
    if not _mount_tmpfs(disk, "4m"):
        pytest.skip("mounting a small tmpfs needs root (CAP_SYS_ADMIN)")
    try:
        yield disk
    finally:
        subprocess.run(["umount", "-l", str(disk)], capture_output=True)


def test_a_full_disk_still_sounds_the_siren_and_writes_the_events_later(
    small_disk: Path, tmp_path: Path
) -> None:
    cfg = tmp_path / "site.yaml"
    # no broker for this site: every event stays in the outbox, so the outbox shows them too
    cfg.write_text(
        DEMO_CONFIG.read_text(encoding="utf-8").replace(
            "mqtt://127.0.0.1:1883", "mqtt://127.0.0.1:9"
        ),
        encoding="utf-8",
    )
    state = small_disk / "state"
    site = Site(state, config=cfg)
    # the daemon's own output goes beside, not onto the full disk
    site.log_path = tmp_path / "daemon.log"
    site.start(WEDNESDAY_NOON)
    try:
        site.og("arm", "perimeter", "--mode", "night", input="2468\n")
        assert site.zone("perimeter") == "armed_night"
        written_before = site.events()
        last_written = written_before[-1]["seq"]
        outbox_before = site.status()["outbox"]

        filler = _fill(small_disk)
        site.og("sim", "set", "gate.main", "active")  # instant: intrusion at the gate
        assert site.outputs()["siren.hall"] is True
        st = site.status()
        assert st["zones"]["perimeter"]["state"] == "triggered"
        journal_troubles = [t for t in st["troubles"] if t.get("source") == "journal"]
        assert journal_troubles, st["troubles"]
        assert journal_troubles[0]["what"].startswith("logbook not writable")
        waiting = st["last_seq"] - last_written
        assert waiting >= 1  # the alarm at least, numbered but not on disk
        assert st["outbox"] == outbox_before + waiting  # waiting in memory, still to be sent
        assert [e["seq"] for e in site.events()][-1] == last_written  # nothing reached the disk

        # more happens while the disk is full: still no crash, still numbered in order
        site.og("sim", "set", "tamper.cabinet", "active")
        assert site.proc is not None and site.proc.poll() is None
        assert site.status()["last_seq"] > st["last_seq"]

        # space again: the next event writes everything that waited
        filler.unlink()
        site.og("sim", "set", "tamper.cabinet", "inactive")
        st = site.status()
        assert not [t for t in st["troubles"] if t.get("source") == "journal"], st["troubles"]
        events = site.events()
        seqs = [e["seq"] for e in events]
        assert seqs == list(range(seqs[0], seqs[-1] + 1))  # no gap
        assert seqs[-1] == st["last_seq"]
        alarms = [e for e in events if e["kind"] == "alarm" and e.get("sensor") == "gate.main"]
        assert len(alarms) == 1 and alarms[0]["seq"] > last_written
        assert site.outputs()["siren.hall"] is True  # the siren never stopped meanwhile
        db = sqlite3.connect(f"file:{state / 'journal.db'}?mode=ro", uri=True)
        try:
            assert db.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        finally:
            db.close()
    finally:
        assert site.stop() == 0
    log = site.log()
    assert "journal write failed" in log and "journal writable again" in log
    # the stopped daemon's last logbook line made it to disk too
    assert site.events()[-1]["kind"] == "system"


# ------------------------------------------------------------------- read-only journal files

AS_NOBODY = ["setpriv", "--reuid=nobody", "--regid=nogroup", "--clear-groups"]


@pytest.fixture
def nobody_dir() -> Iterator[Path]:
    """A state directory an unprivileged daemon owns (root ignores file modes, so the daemon
    must run as someone else for a read-only file to mean anything)."""
    import tempfile

    if os.geteuid() != 0 or shutil.which("setpriv") is None:
        pytest.skip("needs root and setpriv to run the daemon as nobody")
    base = Path(tempfile.mkdtemp(prefix="og-ro-"))
    base.chmod(0o755)
    state = base / "state"
    state.mkdir()
    shutil.chown(state, "nobody", "nogroup")
    state.chmod(0o750)
    probe = subprocess.run(
        [*AS_NOBODY, sys.executable, "-c", "import controller.daemon"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )
    if probe.returncode != 0:
        shutil.rmtree(base)
        pytest.skip(f"this Python cannot run as nobody here: {probe.stderr.strip()[-200:]}")
    try:
        yield state
    finally:
        shutil.rmtree(base, ignore_errors=True)


def test_a_restart_with_a_journal_it_cannot_write_still_sounds_the_siren(nobody_dir: Path) -> None:
    """Someone ran the controller by hand as root once, so journal.db and its WAL now belong
    to root (or the card came back read-only after a power cut): the service, restarted as
    its own user, must still come up, keep the armed state and sound the siren."""
    site = Site(nobody_dir, prefix=AS_NOBODY)
    site.log_path = nobody_dir.parent / "daemon.log"
    site.start(WEDNESDAY_NOON)
    site.og("arm", "perimeter", "--mode", "night", input="2468\n")
    assert site.stop() == 0
    for p in nobody_dir.glob("journal.db*"):
        os.chown(p, 0, 0)
        p.chmod(0o644)
    site.start("2026-03-04T12:05:00+07:00")
    try:
        st = site.status()
        assert st["zones"]["perimeter"]["state"] == "armed_night"
        assert [t for t in st["troubles"] if t.get("source") == "journal"]
        assert st["unwritten"] >= 1  # the E300 trouble itself waits in memory
        site.og("sim", "set", "gate.main", "active")
        assert site.outputs()["siren.hall"] is True
        for p in nobody_dir.glob("journal.db*"):
            shutil.chown(p, "nobody", "nogroup")
        site.og("sim", "set", "tamper.cabinet", "active")  # the next event (24 h: always one)
        st = site.status()
        assert not [t for t in st["troubles"] if t.get("source") == "journal"]
        events = site.events()
        seqs = [e["seq"] for e in events]
        assert seqs == list(range(seqs[0], seqs[-1] + 1)) and seqs[-1] == st["last_seq"]
        assert any(e["kind"] == "alarm" and e.get("sensor") == "gate.main" for e in events)
        assert [e["cid"] for e in events if e["kind"].startswith("trouble")][-2:] == [
            "E300",
            "R300",
        ]
    finally:
        site.stop()


def test_a_state_dir_made_read_only_while_running_does_not_silence_the_siren(
    nobody_dir: Path,
) -> None:
    """The brief's flow for a running daemon, as its own unprivileged user: the state
    directory and the journal files are made read-only (chmod) while it runs, the night's
    intrusion comes, the siren sounds. SQLite keeps writing through the files it already has
    open (the kernel checks permissions at open, not at each write), so the logbook goes on,
    seq without gaps, intact; a card the kernel turns read-only takes the full-disk path."""
    site = Site(nobody_dir, prefix=AS_NOBODY)
    site.log_path = nobody_dir.parent / "daemon.log"
    site.start(WEDNESDAY_NOON)
    try:
        site.og("arm", "perimeter", "--mode", "night", input="2468\n")
        for p in nobody_dir.glob("journal.db*"):
            p.chmod(0o444)
        nobody_dir.chmod(0o550)
        site.og("sim", "set", "gate.main", "active")
        assert site.outputs()["siren.hall"] is True
        st = site.status()
        assert st["zones"]["perimeter"]["state"] == "triggered"
        events = site.events()
        assert any(e["kind"] == "alarm" and e.get("sensor") == "gate.main" for e in events)
        seqs = [e["seq"] for e in events]
        assert seqs == list(range(seqs[0], seqs[-1] + 1)) and seqs[-1] == st["last_seq"]
    finally:
        nobody_dir.chmod(0o750)
        for p in nobody_dir.glob("journal.db*"):
            p.chmod(0o640)
        assert site.stop() == 0
    db = sqlite3.connect(f"file:{nobody_dir / 'journal.db'}?mode=ro", uri=True)
    try:
        assert db.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    finally:
        db.close()


def test_a_state_dir_it_cannot_write_at_all_still_gives_an_alarm_and_a_cli(
    nobody_dir: Path,
) -> None:
    """The card came back read-only after a power cut (or the state directory belongs to
    someone else) and the service restarts: no journal file can be created, no socket either.
    The daemon still starts, keeps events in memory, puts its control socket in its runtime
    directory (systemd's RuntimeDirectory=), and the siren sounds."""
    runtime = nobody_dir.parent / "run"
    runtime.mkdir()
    shutil.chown(runtime, "nobody", "nogroup")
    site = Site(nobody_dir, prefix=AS_NOBODY, extra_env={"RUNTIME_DIRECTORY": str(runtime)})
    site.log_path = nobody_dir.parent / "daemon.log"
    shutil.chown(nobody_dir, "root", "root")
    nobody_dir.chmod(0o755)  # nobody may read it, not write it
    site.start(WEDNESDAY_NOON)
    try:
        assert not (nobody_dir / "control.sock").exists()
        assert list(runtime.glob("control-*.sock"))
        st = site.status()
        assert [t for t in st["troubles"] if t.get("source") == "journal"]
        site.og("arm", "perimeter", input="2468\n")
        site.og("sim", "set", "gate.main", "active")
        assert site.outputs()["siren.hall"] is True
        assert site.status()["unwritten"] >= 3  # started, the trouble, arm, alarm...
        assert not shows_code("2468", site.log())
    finally:
        assert site.stop() == 0
    assert not list(runtime.glob("control-*.sock"))  # removed on the way out
