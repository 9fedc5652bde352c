"""The sender against pysiaalarm, the receiver Home Assistant's SIA integration runs (written
by others), on loopback: plain and encrypted, TCP and UDP, and its NAK for a skewed clock."""

from __future__ import annotations

import asyncio
import socket
from datetime import UTC, datetime, timedelta

import pytest
from pysiaalarm import SIAAccount
from pysiaalarm.aio import CommunicationsProtocol, SIAClient
from pysiaalarm.sync.client import SIAClient as SyncSIAClient

from controller.clock import VirtualClock
from controller.dc09.mapping import Numbering
from controller.dc09.sender import Dc09Sender
from tests.conftest import config_with

TCP, UDP = CommunicationsProtocol.TCP, CommunicationsProtocol.UDP
KEY_TEXT = "AAAAAAAAAAAAAAAA"  # pysiaalarm takes the key's characters as its bytes


def free_port(kind: int) -> int:
    with socket.socket(socket.AF_INET, kind) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def make_sender(
    port: int, protocol: str, key: bytes | None, skew=timedelta(0), fmt: str = "ADM-CID"
):
    cfg = config_with(
        dc09={
            "account": "1234",
            "format": fmt,
            "primary": {"host": "127.0.0.1", "port": port, "protocol": protocol, "poll": "0s"},
            "ack_timeout": "5s",
            "retry_delay": "0.05s",
        }
    )
    assert cfg.dc09 is not None
    # a virtual clock at the time of day (plus `skew`): pysiaalarm answers at once, and the
    # timeouts never fire unless the test moves it
    clock = VirtualClock(datetime.now(UTC) + skew)
    return cfg, Dc09Sender(cfg.dc09, Numbering.of(cfg, cfg.dc09), key, clock)


async def run_against_pysiaalarm(
    protocol: str, key_text: str | None, skew=timedelta(0), fmt: str = "ADM-CID"
):
    kind = socket.SOCK_STREAM if protocol == "tcp" else socket.SOCK_DGRAM
    port = free_port(kind)
    received = []
    if protocol == "tcp":

        async def on_event(event):
            received.append(event)

        client = SIAClient(
            "127.0.0.1", port, [SIAAccount("1234", key_text)], on_event, protocol=TCP
        )
        await client.async_start()
        stop = client.async_stop
    else:
        # pysiaalarm's asyncio UDP server refuses the loop's datagram transport on this
        # Python (an isinstance assert in its connection_made): its threaded one serves UDP
        sync_client = SyncSIAClient(
            "127.0.0.1", port, [SIAAccount("1234", key_text)], received.append, protocol=UDP
        )
        sync_client.start()

        async def stop():
            await asyncio.to_thread(sync_client.stop)

    try:
        key = key_text.encode() if key_text else None
        cfg, sender = make_sender(port, protocol, key, skew, fmt)
        zone, sensor = cfg.zones[1].id, cfg.sensors[0].id
        alarm = {"cid": "E130", "zone": zone, "sensor": sensor}
        result = await sender.deliver(sender.numbering.message(alarm) or {})
        poll_ok = await sender.poll(sender.paths[0])
        for _ in range(500):  # pysiaalarm calls back after it answered (5 s at most)
            if len(received) >= 2:
                break
            await asyncio.sleep(0.01)
        sender.close()
        return result, poll_ok, received, sender
    finally:
        await stop()


def the_alarm(received):
    """The alarm among what pysiaalarm called back with (its threaded UDP server may call back
    for the NULL poll first)."""
    return next(e for e in received if e.message_type.value != "NULL")


@pytest.mark.parametrize("protocol", ["tcp", "udp"])
@pytest.mark.parametrize("key_text", [None, KEY_TEXT], ids=["plain", "encrypted"])
def test_pysiaalarm_acknowledges_an_alarm_and_a_null_poll(protocol, key_text):
    result, poll_ok, received, _ = asyncio.run(run_against_pysiaalarm(protocol, key_text))
    assert result.ok and result.answer is not None
    assert result.answer.ident == "ACK" and result.answer.seq == 1
    assert poll_ok
    alarm = the_alarm(received)
    assert (alarm.account, alarm.sequence, alarm.encrypted) == (
        "1234",
        "0001",
        key_text is not None,
    )
    assert (alarm.event_qualifier, alarm.event_type, alarm.partition, alarm.ri) == (
        "1",
        "130",
        "02",
        "001",
    )


def test_pysiaalarms_nak_for_a_skewed_clock_sets_the_offset_and_the_resend_is_acknowledged():
    result, _, received, sender = asyncio.run(
        run_against_pysiaalarm("tcp", None, skew=-timedelta(minutes=5))
    )
    assert result.ok and result.attempts == 2
    assert sender.naks == 1
    assert abs(sender.offset - timedelta(minutes=5)) < timedelta(seconds=3)
    assert [e.sequence for e in received][0] == "0001"


@pytest.mark.parametrize(
    ("protocol", "key_text"),
    [("tcp", None), ("tcp", KEY_TEXT), ("udp", KEY_TEXT)],
    ids=["plain-tcp", "encrypted-tcp", "encrypted-udp"],
)
def test_pysiaalarm_reads_a_sia_dcs_burglary_alarm_with_its_area_and_zone(protocol, key_text):
    result, poll_ok, received, _ = asyncio.run(
        run_against_pysiaalarm(protocol, key_text, fmt="SIA-DCS")
    )
    assert result.ok and result.answer is not None and result.answer.ident == "ACK"
    assert poll_ok
    alarm = the_alarm(received)
    assert (alarm.message_type.value, alarm.account, alarm.encrypted) == (
        "SIA-DCS",
        "1234",
        key_text is not None,
    )
    # the same row of the Contact ID table as ADM-CID's 1130: BA, burglary alarm
    assert (alarm.code, alarm.ri, alarm.message) == ("BA", "2", "001")
    assert alarm.sia_code is not None and alarm.sia_code.type == "Burglary Alarm"
