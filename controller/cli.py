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
ADVANCE_TIMEOUT = 600.0  # seconds a `sim advance` of the longest allowed span may take


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
        print(e, file=sys.stderr)  # a whole sentence in the site's language
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
        if not args.simulate:
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
        # only --simulate takes `sim` commands: a config that says `backend: simulated` runs
        # on simulated pins, but nobody on the machine may drive them
        daemon = Daemon(
            loaded, state_dir, simulate=simulate, clock=clock, sim_commands=args.simulate
        )
        return await daemon.run()

    from controller.journal import JournalError
    from controller.statelock import EXIT_LOCKED, StateDirLocked
    from hardware.backend import HardwareError

    try:
        return asyncio.run(main())
    except StateDirLocked as e:
        print(f"officeguard: {e}", file=sys.stderr)
        return EXIT_LOCKED
    except JournalError as e:  # a logbook of a newer release: this one must not write it
        print(f"officeguard: {e}", file=sys.stderr)
        return EXIT_UNAVAILABLE
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
        loop = ((st.get("supervision") or {}).get("loops") or {}).get(sid)
        if loop is not None:  # a supervised loop: what its wiring reads
            volts = "?" if loop.get("volts") is None else f"{loop['volts']:.2f} V"
            flags.append(f"[loop {loop['state']}, {volts}]")
        print(f"  {sid:<18} {s.get('zone', ''):<14} {' '.join(flags) or 'normal'}")
    power = (st.get("supervision") or {}).get("power")
    if power:
        battery = power.get("battery") or {}
        parts = [f"mains {power['mains']}"] if "mains" in power else []
        if battery:
            parts.append(f"battery {battery.get('state')} ({battery.get('volts')} V)")
        parts += [f"{k} line {v}" for k, v in (power.get("sirens") or {}).items()]
        print("power: " + ", ".join(parts))
    print("outputs: " + ", ".join(f"{k}={'ON' if v else 'off'}" for k, v in st["outputs"].items()))
    troubles = st.get("troubles") or []
    print("troubles: " + ("none" if not troubles else ""))
    for t in troubles:
        print(f"  {t.get('cid', '')} {t.get('source', '')}: {t.get('what', '')}")
    for pid, p in (st.get("patrols") or {}).items():
        last = p.get("last_round") or {}
        print(
            f"patrol {pid}: {p.get('state')}, next due {p.get('next_due') or '-'}, "
            f"last round {last.get('outcome', '-')} ({last.get('due', '-')})"
        )


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
    elif action == "heartbeat":
        r = _request(args, "sim.heartbeat", detector=args.detector, state=args.state)
        print(f"{r['detector']}: heartbeat {r['heartbeat']}")
    elif action == "advance":
        r = _request(args, "sim.advance", duration=args.duration, timeout=ADVANCE_TIMEOUT)
        print(f"now {r['now']} ({r['timers']} timer(s) fired)")
    elif action == "outputs":
        r = _request(args, "sim.outputs")
        print(json.dumps(r["outputs"], ensure_ascii=False))
    elif action in ("badge", "checkpoint"):
        from controller.patrol.cli import sim_request

        return sim_request(args, _request)
    elif action == "wiring":
        r = _request(args, "sim.wiring", sensor=args.sensor, state=args.state)
        print(f"{r['sensor']}: {r['volts']:.2f} V, reads {r['state']}")
    elif action == "power":
        siren, value = (args.value[0], args.value[-1]) if args.what == "siren" else (None, args.value[0])
        r = _request(args, "sim.power", what=args.what, value=value, siren=siren)
        print(f"{r['what']}: {r['value']}")
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


LOG_FIELDS = ("seq", "ts", "kind", "cid", "zone", "sensor", "user", "text", "id", "detail")


def _log_bound(option: str, value: str | None) -> datetime | None:
    if not value:
        return None
    try:
        return datetime.fromisoformat(value)
    except ValueError:
        print(
            f"officeguard: bad {option} {value!r}: use ISO 8601, e.g. 2026-01-01 or "
            "2026-02-17T01:00+07:00",
            file=sys.stderr,
        )
        raise SystemExit(EXIT_USAGE) from None


