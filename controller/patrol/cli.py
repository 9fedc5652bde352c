"""`officeguard patrol preview | log | hash-badge`, and the `sim badge` / `sim checkpoint`
commands: the parser entries and what they print. `cli.py` calls `add_commands` and
`add_sim_commands`; nothing here runs at import.

`patrol log --night D` reads the logbook (the `patrol` events) and the plans: each round the
plans expected for the night of D (rounds due from its evening to the next morning; see
controller/patrol/plan.py), with its outcome, its visits (who, when, the gap since the one
before), and what was skipped or missed. `--format csv` gives one row per round and one per
visit, for the monthly report.
"""

from __future__ import annotations

import argparse
import csv
import json
import sys
from collections.abc import Callable
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any

from controller.config import EXIT_CONFIG, SiteConfig, format_duration

EXIT_USAGE = 64
EXIT_UNAVAILABLE = 69
CSV_FIELDS = ("night", "plan", "due", "outcome", "row", "at", "checkpoint", "user", "gap_s", "cid")

Command = Callable[..., argparse.ArgumentParser]


def add_commands(
    sub: Any, command: Command, with_config: Callable[..., None], run: Callable[..., int]
) -> None:
    p = command(
        sub,
        "patrol",
        "guard patrols: the rounds expected, the patrol log, a badge's hash",
        "officeguard patrol preview -c site.yaml --from 2026-02-14 --nights 5\n"
        "officeguard patrol log -c site.yaml --night 2026-02-17 --format csv",
    )
    psub = p.add_subparsers(dest="patrol_action", required=True, metavar="ACTION")
    x = command(
        psub,
        "preview",
        "the rounds the patrol plans expect in the coming nights, with the holiday that shaped each",
        "officeguard patrol preview -c site.yaml --from 2026-02-14 --nights 5",
    )
    x.add_argument("-c", "--config", required=True, help="site configuration (YAML)")
    x.add_argument(
        "--from", dest="from_date", metavar="DATE", help="first night, YYYY-MM-DD (default: today)"
    )
    x.add_argument("--nights", type=int, default=3, help="how many nights, 1-366 (default: 3)")
    x.add_argument("--json", action="store_true", help="JSON instead of the table")
    x = command(
        psub,
        "log",
        "each round of one night with its visits, gaps and misses, from the logbook",
        "officeguard patrol log -c site.yaml --night 2026-02-17 --format csv > 2026-02-17.csv",
        "A night runs from noon of DATE to noon of the next day; a round belongs to the\n"
        "night its plan's run started. CSV has a header row and the columns\n"
        + ", ".join(CSV_FIELDS)
        + " (one row per round, one per visit).",
    )
    with_config(x, required=True)
    x.add_argument("--night", required=True, metavar="DATE", help="the night, YYYY-MM-DD")
    x.add_argument("--plan", help="only this plan")
    x.add_argument(
        "--format", choices=["text", "json", "csv"], default="text", help="(default: text)"
    )
    x = command(
        psub,
        "hash-badge",
        "read a badge number from the terminal, print a badge_hash for the config",
        "officeguard patrol hash-badge",
        'The number is the card\'s combined decimal (up to 10 digits) or "facility,card".',
    )
    p.set_defaults(func=run)


def add_sim_commands(ssub: Any, command: Command, with_config: Callable[..., None]) -> None:
    x = command(
        ssub,
        "badge",
        "a badge presented at a simulated Wiegand reader (the number read from stdin)",
        "echo 188,12345 | officeguard sim badge cp.gate",
        "The number is read from standard input, never taken from the command line, and\n"
        "never echoed. --garble sends it with a wrong parity bit or cut short.",
    )
    with_config(x, suppress=True)
    x.add_argument("checkpoint", help="badge checkpoint id from the config")
    x.add_argument("--garble", choices=["parity", "length"], help="send a garbled read")
    x = command(
        ssub,
        "checkpoint",
        "turn a simulated key switch (or press a checkpoint button)",
        "officeguard sim checkpoint cp.safe",
    )
    with_config(x, suppress=True)
    x.add_argument("checkpoint", help="button checkpoint id from the config")


