"""`make bench` / `python -m bench [--quick] [--only NAME[,NAME...]]`: every benchmark, each
figure printed beside a baseline measured in the same run (and their ratio), with its target
and PASS/FAIL; the results go to bench/results/bench-<time>.json and bench/results/latest.json.

Benchmarks provided by other modules (console_ingest, storage) are run when present.
"""

from __future__ import annotations

import argparse
import importlib
import json
import os
import platform
import time
import traceback
from pathlib import Path
from typing import Any

from bench.common import figure, print_figures

# name -> module; in the order they run (the idle one last: the machine is quietest then)
BENCHES = ["latency", "cold", "patrol", "dc09", "camera", "flood", "command", "storm", "drain", "console_ingest", "station_ingest", "station_queue", "station_browser", "storage", "keypad_idle", "adc_poll", "idle"]


def _load(name: str) -> Any:
    try:
        return importlib.import_module(f"bench.{name}")
    except ImportError as e:
        if e.name == f"bench.{name}":
            return None
        raise


def _figures_of(result: dict[str, Any]) -> list[dict[str, Any]]:
    """Figures in the common form, also from a benchmark that reports value/baseline/target."""
    if isinstance(result.get("figures"), list):
        return list(result["figures"])
    if "value" in result and isinstance(result.get("value"), int | float):
        return [
            figure(
                str(result.get("name")),
                float(result["value"]),
                str(result.get("unit", "")),
                baseline=result.get("baseline"),
                baseline_name="baseline",
                target=str(result.get("target", "")),
                ok=result.get("meets_target"),
            )
        ]
    return []


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    ap.add_argument("--quick", action="store_true", help="smaller runs: about a minute in all")
    ap.add_argument("--only", help=f"comma-separated, from: {', '.join(BENCHES)}")
    args = ap.parse_args(argv)
    names = BENCHES
    if args.only:
        names = [n.strip() for n in args.only.split(",") if n.strip()]
        unknown = [n for n in names if n not in BENCHES]
        if unknown:
            ap.error(f"unknown benchmark {', '.join(unknown)} (known: {', '.join(BENCHES)})")
    load = os.getloadavg()
    print(
        f"OfficeGuard benchmarks{' (quick)' if args.quick else ''} on {platform.node()}: "
        f"{os.cpu_count()} CPU(s), load average {load[0]:.2f} at the start "
        "(other work on the machine shows in every figure; the baselines run beside them)"
    )
    results: list[dict[str, Any]] = []
    t_start = time.monotonic()
    for name in names:
        mod = _load(name)
        if mod is None:
            print(f"\n== {name}: not available (bench/{name}.py is not there yet)")
            results.append({"name": name, "skipped": "not available"})
            continue
        t0 = time.monotonic()
        try:
            res = mod.run(quick=args.quick)
        except Exception as e:  # one broken benchmark must not hide the others' figures
            traceback.print_exc()
            print(f"\n== {name}: FAILED to run: {e}")
            res = {"name": name, "error": f"{type(e).__name__}: {e}"}
        res.setdefault("name", name)
        res["seconds"] = round(time.monotonic() - t0, 1)
        results.append(res)
    figures = [f for r in results for f in _figures_of(r)]
    print_figures(f"summary ({time.monotonic() - t_start:.0f} s)", figures)
    failed = [f["name"] for f in figures if f["pass"] is False]
    errors = [r["name"] for r in results if "error" in r]
    out = Path(__file__).parent / "results"
    out.mkdir(exist_ok=True)
    doc = {
        "time": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "quick": args.quick,
        "host": {"node": platform.node(), "cpus": os.cpu_count(), "load_at_start": load,
                 "python": platform.python_version(), "machine": platform.machine()},
        "results": results,
        "failed": failed,
        "errors": errors,
    }
    path = out / f"bench-{time.strftime('%Y%m%dT%H%M%S')}.json"
    text = json.dumps(doc, indent=2, default=str)
    path.write_text(text)
    (out / "latest.json").write_text(text)
    print(f"\nresults: {path} (and {out / 'latest.json'})")
    if failed or errors:
        print(f"not met: {', '.join(failed + errors)}")
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