def _log_in_range(ts: str, since: datetime | None, until: datetime | None) -> bool:
    """since <= ts < until. A bound without an offset is the site's time of day, as the
    logbook writes it (each event's own offset)."""
    at = datetime.fromisoformat(ts)
    for bound, after in ((since, True), (until, False)):
        if bound is None:
            continue
        here = at if bound.tzinfo is not None else at.replace(tzinfo=None)
        if (here < bound) if after else (here >= bound):
            return False
    return True


def cmd_log(args: argparse.Namespace) -> int:
    import csv

    from controller.daemon import JOURNAL_NAME
    from controller.journal import JournalError, read_events

    path = Path(_state_dir(args)) / JOURNAL_NAME
    since = _log_bound("--since", args.since)
    until = _log_bound("--until", args.until)
    fmt = "json" if args.json else args.format
    writer = csv.writer(sys.stdout, lineterminator="\n") if fmt == "csv" else None
    try:
        if writer is not None:
            writer.writerow(LOG_FIELDS)
        for ev in read_events(path, kind=args.kind):
            if not _log_in_range(ev.ts, since, until):
                continue
            if writer is not None:
                row = {**ev.to_dict(), "detail": json.dumps(ev.detail, ensure_ascii=False)}
                writer.writerow([row.get(f, "") for f in LOG_FIELDS])
            elif fmt == "json":
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
    from controller.schedule.cli import run_schedule

    return run_schedule(_load(args.config), args)


def cmd_patrol(args: argparse.Namespace) -> int:
    from controller.daemon import JOURNAL_NAME
    from controller.patrol.cli import run

    return run(args, _load, lambda a: Path(_state_dir(a)) / JOURNAL_NAME)


def cmd_camera_test(args: argparse.Namespace) -> int:
    from controller.camera.cli import run_camera_test

    return run_camera_test(_load(args.config), args)


def cmd_monitor(args: argparse.Namespace) -> int:
    from controller.console.monitor import run_monitor

    return run_monitor(args)


def cmd_wiring(args: argparse.Namespace) -> int:
    """`wiring calibrate` and `wiring test`: walk the installer through the supervised loops of
    the running daemon (controller/supervision/installer.py)."""
    from pathlib import Path

    from controller.supervision import installer

    loaded = _load(args.config)

    def ask(prompt: str) -> None:
        print(prompt, flush=True)
        if not sys.stdin.readline():
            raise SystemExit(EXIT_REFUSED)  # the installer went away

    read = installer.read_from_status(lambda: _request(args, "status")["status"])
    try:
        if args.wiring_action == "calibrate":
            bands = installer.calibrate(loaded.config, args.sensor, read, ask)
            for b in bands:
                print(f"  {b.state:<7} {b.lo:.3f} - {b.hi:.3f} V")
            if args.dry_run:
                print("\n".join(installer.bands_yaml(bands, 6)))
            else:
                installer.write_bands(Path(args.config), args.sensor, bands)
                print(f"bands written under {args.sensor}'s loop in {args.config}; reload the daemon")
            return 0
        checks = installer.walk(loaded.config, read, ask, args.sensors or None)
    except installer.WiringError as e:
        print(f"officeguard: {e}", file=sys.stderr)
        return EXIT_REFUSED
    except ConfigError as e:
        print(e, file=sys.stderr)
        return EXIT_CONFIG
    for c in checks:
        print(c.line())
    return 0 if all(c.ok for c in checks) else 1


def cmd_dc09_test(args: argparse.Namespace) -> int:
    from controller.dc09.cli import run_test

    return run_test(_load(args.config).config, restore=args.restore)


def cmd_station(args: argparse.Namespace) -> int:
    """Only reached when the station's extra is not installed (its sub-commands are missing)."""
    print(
        "officeguard station: needs the station's libraries: pip install 'officeguard[station]'",
        file=sys.stderr,
    )
    return 64


def _station_arguments(p: argparse.ArgumentParser, command: Any) -> None:
    try:
        from controller.station.service import add_arguments
    except ImportError:  # the station's extra is not installed (a site's Raspberry Pi)
        return
    add_arguments(p, command)


def cmd_hash_code(args: argparse.Namespace) -> int:
    from controller.access.codes import hash_code_interactive

    return hash_code_interactive(sys.stdin, sys.stdout)


# ----------------------------------------------------------------------------- parser


class _Help(argparse.RawDescriptionHelpFormatter):
    """Keeps the examples under each command's help as they are written."""


