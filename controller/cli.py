"""`officeguard` command line (also `python -m controller`). Reference: docs/cli.md."""

from __future__ import annotations

import argparse
import asyncio
import getpass
import json
import logging
import os
import sys
from datetime import datetime
from pathlib import Path
from typing import Any

from controller import __version__
from controller.config import EXIT_CONFIG, ConfigError, Loaded, load_config, summary

EXIT_USAGE = 64
EXIT_UNAVAILABLE = 69
EXIT_REFUSED = 1
EXIT_SIGPIPE = 141  # 128 + SIGPIPE: what a shell reports for a tool that wrote to a closed pipe


def _load(path: str) -> Loaded:
    try:
        return load_config(path)
    except ConfigError as e:
        print(e, file=sys.stderr)
        raise SystemExit(EXIT_CONFIG) from None


def _state_dir(args: argparse.Namespace) -> str:
    from controller.daemon import default_state_dir

    if getattr(args, "state_dir", None):
        return str(args.state_dir)
    cfg = _load(args.config).config if getattr(args, "config", None) else None
    return default_state_dir(cfg)


def _request(args: argparse.Namespace, cmd: str, **kw: Any) -> dict[str, Any]:
    from controller.control import ControlError, request

    try:
        return request(_state_dir(args), cmd, **kw)
    except ControlError as e:
        print(f"refused: {e}", file=sys.stderr)
        raise SystemExit(EXIT_REFUSED) from None
    except (ConnectionError, OSError) as e:
        print(f"officeguard: {e}", file=sys.stderr)
        raise SystemExit(EXIT_UNAVAILABLE) from None


# ----------------------------------------------------------------------------- commands


def cmd_run(args: argparse.Namespace) -> int:
    from controller.clock import Clock, RealClock, VirtualClock
    from controller.daemon import Daemon, default_state_dir

    loaded = _load(args.config)
    for w in loaded.warnings:
        logging.getLogger("officeguard.config").warning("%s", w)
    simulate = args.simulate or loaded.config.hardware.backend == "simulated"
    clock: Clock
    if args.clock:
        if not simulate:
            print("officeguard: --clock is for simulation only (add --simulate)", file=sys.stderr)
            return EXIT_USAGE
        try:
            start = datetime.fromisoformat(args.clock)
        except ValueError:
            print(
                f"officeguard: bad --clock {args.clock!r}: use ISO 8601, e.g. 2026-02-17T01:20:00+07:00",
                file=sys.stderr,
            )
            return EXIT_USAGE
        if start.tzinfo is None:
            start = start.replace(tzinfo=loaded.config.tz)
        clock = VirtualClock(start)
    else:
        clock = RealClock()
    state_dir = args.state_dir or default_state_dir(loaded.config)

    async def main() -> int:
        daemon = Daemon(loaded, state_dir, simulate=simulate, clock=clock)
        return await daemon.run()

    from controller.statelock import EXIT_LOCKED, StateDirLocked
    from hardware.backend import HardwareError

    try:
        return asyncio.run(main())
    except StateDirLocked as e:
        print(f"officeguard: {e}", file=sys.stderr)
        return EXIT_LOCKED
    except HardwareError as e:  # no GPIO here, a pin another program holds: nothing to guard with
        print(f"officeguard: {args.config}: hardware.backend {loaded.config.hardware.backend}: {e}", file=sys.stderr)
        return EXIT_UNAVAILABLE


def cmd_check_config(args: argparse.Namespace) -> int:
    from controller.preflight import check, report

    loaded = _load(args.config)
    print(summary(loaded.config))
    for w in loaded.warnings:
        print(f"warning: {w}", file=sys.stderr)
    findings = check(loaded.config, simulate=args.simulate, strict=args.strict)
    errors, warnings = report(args.config, findings)
    for line in warnings + errors:
        print(line, file=sys.stderr)
    if errors:
        return EXIT_CONFIG
    if any(f.blocks_ok for f in findings):
        # valid, but `run` would not start here or would guard the site with a published code
        print(f"{args.config}: valid, but not ready to guard a site (see the warnings above)")
        return 0
    print(f"{args.config}: OK")
    return 0


