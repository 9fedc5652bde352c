"""The README's "Trying it by hand" walkthrough, run line by line as it is written, with real
processes (the daemon in the background, the `officeguard` CLI for every step), checking what
each line's comment says the reader will see. A line added to or changed in the README without
its check here fails the test, so the walkthrough cannot drift from the truth again."""

from __future__ import annotations

import json
import os
import re
import shlex
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest

from tests.e2e import ROOT, shows_code

pytestmark = pytest.mark.integration

README = ROOT / "README.md"
COMMENT = re.compile(r"\s{2,}#\s(.*)$")


def walkthrough() -> list[tuple[str, str]]:
    """(command, comment) for each line of the sh block under "Trying it by hand"."""
    text = README.read_text(encoding="utf-8")
    section = text.split("## Trying it by hand", 1)[1].split("\n## ", 1)[0]
    block = section.split("```sh\n", 1)[1].split("```", 1)[0]
    steps = []
    for line in block.splitlines():
        m = COMMENT.search(line)
        command = line[: m.start()] if m else line
        steps.append((command.strip(), m.group(1).strip() if m else ""))
    return steps


class Walk:
    """Runs the README's lines: `officeguard` is this venv's console script."""

    def __init__(self, state: Path) -> None:
        self.state = state
        self.env = {**os.environ, "PYTHONUNBUFFERED": "1"}
        self.env.pop("OFFICEGUARD_STATE_DIR", None)
        script = Path(sys.executable).with_name("officeguard")
        self.og = [str(script)] if script.exists() else [sys.executable, "-m", "controller"]
        self.daemon: subprocess.Popen[str] | None = None
        self.log = state.parent / "daemon.log"
        self.last: subprocess.CompletedProcess[str] | None = None

    def argv(self, words: list[str]) -> list[str]:
        assert words[0] == "officeguard", words
        return [*self.og, *words[1:]]

    def run(self, command: str) -> None:
        if command in ("make venv", ". .venv/bin/activate"):
            return  # the test already runs in the project's venv
        if command.startswith("export OFFICEGUARD_STATE_DIR="):
            self.env["OFFICEGUARD_STATE_DIR"] = str(self.state)  # mktemp -d, made by pytest
            return
        if command == "kill %1":
            assert self.daemon is not None
            self.daemon.send_signal(signal.SIGTERM)
            self.daemon.wait(30)
            return
        stdin = None
        m = re.fullmatch(r"echo (\S+) \| (.*)", command)
        if m:
            stdin, command = m.group(1) + "\n", m.group(2)
        if command.endswith("&"):
            self.start(self.argv(shlex.split(command[:-1])))
            return
        self.last = subprocess.run(
            self.argv(shlex.split(command)),
            cwd=ROOT,
            env=self.env,
            input=stdin,
            capture_output=True,
            text=True,
            timeout=120,
        )

    def start(self, argv: list[str]) -> None:
        out = open(self.log, "w")  # noqa: SIM115 - closed with the process
        self.daemon = subprocess.Popen(
            argv, cwd=ROOT, env=self.env, stdout=out, stderr=subprocess.STDOUT, text=True
        )
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            assert self.daemon.poll() is None, self.log.read_text()
            r = subprocess.run(
                [*self.og, "status", "--json"], cwd=ROOT, env=self.env, capture_output=True
            )
            if r.returncode == 0:
                return
            time.sleep(0.1)
        raise AssertionError(f"the daemon did not come up:\n{self.log.read_text()}")

    # what the checks look at
    @property
    def out(self) -> str:
        assert self.last is not None
        assert self.last.returncode == 0, (self.last.args, self.last.stdout, self.last.stderr)
        return self.last.stdout

    def status(self) -> dict[str, Any]:
        r = subprocess.run(
            [*self.og, "status", "--json"], cwd=ROOT, env=self.env, capture_output=True, text=True
        )
        assert r.returncode == 0, r.stderr
        st: dict[str, Any] = json.loads(r.stdout)
        return st

    def zone(self, zone: str) -> str:
        return str(self.status()["zones"][zone]["state"])

    def kinds(self) -> list[str]:
        r = subprocess.run(
            [*self.og, "log", "--json"], cwd=ROOT, env=self.env, capture_output=True, text=True
        )
        return [json.loads(line)["kind"] for line in r.stdout.splitlines()]


def _checked_config(w: Walk) -> None:
    assert w.last is not None and w.last.returncode == 0, w.last
    assert w.out.rstrip().endswith("config/demo.yaml: OK")
    assert "warning" in w.last.stderr and "code_hash" in w.last.stderr
    assert not shows_code("2468", w.last.stdout + w.last.stderr)


def _wednesday_ten(w: Walk) -> None:
    st = w.status()
    at = datetime.fromisoformat(st["time"])
    assert (at.strftime("%A %H:%M"), at.date().isoformat()) == ("Wednesday 10:00", "2026-03-04")