def build_parser(argv: list[str] | None = None) -> argparse.ArgumentParser:
    """Every command's parser. The station's sub-commands only when `argv` asks for the
    station (or is None: every command, for help and the docs' checks): they import the
    station's web and database libraries, which `run` on a Pi must not pay for."""
    from controller.events import KINDS
    from controller.patrol import cli as patrol_cli

    p = argparse.ArgumentParser(
        prog="officeguard",
        description="OfficeGuard intrusion-alarm controller",
        epilog="`officeguard COMMAND --help` explains each command, with an example.",
    )
    p.add_argument("--version", action="version", version=f"officeguard {__version__}")
    p.add_argument(
        "-v", "--verbose", action="store_true", help="debug logging, libraries' logs included"
    )
    sub = p.add_subparsers(dest="command", required=True, metavar="COMMAND")

    def command(
        parent: Any, name: str, text: str, example: str, more: str = ""
    ) -> argparse.ArgumentParser:
        """A sub-command whose --help starts with its one-line description and ends with an
        example."""
        return parent.add_parser(  # type: ignore[no-any-return]
            name,
            help=text,
            description=text + (f"\n\n{more}" if more else ""),
            epilog="example:\n  " + example.replace("\n", "\n  "),
            formatter_class=_Help,
        )

    def with_config(sp: argparse.ArgumentParser, required: bool = False, suppress: bool = False) -> None:
        # suppress: on a sub-action, accept the options there too without hiding the parent's value
        default = argparse.SUPPRESS if suppress else None
        sp.add_argument(
            "-c",
            "--config",
            required=required,
            default=default,
            help="site configuration (YAML)" + ("" if required else "; read for its state_dir"),
        )
        sp.add_argument(
            "--state-dir",
            default=default,
            help="state directory: logbook and control socket (default: $OFFICEGUARD_STATE_DIR, "
            "then the config's state_dir, then /var/lib/officeguard)",
        )

    r = command(
        sub,
        "run",
        "run the controller daemon",
        "officeguard run -c config/demo.yaml --simulate --clock 2026-03-04T10:00+07:00",
    )
    with_config(r, required=True)
    r.add_argument(
        "--simulate",
        action="store_true",
        help="simulated hardware: no GPIO needed, driven with `officeguard sim` "
        "(default: the config's hardware.backend)",
    )
    r.add_argument(
        "-v", "--verbose", action="store_true", default=argparse.SUPPRESS, help="debug logging"
    )
    r.add_argument(
        "--clock",
        metavar="ISO8601",
        help="simulation only: a virtual clock that starts at this instant and moves only "
        "with `sim advance` (default: the real clock)",
    )
    r.set_defaults(func=cmd_run)

    c = command(
        sub,
        "check-config",
        "validate a configuration file and what it points at, and summarise it",
        "officeguard check-config -c /etc/officeguard/site.yaml",
        "Exit 78 with every problem and its line. It says OK only when `run` will start\n"
        "here and guard the site with codes of its own; no GPIO on this machine or the\n"
        "public example's plain codes are warnings that withhold OK (errors with --strict).",
    )
    c.add_argument("-c", "--config", required=True, help="site configuration (YAML)")
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

    s = command(
        sub,
        "status",
        "zones, sensors, outputs, troubles, outbox and broker link of a running daemon",
        "officeguard status --state-dir /var/lib/officeguard --json",
    )
    with_config(s)
    s.add_argument("--json", action="store_true", help="one JSON object instead of the table")
    s.set_defaults(func=cmd_status)

    sim = command(
        sub,
        "sim",
        "drive a simulated daemon (one started with --simulate)",
        "officeguard sim set door.director active",
    )
    with_config(sim)
    ssub = sim.add_subparsers(dest="sim_action", required=True, metavar="ACTION")
    x = command(
        ssub,
        "set",
        "open/close a simulated input (door, window, PIR, tamper...)",
        "officeguard sim set door.director active",
    )
    with_config(x, suppress=True)
    x.add_argument("sensor", help="sensor id from the config")
    x.add_argument(
        "state", choices=["active", "inactive"], help="active: open, moving, tampered; inactive: quiet"
    )
    x = command(
        ssub,
        "pulse",
        "short pulses on a simulated input (knocks on a safe, movement before a PIR)",
        "officeguard sim pulse vib.safe1 --count 3 --interval 0.5",
    )
    with_config(x, suppress=True)
    x.add_argument("sensor", help="sensor id from the config")
    x.add_argument("--count", type=int, default=1, help="number of pulses, 1-1000 (default: 1)")
    x.add_argument(
        "--interval",
        type=float,
        default=0.3,
        help="seconds from one pulse to the next, 0.001-3600 (default: 0.3)",
    )
    x = command(
        ssub,
        "keys",
        "key presses on a simulated keypad",
        "officeguard sim keys keypad.hall 2468*1",
        "CODE# disarms if a zone is armed, else arms away; CODE*1, *2, *3 arm away,\n"
        "home, night.",
    )
    with_config(x, suppress=True)
    x.add_argument("keypad", help="keypad id from the config")
    x.add_argument("keys", help="1 to 64 keys: 0-9, * and #")
    x = command(
        ssub,
        "serial",
        "one raw line into a drone detector's simulated serial port (a real pty)",
        """officeguard sim serial rf.roof \\\n  '{"v":1,"t":"hb","seq":7,"up":35,"adv":0,"drop":0}*4c347136'""",
        "A line is <JSON>*<crc32 hex>: a JSON object with \"v\": 1, \"t\" (hello, hb,\n"
        "rid, rf, err) and \"seq\", then '*' and the CRC-32 (zlib) of the JSON bytes\n"
        "as 8 lowercase hex digits. A line with a bad CRC, bad JSON or over 1024 bytes\n"
        "is counted and dropped.",
    )
    with_config(x, suppress=True)
    x.add_argument("detector", help="drone detector id from the config")
    x.add_argument("line", help="<JSON>*<crc32 hex>, at most 4096 characters")
    x = command(
        ssub,
        "heartbeat",
        "switch a simulated detector's heartbeats off (a hung detector) or on again",
        "officeguard sim heartbeat rf.roof off",
        "The simulated detector sends `hello` at start and `hb` every 5 s of the\n"
        "daemon's clock, like the real firmware; off, it falls silent, and\n"
        "`heartbeat_timeout` later the site has a trouble (E333).",
    )
    with_config(x, suppress=True)
    x.add_argument("detector", help="drone detector id from the config")
    x.add_argument("state", choices=["on", "off"], help="on (the default at start) or off")
    x = command(
        ssub,
        "advance",
        "move the virtual clock forward, firing everything due on the way, in order",
        "officeguard sim advance 1h30m",
        "Needs a daemon started with --clock. At most 7 days per call.",
    )
    with_config(x, suppress=True)
    x.add_argument(
        "duration", help="a number with a unit, as in the config: 250ms, 30s, 4m, 1h, 2d, 1h30m"
    )
    x = command(
        ssub, "outputs", "output states as JSON", "officeguard sim outputs   # {\"siren.hall\": true}"
    )
    with_config(x, suppress=True)
    patrol_cli.add_sim_commands(ssub, command, with_config)
    x = command(
        ssub,
        "wiring",
        "put a supervised loop in a state: normal, alarm, cut, short, or a voltage",
        "officeguard sim wiring door.archive cut",
        "The loop's channel on the simulated ADC reads the middle of the state's band\n"
        "(cut: the full reference, short: 0 V), and the daemon's clock moves on by the\n"
        "loop's debounce so the state has settled when the command returns.",
    )
    with_config(x, suppress=True)
    x.add_argument("sensor", help="a sensor with a `loop` in the config")
    x.add_argument("state", help="normal, alarm, cut, short, or volts (e.g. 1.0: outside every band)")
    x = command(
        ssub,
        "power",
        "mains on/off, the battery's volts, a siren line's fault, the ADC on/off",
        "officeguard sim power mains off",
        "  sim power mains off|on\n  sim power battery 11.2\n"
        "  sim power siren siren.hall open|short|ok\n  sim power adc off|on\n"
        "Each fault counts after its delay on the daemon's clock (`sim advance`).",
    )
    with_config(x, suppress=True)
    x.add_argument("what", choices=["mains", "battery", "siren", "adc"])
    x.add_argument("value", nargs="+", help="on|off, volts, or SIREN ok|open|short")
    sim.set_defaults(func=cmd_sim)

    for name, func, text, example in (
        ("arm", cmd_arm, "arm zones", "echo 2468 | officeguard arm leadership --mode night"),
        ("disarm", cmd_disarm, "disarm zones", "officeguard disarm leadership finance"),
    ):
        a = command(
            sub,
            name,
            text + " with a user's code (prompted for, or one line read from stdin)",
            example,
            "An empty code is no code: refused, but not counted toward the lockout.",
        )
        with_config(a)
        a.add_argument("zones", nargs="+", metavar="ZONE", help="zone id(s) from the config")
        if name == "arm":
            a.add_argument(
                "--mode",
                choices=["away", "home", "night"],
                default="away",
                help="away: everything; home: without interior sensors; night: interior "
                "sensors only where night: true (default: away)",
            )
            a.add_argument(
                "--force", action="store_true", help="bypass open sensors until the next disarm"
            )
        a.set_defaults(func=func)

    b = command(
        sub,
        "bypass",
        "bypass a sensor, or --undo it (code prompted, or read from stdin)",
        "officeguard bypass pir.director",
    )
    with_config(b)
    b.add_argument("sensor", help="sensor id from the config")
    b.add_argument("--undo", action="store_true", help="unbypass instead")
    b.set_defaults(func=cmd_bypass)

    si = command(
        sub,
        "silence",
        "silence the sirens of zones, keeping the alarm in memory (code as for arm)",
        "officeguard silence leadership",
    )
    with_config(si)
    si.add_argument("zones", nargs="+", metavar="ZONE", help="zone id(s) from the config")
    si.set_defaults(func=cmd_silence)

    lg = command(
        sub,
        "log",
        "the local logbook, oldest first",
        "officeguard log --since 2026-01-01 --until 2027-01-01 --format csv > 2026.csv",
        "Times without an offset are the site's time of day. CSV (UTF-8) has a header row\n"
        "and the columns " + ", ".join(LOG_FIELDS) + "\n(detail as JSON).",
    )
    with_config(lg)
    lg.add_argument("--since", metavar="ISO8601", help="only events at or after this time")
    lg.add_argument("--until", metavar="ISO8601", help="only events before this time")
    lg.add_argument(
        "--kind", choices=KINDS, metavar="KIND", help="only this event kind: " + ", ".join(KINDS)
    )
    lg.add_argument(
        "--format",
        choices=["text", "json", "csv"],
        default="text",
        help="text: aligned columns; json: one event per line; csv: for a spreadsheet "
        "(default: text)",
    )
    lg.add_argument("--json", action="store_true", help="the same as --format json")
    lg.set_defaults(func=cmd_log)

    sc = command(
        sub,
        "schedule",
        "upcoming arm/disarm transitions, with the holiday that shaped each",
        "officeguard schedule -c config/demo.yaml --from 2026-02-13 --days 10",
    )
    sc.add_argument("-c", "--config", required=True, help="site configuration (YAML)")
    sc.add_argument(
        "--from", dest="from_date", metavar="DATE", help="first day, YYYY-MM-DD (default: today)"
    )
    sc.add_argument("--days", type=int, default=7, help="how many days, 1-3660 (default: 7)")
    sc.add_argument("--json", action="store_true", help="JSON instead of the table")
    sc.set_defaults(func=cmd_schedule)
    patrol_cli.add_commands(sub, command, with_config, cmd_patrol)

    cam = command(
        sub,
        "camera",
        "IP cameras whose snapshots go with the alarms (docs/cameras.md)",
        "officeguard camera test -c /etc/officeguard/site.yaml cam.gate",
    )
    cam_sub = cam.add_subparsers(dest="camera_command", required=True, metavar="COMMAND")
    ct = command(
        cam_sub,
        "test",
        "grab one snapshot from a configured camera and print its size and time",
        "officeguard camera test -c /etc/officeguard/site.yaml cam.gate",
    )
    ct.add_argument("-c", "--config", required=True, help="site configuration (YAML)")
    ct.add_argument("name", help="the camera's id")
    ct.add_argument("--save", metavar="FILE", help="also write the JPEG to FILE")
    ct.set_defaults(func=cmd_camera_test)

    m = command(
        sub,
        "monitor",
        "the security office's console of every site under a topic prefix",
        "officeguard monitor --broker mqtts://central:8883 -c office.yaml\n"
        "officeguard monitor --broker mqtt://127.0.0.1:1883 --once",
        "Exit 1 when the broker cannot be reached or refuses the login, 64 for a bad URL,\n"
        "prefix or TLS file, 78 for a bad config.",
    )
    m.add_argument("-c", "--config", help="take broker URL, login and TLS files from this config")
    m.add_argument(
        "--broker", metavar="URL", help="mqtt://host:1883 or mqtts://host:8883 (wins over -c)"
    )
    m.add_argument(
        "--prefix", help="topic prefix (default: the config's topic_prefix, else officeguard)"
    )
    m.add_argument(
        "--once",
        action="store_true",
        help="print one snapshot and exit: each site's status, zones, troubles and drones from "
        "the broker's retained state, with no events (events are not retained: only the live "
        "view shows them)",
    )
    m.add_argument("--json", action="store_true", help="with --once: one JSON object")
    m.add_argument(
        "--wait",
        type=float,
        default=2.0,
        help="with --once: seconds to gather the retained state (default: 2)",
    )
    m.add_argument(
        "--share",
        metavar="GROUP",
        help="MQTT 5 shared-subscription group, so several consoles split the event load",
    )
    m.add_argument(
        "--duration", type=float, metavar="S", help="exit after this many seconds (default: never)"
    )
    m.add_argument(
        "--station",
        metavar="URL",
        help="the monitoring station's address: a camera's snapshot event links its first "
        "picture there (default: the topic the pictures came on)",
    )
    m.set_defaults(func=cmd_monitor)

    w = command(
        sub,
        "wiring",
        "installer help for supervised loops: calibrate a loop's bands, test every loop",
        "officeguard wiring calibrate -c /etc/officeguard/site.yaml door.archive",
    )
    wsub = w.add_subparsers(dest="wiring_action", required=True, metavar="ACTION")
    x = command(
        wsub,
        "calibrate",
        "read a loop closed and open (on the running daemon) and write its bands into the config",
        "officeguard wiring calibrate -c site.yaml door.archive",
        "Asks you to close the detector, reads the loop a few times, asks you to open\n"
        "it, reads again, and writes `bands:` under the sensor's `loop:` in the file\n"
        "(the rest of the file is kept; the result is checked before it is written).\n"
        "Reload the daemon afterwards (systemctl reload officeguard).",
    )
    with_config(x, required=True)
    x.add_argument("sensor", help="a sensor with a `loop` in the config")
    x.add_argument("--dry-run", action="store_true", help="print the bands, do not write the file")
    x = command(
        wsub,
        "test",
        "walk through each supervised loop: open it, close it, see what the panel read",
        "officeguard wiring test -c site.yaml",
        "Exit 0 when every loop read alarm when open and normal when closed, else 1.",
    )
    with_config(x, required=True)
    x.add_argument("sensors", nargs="*", help="only these loops (default: every loop)")
    w.set_defaults(func=cmd_wiring)

    dc = command(
        sub,
        "dc09",
        "the alarm receiving centre (SIA DC-09, docs/dc09.md)",
        "officeguard dc09 test -c /etc/officeguard/site.yaml",
    )
    dc_sub = dc.add_subparsers(dest="dc09_command", required=True, metavar="ACTION")
    dt = command(
        dc_sub,
        "test",
        "send a test report (E601) to the centre and print its answer",
        "officeguard dc09 test -c /etc/officeguard/site.yaml",
        "Exit 0 on the centre's ACK, 1 when no path answers, 2 when it refuses (DUH),\n"
        "78 for a config without dc09 or an unusable key file.",
    )
    dt.add_argument("-c", "--config", required=True, help="site configuration (YAML)")
    dt.add_argument("--restore", action="store_true", help="send R601 instead of E601")
    dt.set_defaults(func=cmd_dc09_test)

    st = command(
        sub,
        "station",
        "the security office's monitoring station: alarm queue, logbook, web console",
        "officeguard station operator lan --role admin\n"
        "officeguard station serve --broker mqtt://127.0.0.1:1883",
        "Needs the station extra (pip install 'officeguard[station]'); docs/station.md.",
    )
    st.set_defaults(func=cmd_station)
    if argv is None or "station" in argv:
        _station_arguments(st, command)

    h = command(
        sub,
        "hash-code",
        "read a code from the terminal, print a code_hash for the config",
        "officeguard hash-code",
    )
    h.set_defaults(func=cmd_hash_code)
    return p


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    args = build_parser(argv).parse_args(argv)
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
