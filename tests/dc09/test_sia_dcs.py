"""SIA-DCS where a centre wants it: the SIA code of every event comes from the one Contact ID
table, the strict receiver reads a hand-written frame, and a path set to SIA-DCS gets SIA-DCS
while the other keeps ADM-CID."""

from __future__ import annotations

import asyncio
import re
from pathlib import Path

from pysiaalarm.data.data import SIA_CODES

from controller.contact_id import CODES, sia
from controller.sensor_types import ENTRY_EXIT_CID, SENSOR_TYPES
from tests.dc09.strict_receiver import StrictReceiver
from tests.dc09.test_component import dc09_config, on_channel, report, until
from tests.dc09.test_frame import HAND_SIA, ref_crc16

ROOT = Path(__file__).resolve().parents[2]


def codes_the_daemon_sends() -> set[int]:
    """Every Contact ID code the daemon puts on an event: the sensor types' own and every code
    written in its source (the station reads other panels' codes, so it is left out)."""
    found = {s.cid for s in SENSOR_TYPES.values()} | {ENTRY_EXIT_CID}
    pattern = re.compile(r'"[ER](\d{3})"|\bcid\((\d{3})|\bCID_[A-Z_]+ = "?[ER]?(\d{3})\b')
    for path in (ROOT / "controller").rglob("*.py"):
        if "station" in path.parts:
            continue
        for m in pattern.finditer(path.read_text(encoding="utf-8")):
            found.add(int(next(g for g in m.groups() if g)))
    return found


def test_every_contact_id_code_the_daemon_sends_has_a_sia_code_for_new_and_restore():
    sent = codes_the_daemon_sends()
    assert {130, 134, 350, 401, 601} <= sent  # the scan finds what it should
    for code in sent:
        assert code in CODES, f"{code} is sent but not in the table"
        assert sia(f"E{code:03d}") and sia(f"R{code:03d}")


def test_every_row_of_the_table_has_two_sia_codes_a_receiver_written_by_others_knows():
    for code, row in CODES.items():
        for letters in row.sia:
            assert re.fullmatch(r"[A-Z]{2}", letters), (code, letters)
            assert letters in SIA_CODES, f"{code}: pysiaalarm does not know {letters}"


def test_the_sia_codes_say_what_the_contact_id_codes_say():
    assert [sia(c) for c in ("E130", "R130", "E110", "E120", "E121", "E137", "R137")] == [
        "BA",
        "BR",
        "FA",
        "PA",
        "HA",
        "TA",
        "TR",
    ]
    assert [sia(c) for c in ("E401", "R401", "E350", "R350", "E602")] == [
        "OP",
        "CL",
        "YS",
        "YK",
        "RP",
    ]


def test_the_strict_receiver_acknowledges_the_hand_written_sia_dcs_frame_and_refuses_a_changed_one():
    rx = StrictReceiver()
    reply = rx.answer(HAND_SIA)
    assert reply is not None and b'"ACK"0002' in reply
    assert [(m.ident, m.data) for m in rx.messages()] == [("SIA-DCS", "Nri1/BA011")]
    assert rx.answer(HAND_SIA.replace(b"BA011", b"BA012")) is not None
    assert rx.refused == ["crc"]
    # a code no DC-03 table has, with a CRC that checks: refused for its content
    body = HAND_SIA[9:-1].replace(b"BA011", b"QQ011")
    unknown = b"\n" + f"{ref_crc16(body):04X}0{len(body):03X}".encode() + body + b"\r"
    assert rx.answer(unknown) is not None and rx.refused[-1].startswith("content")
    assert len(rx.messages()) == 1


def test_a_path_set_to_sia_dcs_gets_sia_dcs_and_the_backup_keeps_adm_cid(tmp_path):
    async def main():
        primary = await StrictReceiver(mode="silent").start()
        backup = await StrictReceiver().start()
        cfg = dc09_config(primary, backup, format="SIA-DCS")
        dc09 = cfg.dc09
        backup_path = dc09.backup.model_copy(update={"format": "ADM-CID"})
        cfg = cfg.model_copy(update={"dc09": dc09.model_copy(update={"backup": backup_path})})
        async with on_channel(tmp_path, cfg, primary, backup) as (site, comp):
            assert comp.status()["dc09"]["paths"]["primary"]["format"] == "SIA-DCS"
            report(site, comp, "E130")
            await until(lambda: len(backup.messages()) == 2, "the backup's ACKs", comp, primary)
            assert [m.data for m in backup.messages()] == ["1130 00 000", "1350 00 000"]
            primary.mode = "ack"
            assert await comp.sender.poll(comp.sender.paths[0])
            comp.events([])
            await until(lambda: comp.outbox.depth() == 0, "everything acknowledged")
            # the primary's restore, in SIA-DCS: YK, communications restoral
            assert [(m.ident, m.data) for m in primary.messages()] == [("SIA-DCS", "NYK000")]

    asyncio.run(main())