def _all_disarmed_no_trouble(w: Walk) -> None:
    zones = re.findall(r"^  (\S+)\s+(\S+)\s*$", w.out.split("sensors:")[0], re.M)
    assert zones and all(state == "disarmed" for _, state in zones), w.out
    assert "troubles: none" in w.out


def _delay_left(w: Walk, zone: str, which: str) -> float:
    st = w.status()
    until = datetime.fromisoformat(st["zones"][zone][which])
    return (until - datetime.fromisoformat(st["time"])).total_seconds()


def _arming_for_a_minute(w: Walk) -> None:
    assert w.out.strip() == "leadership: arming"
    assert _delay_left(w, "leadership", "exit_until") == 60


def _pending_for_half_a_minute(w: Walk) -> None:
    assert w.zone("leadership") == "pending"
    assert _delay_left(w, "leadership", "entry_until") == 30


def _siren(w: Walk) -> bool:
    return bool(w.status()["outputs"]["siren.hall"])


CHECKS: dict[tuple[str, str], Callable[[Walk], None]] = {
    ("make venv", ""): lambda w: None,
    (". .venv/bin/activate", ""): lambda w: None,
    (
        'export OFFICEGUARD_STATE_DIR="$(mktemp -d)"',
        "a fresh logbook and control socket for this try",
    ): lambda w: None,
    (
        "officeguard check-config -c config/demo.yaml --simulate",
        "a summary, warnings for the plain codes, OK",
    ): _checked_config,
    (
        "officeguard run -c config/demo.yaml --simulate --clock 2026-03-04T10:00:00+07:00 &",
        "Wednesday 10:00",
    ): _wednesday_ten,
    ("officeguard status", "every zone disarmed, troubles: none"): _all_disarmed_no_trouble,
    (
        "echo 2468 | officeguard arm leadership",
        "leadership: arming (the 60 s exit delay runs)",
    ): _arming_for_a_minute,
    (
        "officeguard sim advance 61s",
        "the virtual clock: exit delay over, armed_away",
    ): lambda w: w.zone("leadership") == "armed_away" or pytest.fail(w.zone("leadership")),
    (
        "officeguard sim set door.director active",
        "the door opens: pending (30 s entry delay)",
    ): _pending_for_half_a_minute,
    (
        "officeguard sim advance 30s",
        "nobody disarmed: triggered, siren on",
    ): lambda w: (w.zone("leadership"), _siren(w)) == ("triggered", True)
    or pytest.fail(w.out),
    ("officeguard sim outputs", '{"siren.hall": true}'): lambda w: json.loads(w.out)
    == {"siren.hall": True}
    or pytest.fail(w.out),
    (
        "echo 2468 | officeguard disarm leadership",
        "leadership: disarmed, siren off, alarm cancelled",
    ): lambda w: (w.out.strip(), _siren(w), w.kinds()[-2:])
    == ("leadership: disarmed", False, ["cancel", "disarm"])
    or pytest.fail(w.out),
    (
        "officeguard sim heartbeat rf.roof off",
        "the roof's drone detector stops talking",
    ): lambda w: w.out.strip() == "rf.roof: heartbeat off" or pytest.fail(w.out),
    (
        "officeguard sim advance 16s",
        "its 15 s heartbeat timeout passes",
    ): lambda w: w.kinds()[-1] == "trouble" or pytest.fail(str(w.kinds())),
    (
        "officeguard status",
        "troubles: E333 rf.roof: detector silent",
    ): lambda w: w.out.split("troubles:", 1)[1].split()
    == ["E333", "rf.roof:", "detector", "silent"]
    or pytest.fail(w.out),
    (
        "officeguard log",
        "the logbook: arm, entry, alarm, cancel, disarm, trouble",
    ): lambda w: [
        k for k in re.findall(r"^\s+\d+ \S+ (\w+)", w.out, re.M) if k not in ("system",)
    ]
    == ["arm", "arm", "entry", "alarm", "alarm", "cancel", "disarm", "trouble"]
    or pytest.fail(w.out),
    ("kill %1", "the daemon stops cleanly"): lambda w: w.daemon is not None
    and w.daemon.returncode == 0
    or pytest.fail(w.log.read_text()),
}


def test_every_walkthrough_line_has_a_check_here() -> None:
    steps = walkthrough()
    unchecked = [s for s in steps if s not in CHECKS]
    assert not unchecked, f"README lines without a check in {__file__}: {unchecked}"
    assert len(steps) == len(CHECKS), "a check here for a line the README no longer has"


def test_the_readme_walkthrough_does_what_its_comments_say(tmp_path: Path) -> None:
    w = Walk(tmp_path / "og")
    try:
        for command, comment in walkthrough():
            w.run(command)
            CHECKS[(command, comment)](w)
    finally:
        if w.daemon is not None and w.daemon.poll() is None:
            w.daemon.kill()
            w.daemon.wait(10)
