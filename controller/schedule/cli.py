"""`officeguard schedule -c FILE [--from DATE] [--days N] [--json]`: the upcoming arm/disarm
transitions with the holidays that shaped them."""

from __future__ import annotations

import argparse
import sys
from datetime import date, datetime

from controller.config import EXIT_CONFIG, Loaded
from controller.schedule.transitions import schedule_report


def run_schedule(loaded: Loaded, args: argparse.Namespace) -> int:
    cfg = loaded.config
    if args.from_date:
        try:
            start = date.fromisoformat(args.from_date)
        except ValueError:
            print(f"officeguard: bad --from {args.from_date!r}: use YYYY-MM-DD", file=sys.stderr)
            return 64
    else:
        start = datetime.now(cfg.tz).date()
    if not 1 <= args.days <= 3660:
        print("officeguard: --days is from 1 to 3660", file=sys.stderr)
        return 64
    try:
        print(schedule_report(cfg, start, args.days, as_json=args.json))
    except ValueError as e:
        print(f"officeguard: {e}", file=sys.stderr)
        return EXIT_CONFIG
    return 0
