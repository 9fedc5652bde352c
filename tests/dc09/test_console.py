"""The centre's loss of the link as the office console shows it: a DC-09 path that stops
answering is a trouble on the site's board, which the console (`officeguard monitor`) shows
among the site's troubles and in its feed; its restore clears it."""

from __future__ import annotations

import asyncio
import io
import json
import re

from rich.console import Console as RichConsole

from controller.console.model import Console
from controller.console.view import render, severity
from tests.dc09.strict_receiver import StrictReceiver
from tests.dc09.test_component import dc09_config, on_channel, report, until
from tests.fake_site import FakeSite

P = "officeguard"


def publish(board: Console, site: FakeSite, sent: int) -> int:
    """What the reporting component publishes for the site: its retained trouble state (the
    site's troubles, as `P/<site>/trouble/state`) and each event journaled since `sent`."""
    sid = site.config.site.id
    body = {"troubles": site.troubles(), "ts": site.clock.now().isoformat()}
    board.ingest(f"{P}/{sid}/trouble/state", json.dumps(body).encode(), 0)
    for event in site.recorded[sent:]:
        board.ingest(f"{P}/{sid}/event", event.to_json().encode(), 0)
    return len(site.recorded)


def drawn(board: Console) -> tuple[str, str]:
    """The console's screen as text: its sites table and its events feed."""
    out = RichConsole(
        width=200, record=True, color_system=None, force_terminal=False, file=io.StringIO()
    )
    out.print(render(board, 0, "mqtt://x:1883 connected", feed_rows=15))
    sites, _, feed = re.sub(r"\s+", " ", out.export_text()).partition(" Events ")
    return sites, feed


def test_a_lost_dc09_path_is_a_trouble_in_the_console_and_its_restore_clears_it(tmp_path):
    async def main():
        rx = await StrictReceiver(mode="silent").start()
        async with on_channel(tmp_path, dc09_config(rx), rx) as (site, comp):
            board = Console(P)
            sid = site.config.site.id
            sent = publish(board, site, 0)
            assert board.sites[sid].troubles == []

            report(site, comp, "E130")
            await until(lambda: "dc09.primary" in site.trouble_board, "path down", comp, rx)
            sent = publish(board, site, sent)
            b = board.sites[sid]
            assert [t["cid"] for t in b.troubles if t.get("source") == "dc09"] == ["E350"]
            assert severity(b, 0) <= 3  # it asks for the office's eyes
            sites, feed = drawn(board)
            assert "the primary path to the receiving centre is down (no answer)" in sites
            assert "trouble E350" in feed  # the journaled trouble

            rx.mode = "ack"
            assert await comp.sender.poll(comp.sender.paths[0])
            publish(board, site, sent)
            assert [t for t in board.sites[sid].troubles if t.get("source") == "dc09"] == []
            sites, feed = drawn(board)
            assert "receiving centre" not in sites and severity(board.sites[sid], 0) == 4
            assert "trouble_restore R350" in feed

    asyncio.run(main())
