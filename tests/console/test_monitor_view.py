"""The security office's console drawn on an 80-column terminal: nothing runs past the edge and
no word is cut in two (a site id, a zone, a state, a drone's id or a word of an event's text)."""

from __future__ import annotations

import json
import re
import uuid
from typing import Any

from rich.console import Console as RichConsole

from controller.console.model import Console
from controller.console.view import render

P = "officeguard"
TEXT = "Báo động: Cửa phòng Giám đốc (Phòng lãnh đạo) mở, hết thời gian vào mà chưa tắt bảo vệ"


def j(obj: Any) -> bytes:
    return json.dumps(obj).encode()


def busy_board() -> Console:
    """Three sites with long ids, every zone state, troubles, a drone and a full event feed."""
    c = Console(P)
    for n, site in enumerate(("office-a", "so-tai-chinh-lao-cai", "ubnd-huyen-bat-xat")):
        c.ingest(f"{P}/{site}/status", j({"online": n != 2, "version": "0.1.0", "ts": "t"}), 0)
        for z, s in (
            ("leadership", "triggered"),
            ("finance", "armed_night"),
            ("perimeter", "disarmed"),
            ("archive", "pending"),
        ):
            c.ingest(f"{P}/{site}/zone/{z}/state", j({"state": s, "alarm": s == "triggered"}), 0)
        troubles = [
            {"source": "rf.roof", "cid": "E333", "what": "detector silent"},
            {"source": "ac", "cid": "E301", "what": "mains power lost"},
        ]
        c.ingest(f"{P}/{site}/trouble/state", j({"troubles": troubles, "ts": "t"}), 0)
        drone = {"track": "rid-1", "detector": "rf.roof", "uas_id": "1596F350457000000001"}
        c.ingest(f"{P}/{site}/drone/rid-1", j({**drone, "distance_m": 200}), 0)
        for seq in range(1, 6):
            event = {
                "id": uuid.uuid4().hex,
                "seq": seq,
                "site": site,
                "ts": "2026-02-17T01:25:00+07:00",
                "kind": "trouble_restore",
                "cid": "E134",
                "sensor": "door.director",
                "text": TEXT,
                "detail": {},
            }
            c.ingest(f"{P}/{site}/event", j(event), 0)
    return c


def test_the_console_fits_80_columns_without_cutting_a_word():
    board = busy_board()
    out = RichConsole(width=80, record=True, color_system=None, force_terminal=False)
    out.print(render(board, 0, "mqtt://security-office.local:1883 connected"))
    lines = out.export_text().splitlines()
    too_long = [line for line in lines if len(line) > 80]
    assert not too_long, "\n".join(too_long)
    words = set(TEXT.split()) | {
        "so-tai-chinh-lao-cai", "ubnd-huyen-bat-xat", "OFFLINE", "leadership", "triggered",
        "armed_night", "archive", "pending", "1596F350457000000001", "trouble_restore",
        "door.director", "silent,", "mains", "attention", "events",
    }  # fmt: skip
    whole = set()
    for line in lines:
        whole.update(line.split())
    cut = sorted(w for w in words if w not in whole)
    assert not cut, f"cut in two: {cut}\n" + "\n".join(lines)


def test_every_site_and_every_event_of_the_feed_is_shown():
    out = RichConsole(width=80, record=True, color_system=None, force_terminal=False)
    out.print(render(busy_board(), 0, "mqtt://x:1883 connected", feed_rows=15))
    text = out.export_text()
    assert len(re.findall(r"^ \S+\s+(?:online|OFFLINE)", text, re.M)) == 3
    assert len(re.findall(r"#[1-5]\b", text)) == 15
