"""`make demo` end to end, as a real process, on Mosquitto: the scripted night runs, the console
sees it, every event reaches the office."""

from __future__ import annotations

import os
import signal
import subprocess
import sys

import pytest

from tests.e2e import ROOT, shows_code

pytestmark = pytest.mark.integration


def stop_group(proc: subprocess.Popen[str]) -> None:
    """The demo's process group: SIGTERM (the demo stops what it started), then SIGKILL."""
    for sig, wait in ((signal.SIGTERM, 20.0), (signal.SIGKILL, 5.0)):
        try:
            os.killpg(proc.pid, sig)
        except ProcessLookupError:
            return  # the demo and all it started are gone
        try:
            proc.wait(wait)
        except subprocess.TimeoutExpired:
            continue


@pytest.mark.timeout(300)
def test_demo_runs_a_whole_night_end_to_end_on_mosquitto():
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    # its own process group: a demo that overruns is stopped with everything it started
    # (broker, site, station, console), never left running behind the test
    proc = subprocess.Popen(
        [sys.executable, "-m", "controller.demo.run"],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    try:
        stdout, stderr = proc.communicate(timeout=240)
    finally:
        stop_group(proc)
    r = subprocess.CompletedProcess(proc.args, proc.returncode, stdout, stderr)
    out = r.stdout + r.stderr
    assert r.returncode == 0, out[-4000:]
    assert "broker: mosquitto on mqtt://127.0.0.1:" in out
    assert "demo finished: every event delivered" in out
    assert '"ok": true' in out  # the office's remote re-arm over MQTT was accepted
    assert "E134" in out and "E133" in out and "E150" in out  # door, safe, drone
    # the live console printed the night as it happened (one line per event)
    console = out[out.index("the live console's output") :]
    assert " alarm E134 leadership door.director" in console
    assert "patrol E102" in console  # the missed patrol round reached the security office
    assert "night  MISSED" in out  # and the patrol log shows it
    assert not shows_code("2468", out.replace("2468\\n", ""))  # the guard's code is never shown
    # the monitoring station ran beside the site: its address and login, and the night's
    # alarms waiting in its queue (door, safe, drone at least)
    assert "monitoring station: http://127.0.0.1:" in out and "login demo / demo-" in out
    queue = out[out.index("the monitoring station's queue") :].splitlines()[0]
    assert int(queue.split(": ")[-1].split()[0]) >= 3, queue
