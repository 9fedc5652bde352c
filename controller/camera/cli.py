"""`officeguard camera test NAME`: one snapshot from a configured camera, its size and time.

It goes through the daemon's own fetcher (same credentials file, timeout, size cap, TLS and
JPEG check), so what it says is what an alarm would get. Nothing is stored; `--save FILE`
writes the picture for a look.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import time
from datetime import datetime

from controller.camera.fetch import SnapshotError, fetch_snapshot, read_credentials
from controller.config import Loaded

EXIT_FAILED = 69  # EX_UNAVAILABLE: the camera did not give a snapshot


def run_camera_test(loaded: Loaded, args: argparse.Namespace) -> int:
    cfg = loaded.config
    cams = {c.id: c for c in cfg.cameras}
    cam = cams.get(args.name)
    if cam is None:
        known = ", ".join(sorted(cams)) or "none configured"
        print(f"no camera {args.name!r} (cameras: {known})", file=sys.stderr)
        return 2
    started = time.monotonic()
    try:
        data = asyncio.run(fetch_snapshot(cam, read_credentials(cam.credentials_file)))
    except SnapshotError as e:
        print(f"{cam.id}: FAILED ({e.reason}): {e}", file=sys.stderr)
        return EXIT_FAILED
    took = time.monotonic() - started
    at = datetime.now(cfg.tz).isoformat(timespec="milliseconds")
    print(f"{cam.id}: {len(data)} bytes, JPEG, taken {at} in {took:.2f} s")
    if args.save:
        with open(args.save, "wb") as f:
            f.write(data)
    return 0
