"""`make bench`: run every benchmark, print each figure beside its baseline, write results JSON."""

from __future__ import annotations

import json
import time
from pathlib import Path

from bench import keypad_idle

BENCHES = [keypad_idle]


def main() -> int:
    results = []
    for b in BENCHES:
        results.append(b.run())
    out = Path(__file__).parent / "results"
    out.mkdir(exist_ok=True)
    path = out / f"bench-{time.strftime('%Y%m%dT%H%M%S')}.json"
    path.write_text(json.dumps(results, indent=2))
    print(f"results: {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
