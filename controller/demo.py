"""`make demo`: a simulated office wing on a virtual clock, played through a short scripted night
with the real daemon process and the real CLI, then its logbook. Exits by itself.

    python -m controller.demo [--keep DIR]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
CONFIG = ROOT / "config" / "demo.yaml"
START = "2026-02-17T01:20:00+07:00"  # Tết night, 01:20: the hour break-ins happen


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--keep", help="keep the state directory here instead of a temporary one")
    args = ap.parse_args(argv)
    state = Path(args.keep) if args.keep else Path(tempfile.mkdtemp(prefix="officeguard-demo-"))
    state.mkdir(parents=True, exist_ok=True)
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    og = [sys.executable, "-m", "controller"]

    def cli(*a: str, code: str | None = None, show: bool = True) -> str:
        argv = [*og, *a, "--state-dir", str(state)]
        r = subprocess.run(
            argv, capture_output=True, text=True, input=code, env=env, cwd=ROOT, timeout=60
        )
        if show:
            print(f"$ officeguard {' '.join(a)}" + ("   (code typed on stdin)" if code else ""))
            out = (r.stdout + r.stderr).rstrip()
            if out:
                print("  " + out.replace("\n", "\n  "))
        return r.stdout

    def say(text: str) -> None:
        print(f"\n== {text}")

    log = open(state / "daemon.log", "w")  # noqa: SIM115 - closed below
    daemon = subprocess.Popen(
        [*og, "run", "-c", str(CONFIG), "--simulate", "--state-dir", str(state), "--clock", START],
        stdout=log,
        stderr=subprocess.STDOUT,
        env=env,
        cwd=ROOT,
    )
    try:
        deadline = time.monotonic() + 30
        while not (state / "control.sock").exists():
            if daemon.poll() is not None or time.monotonic() > deadline:
                print((state / "daemon.log").read_text(), file=sys.stderr)
                return 1
            time.sleep(0.05)
        say(f"Tết night, {START}: by the schedule and the holiday calendar every zone is armed")
        cli("status")
        cli("sim", "advance", "10m")
        say("ten minutes later the director's door opens: entry delay, then the alarm")
        cli("sim", "set", "door.director", "active")
        cli("sim", "advance", "31s")
        cli("sim", "outputs")
        say("someone knocks on the safe in the finance room, three times")
        cli("sim", "pulse", "vib.safe1", "--count", "3", "--interval", "0.5")
        say("the guard arrives and disarms; the siren stops")
        cli("disarm", "leadership", "finance", code="2468\n")
        cli("sim", "outputs")
        say("the logbook")
        cli("log")
        st = json.loads(cli("status", "--json", show=False) or "{}")
        print(f"\noutbox: {st.get('outbox')} event(s) waiting for the central broker")
    finally:
        daemon.send_signal(signal.SIGTERM)
        try:
            daemon.wait(15)
        except subprocess.TimeoutExpired:
            daemon.kill()
        log.close()
        if not args.keep:
            shutil.rmtree(state, ignore_errors=True)
    return 0 if daemon.returncode == 0 else 1


if __name__ == "__main__":
    raise SystemExit(main())