def sim_request(args: argparse.Namespace, request: Callable[..., dict[str, Any]]) -> int:
    if args.sim_action == "badge":
        from controller.patrol.badges import BadgeFormatError, normalize_badge

        line = sys.stdin.readline().strip()
        try:
            number = int(normalize_badge(line))
        except BadgeFormatError as e:
            print(f"officeguard: {e}", file=sys.stderr)
            return 65
        r = request(
            args, "sim.badge", checkpoint=args.checkpoint, number=number, garble=args.garble
        )
    else:
        r = request(args, "sim.checkpoint", checkpoint=args.checkpoint)
    print(f"{r['checkpoint']}: {json.dumps(r['counts'])}")
    return 0


# ----------------------------------------------------------------------------- preview


def preview_report(cfg: SiteConfig, start: date, nights: int, as_json: bool = False) -> str:
    from controller.patrol.plan import format_preview, preview
    from controller.schedule.calendar import OfficeCalendar

    cal = OfficeCalendar(cfg.holidays, cfg.site.language)
    rounds = preview(list(cfg.patrols), cal, cfg.tz, start, nights)
    if as_json:
        return json.dumps(
            {
                "site": cfg.site.id,
                "from": start.isoformat(),
                "nights": nights,
                "rounds": [r.to_json(cfg.tz) for r in rounds],
            },
            ensure_ascii=False,
        )
    header = f"Patrol rounds of {nights} night(s) from {start.isoformat()} ({cfg.site.timezone})"
    return format_preview(rounds, cfg.tz, header)


# ----------------------------------------------------------------------------- log


def night_log(
    cfg: SiteConfig,
    events: list[Any],
    night: date,
    now: datetime | None = None,
    plan_id: str | None = None,
) -> list[dict[str, Any]]:
    """The rounds of one night: each expected round with its outcome and visits."""
    from controller.patrol.plan import rounds_of_night
    from controller.schedule.calendar import OfficeCalendar

    cal = OfficeCalendar(cfg.holidays, cfg.site.language)
    by_round: dict[tuple[str, str], list[Any]] = {}
    for ev in events:
        d = ev.detail
        if d.get("night") == night.isoformat() and d.get("plan") and d.get("due"):
            key = (d["plan"], datetime.fromisoformat(d["due"]).isoformat())
            by_round.setdefault(key, []).append(ev)
    out: list[dict[str, Any]] = []
    for plan in cfg.patrols:
        if plan_id is not None and plan.id != plan_id:
            continue
        for r in rounds_of_night(plan, cal, cfg.tz, night):
            due = r.due.astimezone(cfg.tz).isoformat()
            evs = by_round.pop((plan.id, due), [])
            out.append(_round_row(plan.id, due, r.reason, evs, r.deadline(plan), now))
    for (pid, due), evs in sorted(by_round.items()):  # rounds of a plan changed since
        out.append(_round_row(pid, due, None, evs, None, now))
    out.sort(key=lambda x: x["due"])
    return out


def _round_row(
    plan: str,
    due: str,
    reason: str | None,
    evs: list[Any],
    deadline: datetime | None,
    now: datetime | None,
) -> dict[str, Any]:
    whats = [e.detail.get("patrol") for e in evs]
    visits = [
        {
            "at": e.ts,
            "checkpoint": e.sensor,
            "user": e.user,
            "gap_s": e.detail.get("gap_s"),
            "cid": e.cid,
            "out_of_order": e.detail.get("patrol") == "out_of_order",
        }
        for e in evs
        if e.detail.get("patrol") in ("visited", "out_of_order")
    ]
    skipped = [e.sensor for e in evs if e.detail.get("patrol") == "skipped"]
    if "missed" in whats:
        outcome = "missed"
    elif "completed" in whats:
        done = next(e for e in evs if e.detail.get("patrol") == "completed")
        outcome = "late" if done.detail.get("late") else "completed"
    elif skipped:
        outcome = "incomplete"
    elif deadline is not None and now is not None and now < deadline:
        outcome = "in progress" if visits else ("late" if "late" in whats else "pending")
    else:
        outcome = "no record"  # the controller did not supervise it (it was off)
    silent = sum(1 for w in whats if w == "silent")
    return {
        "plan": plan,
        "due": due,
        "reason": reason,
        "outcome": outcome,
        "visits": visits,
        "skipped": skipped,
        "no_sign_of_life": silent,
        "late": "late" in whats,
    }