def _print_status(st: dict[str, Any]) -> None:
    print(
        f"site {st['site']} ({st.get('name', '')})  {st.get('time', '')}  version {st.get('version', '')}"
        + ("  [simulation]" if st.get("simulate") else "")
    )
    broker = st.get("broker") or {}
    print(
        f"broker {'connected' if broker.get('connected') else 'NOT connected'} ({broker.get('url', '')}), "
        f"outbox {st.get('outbox')} event(s) waiting"
    )
    print("zones:")
    for zid, z in st["zones"].items():
        extra = "  ALARM IN MEMORY" if z.get("alarm") else ""
        print(f"  {zid:<16} {z['state']:<12}{extra}")
    print("sensors:")
    for sid, s in st["sensors"].items():
        flags = []
        if s.get("active"):
            flags.append("ACTIVE")
        if s.get("bypassed"):
            flags.append("bypassed")
        if s.get("shutdown"):
            flags.append("shut down")
        print(f"  {sid:<18} {s.get('zone', ''):<14} {' '.join(flags) or 'normal'}")
    print("outputs: " + ", ".join(f"{k}={'ON' if v else 'off'}" for k, v in st["outputs"].items()))
    troubles = st.get("troubles") or []
    print("troubles: " + ("none" if not troubles else ""))
    for t in troubles:
        print(f"  {t.get('cid', '')} {t.get('source', '')}: {t.get('what', '')}")


def cmd_status(args: argparse.Namespace) -> int:
    st = _request(args, "status")["status"]
    if args.json:
        print(json.dumps(st, ensure_ascii=False))
    else:
        _print_status(st)
    return 0


def cmd_sim(args: argparse.Namespace) -> int:
    action = args.sim_action
    if action == "set":
        r = _request(args, "sim.set", sensor=args.sensor, state=args.state)
        print(f"{r['sensor']}: {'active' if r['active'] else 'inactive'}")
    elif action == "pulse":
        r = _request(
            args, "sim.pulse", sensor=args.sensor, count=args.count, interval=args.interval
        )
        print(f"{r['sensor']}: {r['count']} pulse(s)")
    elif action == "keys":
        r = _request(args, "sim.keys", keypad=args.keypad, keys=args.keys)
        print(f"{r['keypad']}: {r['pressed']} key(s)")
    elif action == "serial":
        r = _request(args, "sim.serial", detector=args.detector, line=args.line)
        print(f"{r['detector']}: {r['bytes']} byte(s) written")
    elif action == "advance":
        r = _request(args, "sim.advance", duration=args.duration)
        print(f"now {r['now']} ({r['timers']} timer(s) fired)")
    elif action == "outputs":
        r = _request(args, "sim.outputs")
        print(json.dumps(r["outputs"], ensure_ascii=False))
    return 0


def _read_code(prompt: str) -> str:
    if sys.stdin.isatty():
        return getpass.getpass(prompt)
    return sys.stdin.readline().strip()


def cmd_arm(args: argparse.Namespace) -> int:
    code = _read_code("Code: ")
    r = _request(args, "arm", zones=args.zones, mode=args.mode, code=code, force=args.force)
    for z, s in r["zones"].items():
        print(f"{z}: {s}")
    return 0


def cmd_disarm(args: argparse.Namespace) -> int:
    code = _read_code("Code: ")
    r = _request(args, "disarm", zones=args.zones, code=code)
    for z, s in r["zones"].items():
        print(f"{z}: {s}")
    return 0


def cmd_bypass(args: argparse.Namespace) -> int:
    code = _read_code("Code: ")
    r = _request(args, "bypass", sensor=args.sensor, bypass=not args.undo, code=code)
    print(f"{r['sensor']}: {'bypassed' if r['bypassed'] else 'not bypassed'}")
    return 0


def cmd_silence(args: argparse.Namespace) -> int:
    code = _read_code("Code: ")
    _request(args, "silence", zones=args.zones, code=code)
    print("silenced")
    return 0


