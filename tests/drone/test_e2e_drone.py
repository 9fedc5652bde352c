"""End to end: a drone detector line through the simulated pty into the real reader, decoder
and tracker of the running daemon, and out as events in the logbook."""

from __future__ import annotations

import pytest

from controller.drone import geo, odid
from controller.drone.protocol import encode_line
from tests.e2e import Site

pytestmark = pytest.mark.integration

SITE = (22.4856, 103.9707)


def rid_line(seq: int) -> str:
    lat, lon = geo.destination(SITE[0], SITE[1], 45.0, 200.0)
    pack = odid.encode_message_pack(
        [
            odid.encode_basic_id("1596F350457000000001"),
            odid.encode_location(lat, lon, alt_geo=120.0, height=80.0),
            odid.encode_operator_id("VNM-OP-0042"),
        ]
    )
    return (
        encode_line(
            {
                "v": 1,
                "t": "rid",
                "seq": seq,
                "tr": "ble4",
                "mac": "aa:bb:cc:dd:ee:ff",
                "rssi": -71,
                "hex": pack.hex(),
            }
        )
        .decode()
        .rstrip("\n")
    )


def hb_line(seq: int) -> str:
    return (
        encode_line({"v": 1, "t": "hb", "seq": seq, "up": seq * 5, "adv": 10, "drop": 0})
        .decode()
        .rstrip("\n")
    )


def test_remote_id_drone_is_reported_then_lost_and_silence_is_a_trouble(tmp_path):
    site = Site(tmp_path / "state")
    site.start("2026-03-04T12:00:00+07:00")
    try:
        site.og("sim", "heartbeat", "rf.roof", "off")  # the detector hangs after this line
        site.og("sim", "serial", "rf.roof", hb_line(1))
        site.og("sim", "serial", "rf.roof", rid_line(2))
        drones = [e for e in site.events() if e["kind"] == "drone"]
        assert len(drones) == 1
        d = drones[0]["detail"]
        assert d["uas_id"] == "1596F350457000000001" and d["operator_id"] == "VNM-OP-0042"
        assert abs(d["distance_m"] - 200.0) < 5
        assert drones[0]["cid"] == "E150"
        # a line with a wrong CRC is counted and ignored
        good = rid_line(3)
        site.og(
            "sim",
            "serial",
            "rf.roof",
            good[:-8] + ("0" * 8 if not good.endswith("0" * 8) else "1" * 8),
        )
        st = site.status()
        assert st["detectors"]["rf.roof"]["bad"]["bad_crc"] == 1
        site.advance("61s")
        kinds = [e["kind"] for e in site.events()]
        assert "drone_lost" in kinds
        assert "trouble" in kinds  # no line for more than heartbeat_timeout (15 s)
        site.og("sim", "serial", "rf.roof", hb_line(4))
        assert "trouble_restore" in [e["kind"] for e in site.events()]
        assert site.outputs()["siren.hall"] is False  # default: a drone does not sound the siren
    finally:
        site.stop()