def format_log(rows: list[dict[str, Any]], night: date, site: str) -> str:
    lines = [f"Patrol log of site {site}, night of {night.isoformat()}"]
    if not rows:
        lines.append("(no rounds expected)")
    for r in rows:
        due = datetime.fromisoformat(r["due"])
        note = f"  — {r['reason']}" if r["reason"] else ""
        extra = []
        if r["visits"]:
            first = datetime.fromisoformat(r["visits"][0]["at"])
            extra.append(f"started {first:%H:%M}")
        if r["skipped"]:
            extra.append("skipped " + ", ".join(r["skipped"]))
        if r["no_sign_of_life"]:
            extra.append(f"no sign of life x{r['no_sign_of_life']}")
        lines.append(
            f"{due:%Y-%m-%d %H:%M}  {r['plan']}  {r['outcome'].upper()}"
            + (f"  ({'; '.join(extra)})" if extra else "")
            + note
        )
        for v in r["visits"]:
            at = datetime.fromisoformat(v["at"])
            gap = format_duration(timedelta(seconds=v["gap_s"])) if v["gap_s"] is not None else ""
            flag = "  out of order" if v["out_of_order"] else ""
            lines.append(
                f"    {at:%H:%M:%S}  {v['checkpoint']:<16} {v['user'] or '-':<12} gap {gap}{flag}"
            )
    return "\n".join(lines)


def write_csv(rows: list[dict[str, Any]], night: date) -> None:
    w = csv.writer(sys.stdout, lineterminator="\n")
    w.writerow(CSV_FIELDS)
    for r in rows:
        w.writerow(
            [
                night.isoformat(),
                r["plan"],
                r["due"],
                r["outcome"],
                "round",
                "",
                ";".join(r["skipped"]),
                "",
                "",
                "",
            ]
        )
        for v in r["visits"]:
            w.writerow(
                [
                    night.isoformat(),
                    r["plan"],
                    r["due"],
                    r["outcome"],
                    "visit",
                    v["at"],
                    v["checkpoint"],
                    v["user"] or "",
                    v["gap_s"],
                    v["cid"],
                ]
            )


# ----------------------------------------------------------------------------- entry


def run(
    args: argparse.Namespace,
    load: Callable[[str], Any],
    journal: Callable[[argparse.Namespace], Path],
) -> int:
    """`journal(args)`: the logbook's path for these options (the command line knows it)."""
    action = args.patrol_action
    if action == "hash-badge":
        return _hash_badge()
    cfg: SiteConfig = load(args.config).config
    if action == "preview":
        try:
            start = (
                date.fromisoformat(args.from_date)
                if args.from_date
                else datetime.now(cfg.tz).date()
            )
        except ValueError:
            print(f"officeguard: bad --from {args.from_date!r}: use YYYY-MM-DD", file=sys.stderr)
            return EXIT_USAGE
        if not 1 <= args.nights <= 366:
            print("officeguard: --nights is from 1 to 366", file=sys.stderr)
            return EXIT_USAGE
        try:
            print(preview_report(cfg, start, args.nights, args.json))
        except ValueError as e:
            print(f"officeguard: {e}", file=sys.stderr)
            return EXIT_CONFIG
        return 0
    try:
        night = date.fromisoformat(args.night)
    except ValueError:
        print(f"officeguard: bad --night {args.night!r}: use YYYY-MM-DD", file=sys.stderr)
        return EXIT_USAGE
    if args.plan is not None and args.plan not in {p.id for p in cfg.patrols}:
        print(f"officeguard: unknown plan {args.plan!r}", file=sys.stderr)
        return EXIT_USAGE
    from controller.journal import JournalError, read_events

    try:
        events = list(read_events(journal(args), kind="patrol"))
    except JournalError as e:
        print(f"officeguard: {e}", file=sys.stderr)
        return EXIT_UNAVAILABLE
    now = datetime.fromisoformat(events[-1].ts) if events else None
    rows = night_log(cfg, events, night, now, args.plan)
    if args.format == "json":
        print(
            json.dumps(
                {"site": cfg.site.id, "night": night.isoformat(), "rounds": rows},
                ensure_ascii=False,
            )
        )
    elif args.format == "csv":
        write_csv(rows, night)
    else:
        print(format_log(rows, night, cfg.site.id))
    return 0


def _hash_badge() -> int:
    import getpass

    from controller.patrol.badges import BadgeFormatError, hash_badge

    line = getpass.getpass("Badge: ") if sys.stdin.isatty() else sys.stdin.readline().strip()
    try:
        print(hash_badge(line))
    except BadgeFormatError as e:
        print(f"officeguard: {e}", file=sys.stderr)
        return 65
    return 0