def cmd_log(args: argparse.Namespace) -> int:
    from controller.daemon import JOURNAL_NAME
    from controller.journal import JournalError, read_events

    path = Path(_state_dir(args)) / JOURNAL_NAME
    since = args.since
    if since:
        try:
            datetime.fromisoformat(since)
        except ValueError:
            print(f"officeguard: bad --since {since!r}: use ISO 8601", file=sys.stderr)
            return EXIT_USAGE
    try:
        for ev in read_events(path, since=since, kind=args.kind):
            if args.json:
                print(ev.to_json())
            else:
                where = " ".join(x for x in (ev.zone, ev.sensor) if x)
                print(f"{ev.seq:>6} {ev.ts} {ev.kind:<15} {ev.cid or '':<5} {where:<28} {ev.text}")
    except JournalError as e:
        print(f"officeguard: {e}", file=sys.stderr)
        return EXIT_UNAVAILABLE
    except BrokenPipeError:
        pass
    return 0


def cmd_schedule(args: argparse.Namespace) -> int:
    from controller.schedule_cli import run_schedule

    return run_schedule(_load(args.config), args)


def cmd_monitor(args: argparse.Namespace) -> int:
    from controller.monitor import run_monitor

    return run_monitor(args)


def cmd_hash_code(args: argparse.Namespace) -> int:
    from controller.codes import hash_code_interactive

    return hash_code_interactive(sys.stdin, sys.stdout)


