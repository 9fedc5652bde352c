"""`officeguard dc09 test`: send one test report (E601, or R601 with --restore) to the
receiving centre and print its answer, path by path as the daemon would try them. The test
report is not journaled: it is a check of the link, not an event of the site."""

from __future__ import annotations

import asyncio
import sys
from typing import TextIO

from controller.clock import RealClock
from controller.config import EXIT_CONFIG, SiteConfig
from controller.dc09.frame import adm_cid_data, sia_dcs_data
from controller.dc09.keyfile import Dc09KeyError, read_key
from controller.dc09.mapping import TEST_CID, Numbering
from controller.dc09.sender import Dc09Sender

EXIT_NO_ANSWER = 1
EXIT_REFUSED = 2


def run_test(cfg: SiteConfig, restore: bool = False, out: TextIO = sys.stdout) -> int:
    dc09 = cfg.dc09
    if dc09 is None:
        print("no dc09 section in the config: there is no receiving centre", file=sys.stderr)
        return EXIT_CONFIG
    key = None
    if dc09.key_file is not None:
        try:
            key = read_key(dc09.key_file, dc09.key_format)
        except Dc09KeyError as e:
            print(e, file=sys.stderr)
            return EXIT_CONFIG
    cid = ("R" if restore else "E") + TEST_CID[1:]
    message = {"ADM-CID": adm_cid_data(cid, 0, 0), "SIA-DCS": sia_dcs_data(cid, 0, 0)}

    async def main() -> int:
        clock = RealClock()
        sender = Dc09Sender(dc09, Numbering.of(cfg, dc09), key, clock)
        try:
            result = await sender.deliver(message)
        finally:
            sender.close()
            clock.close()
        enc = "encrypted" if key is not None else "plain"
        for p in sender.paths:
            mark = "answered" if p.up else f"no answer ({p.why})"
            print(f"{p.name} {p.where} ({p.format}): {mark}", file=out)
        if result.ok and result.answer is not None:
            print(
                f"{result.answer.ident} for {cid} seq {result.answer.seq:04d} on the {result.path}"
                f" path ({enc}, {result.attempts} attempt(s), clock offset"
                f" {sender.offset.total_seconds():+.0f}s)",
                file=out,
            )
            return 0
        if result.refused is not None:
            print(f"refused on the {result.path} path: {result.refused}", file=out)
            return EXIT_REFUSED
        print(f"no path acknowledged {cid} ({result.attempts} attempt(s))", file=out)
        return EXIT_NO_ANSWER

    return asyncio.run(main())