# ----------------------------------------------------------------------------- parser


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="officeguard", description="OfficeGuard intrusion-alarm controller"
    )
    p.add_argument("--version", action="version", version=f"officeguard {__version__}")
    p.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    sub = p.add_subparsers(dest="command", required=True, metavar="COMMAND")

    def with_config(sp: argparse.ArgumentParser, required: bool = False, suppress: bool = False) -> None:
        # suppress: on a sub-action, accept the options there too without hiding the parent's value
        default = argparse.SUPPRESS if suppress else None
        sp.add_argument("-c", "--config", required=required, default=default, help="site configuration (YAML)")
        sp.add_argument(
            "--state-dir",
            default=default,
            help="state directory (default: config state_dir, then /var/lib/officeguard)",
        )

    r = sub.add_parser("run", help="run the controller daemon")
    with_config(r, required=True)
    r.add_argument("--simulate", action="store_true", help="simulated hardware (no GPIO needed)")
    r.add_argument(
        "-v", "--verbose", action="store_true", default=argparse.SUPPRESS, help="debug logging"
    )
    r.add_argument(
        "--clock", help="simulation only: start a virtual clock at this ISO 8601 instant"
    )
    r.set_defaults(func=cmd_run)

    c = sub.add_parser(
        "check-config", help="validate a configuration file and what it points at"
    )
    c.add_argument("-c", "--config", required=True)
    c.add_argument(
        "--simulate",
        action="store_true",
        help="a simulated site (as run --simulate): no GPIO, pins or ports checked, example codes allowed",
    )
    c.add_argument(
        "--strict",
        action="store_true",
        help="for installing a real site: no GPIO here and published example codes are errors "
        "(exit 78), not warnings",
    )
    c.set_defaults(func=cmd_check_config)

    s = sub.add_parser("status", help="state of a running daemon")
    with_config(s)
    s.add_argument("--json", action="store_true")
    s.set_defaults(func=cmd_status)

    sim = sub.add_parser("sim", help="drive a simulated daemon (started with --simulate)")
    with_config(sim)
    ssub = sim.add_subparsers(dest="sim_action", required=True, metavar="ACTION")
    x = ssub.add_parser("set", help="set a simulated input")
    with_config(x, suppress=True)
    x.add_argument("sensor")
    x.add_argument("state", choices=["active", "inactive"])
    x = ssub.add_parser("pulse", help="pulses on a simulated input")
    with_config(x, suppress=True)
    x.add_argument("sensor")
    x.add_argument("--count", type=int, default=1)
    x.add_argument("--interval", type=float, default=0.3, help="seconds between pulses")
    x = ssub.add_parser("keys", help="key presses on a simulated keypad")
    with_config(x, suppress=True)
    x.add_argument("keypad")
    x.add_argument("keys")
    x = ssub.add_parser("serial", help="one raw line into a drone detector's simulated port")
    with_config(x, suppress=True)
    x.add_argument("detector")
    x.add_argument("line")
    x = ssub.add_parser("advance", help="move the virtual clock forward")
    with_config(x, suppress=True)
    x.add_argument("duration")
    x = ssub.add_parser("outputs", help="output states as JSON")
    with_config(x, suppress=True)
    sim.set_defaults(func=cmd_sim)

    for name, func, helptext in (
        ("arm", cmd_arm, "arm zones"),
        ("disarm", cmd_disarm, "disarm zones"),
    ):
        a = sub.add_parser(name, help=helptext + " (code prompted, or read from stdin)")
        with_config(a)
        a.add_argument("zones", nargs="+", metavar="ZONE")
        if name == "arm":
            a.add_argument("--mode", choices=["away", "home", "night"], default="away")
            a.add_argument(
                "--force", action="store_true", help="bypass open sensors for this arming"
            )
        a.set_defaults(func=func)

    b = sub.add_parser("bypass", help="bypass a sensor (or --undo)")
    with_config(b)
    b.add_argument("sensor")
    b.add_argument("--undo", action="store_true", help="unbypass")
    b.set_defaults(func=cmd_bypass)

    si = sub.add_parser("silence", help="silence the sirens of zones (alarm stays in memory)")
    with_config(si)
    si.add_argument("zones", nargs="+", metavar="ZONE")
    si.set_defaults(func=cmd_silence)

    lg = sub.add_parser("log", help="the local logbook, oldest first")
    with_config(lg)
    lg.add_argument("--since", help="ISO 8601 time")
    lg.add_argument("--kind", help="only this event kind")
    lg.add_argument("--json", action="store_true", help="one JSON event per line")
    lg.set_defaults(func=cmd_log)

    sc = sub.add_parser("schedule", help="upcoming arm/disarm transitions")
    sc.add_argument("-c", "--config", required=True)
    sc.add_argument("--from", dest="from_date", help="start date YYYY-MM-DD (default: today)")
    sc.add_argument("--days", type=int, default=7)
    sc.add_argument("--json", action="store_true")
    sc.set_defaults(func=cmd_schedule)

    m = sub.add_parser("monitor", help="central console of every site under a prefix")
    m.add_argument("-c", "--config", help="take broker settings from this site config")
    m.add_argument("--broker", help="mqtt://host:1883")
    m.add_argument("--prefix", help="topic prefix (default: the config's, else officeguard)")
    m.add_argument("--once", action="store_true", help="print a snapshot and exit")
    m.add_argument("--json", action="store_true")
    m.add_argument(
        "--wait", type=float, default=2.0, help="with --once: seconds to gather retained state"
    )
    m.add_argument("--share", help="MQTT 5 shared-subscription group, to split the event load")
    m.add_argument("--duration", type=float, help="exit after this many seconds")
    m.set_defaults(func=cmd_monitor)

    h = sub.add_parser(
        "hash-code", help="read a code from the terminal, print a code_hash for the config"
    )
    h.set_defaults(func=cmd_hash_code)
    return p


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    from controller.logs import setup_logging

    setup_logging(verbose=args.verbose)
    try:
        rc = int(args.func(args) or 0)
        sys.stdout.flush()  # here, not at exit, so a closed pipe is seen below
        return rc
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:
        return _reader_went_away()


def _reader_went_away() -> int:
    """`officeguard status | head -2`: the reader closed the pipe. Quiet, like other Unix
    tools: no traceback, nothing more written, and the status a shell shows for SIGPIPE."""
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, sys.stdout.fileno())  # Python's own flush at exit must not fail again
    os.close(devnull)
    return EXIT_SIGPIPE


if __name__ == "__main__":
    raise SystemExit(main())
