"""The dc09 channel on a site: events go to a strict receiver in order, each acknowledged
before the cursor moves; NAK, DUH, silence, failover and restore; none lost while the centre
is away. Sockets are real; timeouts, back-off and polls follow the site's virtual clock, which
the tests move instead of sleeping."""

from __future__ import annotations

import asyncio
import contextlib
import os
from datetime import timedelta
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from controller.clock import VirtualClock
from controller.dc09.component import CHANNEL, Dc09Reporting
from controller.engine import Arm, SensorChange
from controller.events import EventDraft
from tests.conftest import config_with
from tests.dc09.strict_receiver import StrictReceiver
from tests.fake_site import T0, FakeSite

HEX_KEY = "00112233445566778899AABBCCDDEEFF"


def dc09_config(primary: StrictReceiver, backup: StrictReceiver | None = None, **more):
    section = {
        "account": "1234",
        "primary": {"host": "127.0.0.1", "port": primary.tcp_port, "poll": "0s"},
        "ack_timeout": "10s",
        "attempts": 2,
        "retry_delay": "2s",
        "max_retry_delay": "2m",
        **more,
    }
    if backup is not None:
        section["backup"] = {
            "host": "127.0.0.1",
            "port": backup.udp_port,
            "protocol": "udp",
            "poll": "0s",
        }
    return config_with(dc09=section)


async def until(
    cond, what: str, comp: Dc09Reporting | None = None, *silent: StrictReceiver, limit=10.0
) -> None:
    """Run the loop until `cond` holds (`limit` real seconds, a guard, not a figure under
    test). With `comp`, the site's virtual clock moves only when the sender can be waiting
    for nothing but it: a back-off, or (by `ack_timeout`) the answer to a frame one of the
    `silent` receivers swallowed; an answer on its way is never overtaken by a timeout."""
    handled = sum(rx.swallowed for rx in silent)
    for _ in range(int(limit / 0.005)):
        if cond():
            return
        await asyncio.sleep(0.005)
        if comp is None or comp.sender is None:
            continue
        waits, clock = comp.sender.waits, comp.site.clock
        swallowed = sum(rx.swallowed for rx in silent)
        if swallowed > handled and waits.timing:
            handled += 1
            clock.advance(comp.sender.cfg.ack_timeout)
        elif waits.sleeping and not waits.timing:
            due = clock.next_due()
            if due is not None:
                clock.advance_to(due)
    raise AssertionError(f"never: {what}")


@contextlib.asynccontextmanager
async def on_channel(tmp_path: Path, cfg, *receivers: StrictReceiver):
    """A fake site with the dc09 component started on `cfg`; all of it closed after."""
    site = FakeSite(cfg, tmp_path)
    comp = Dc09Reporting(site)
    comp.start()
    try:
        yield site, comp
    finally:
        comp.close()
        for rx in receivers:
            await rx.stop()
        site.close()


def report(site: FakeSite, comp: Dc09Reporting, *cids: str) -> None:
    """Journal one event per Contact ID code and tell the component, as the daemon does."""
    for cid in cids:
        kind = "alarm" if cid[0] == "E" else "alarm_restore"
        site.record([EventDraft(kind=kind, ts=site.clock.now(), cid=cid, text=cid)])
    comp.events([])


def test_a_sites_events_reach_the_strict_receiver_in_order_and_move_the_cursor(tmp_path):
    async def main():
        rx = await StrictReceiver().start()
        async with on_channel(tmp_path, dc09_config(rx), rx) as (site, comp):
            cfg = site.config
            zone = cfg.zones[0].id
            sensor = next(s.id for s in cfg.sensors if s.zone == zone)
            site.submit(Arm((zone,), "away"))
            site.advance(timedelta(minutes=5))
            site.submit(SensorChange(sensor, True))
            site.logbook.flush()
            comp.events([])
            await until(lambda: comp.outbox.depth() == 0, "every event acknowledged")
            sent = [e for e in site.recorded if e.cid]
            assert [m.data[:4] for m in rx.messages()] == [
                ("1" if e.cid[0] == "E" else "3") + e.cid[1:] for e in sent
            ]
            assert [int(m.seq) for m in rx.messages()] == list(range(1, len(sent) + 1))
            assert rx.refused == []
            assert comp.status()["dc09"]["connected"] is True

    asyncio.run(main())


def test_a_nak_with_the_receivers_time_resyncs_the_clock_and_the_event_goes_through(tmp_path):
    async def main():
        rx = await StrictReceiver().start()
        async with on_channel(tmp_path, dc09_config(rx), rx) as (site, comp):
            rx.time = lambda: site.clock.now() + timedelta(minutes=7)
            report(site, comp, "E130")
            await until(lambda: comp.outbox.depth() == 0, "acknowledged after the NAK")
            assert rx.refused == ["timestamp"]
            assert comp.sender.offset == timedelta(minutes=7)
            assert abs(rx.messages()[0].at - rx.time()) < timedelta(seconds=2)

    asyncio.run(main())


def test_a_duh_keeps_the_event_in_the_logbook_raises_a_trouble_and_the_next_goes_on(tmp_path):
    async def main():
        rx = await StrictReceiver(mode="duh").start()
        async with on_channel(tmp_path, dc09_config(rx), rx) as (site, comp):
            report(site, comp, "E130")
            await until(lambda: comp.sender.refused >= 1, "the DUH")
            await until(lambda: comp.outbox.refused_trouble is not None, "a trouble")
            trouble = [e for e in site.recorded if e.kind == "trouble" and e.cid == "E350"]
            assert trouble and "trung tâm giám sát không nhận sự kiện seq 1" in trouble[0].text
            assert "receiving centre refused" in comp.outbox.refused_trouble["what"]
            assert site.logbook.outbox_depth(channel="mqtt") >= 1  # kept for the broker

    asyncio.run(main())


def test_a_silent_primary_fails_over_to_the_backup_and_its_trouble_restores(tmp_path):
    async def main():
        primary = await StrictReceiver(mode="silent").start()
        backup = await StrictReceiver().start()
        cfg = dc09_config(primary, backup)
        async with on_channel(tmp_path, cfg, primary, backup) as (site, comp):
            report(site, comp, "E130")
            # the alarm, then the primary's own trouble, both through the backup
            await until(lambda: len(backup.messages()) == 2, "the backup's ACKs", comp, primary)
            assert "dc09.primary" in site.trouble_board
            assert comp.sender.failovers == 1
            assert [m.data for m in backup.messages()] == ["1130 00 000", "1350 00 000"]
            # the primary answers again: its NULL poll restores it, and it is used first again
            primary.mode = "ack"
            assert await comp.sender.poll(comp.sender.paths[0])
            assert "dc09.primary" not in site.trouble_board
            await until(lambda: any(e.kind == "trouble_restore" for e in site.recorded), "R350")
            comp.events([])
            await until(lambda: comp.outbox.depth() == 0, "everything acknowledged")
            assert [m.data[:4] for m in primary.messages()] == ["3350"]

    asyncio.run(main())


def test_events_queued_while_the_centre_is_away_arrive_in_order_when_it_returns(tmp_path):
    async def main():
        rx = await StrictReceiver(mode="silent").start()
        async with on_channel(tmp_path, dc09_config(rx), rx) as (site, comp):
            report(site, comp, "E130")
            await until(lambda: not comp.sender.connected, "the link down", comp, rx)
            assert "dc09.primary" in site.trouble_board
            report(site, comp, "E131", "R130", "E401")
            rx.mode = "ack"
            await until(lambda: comp.outbox.depth() == 0, "the queue delivered", comp, rx)
            codes = [m.data[:4] for m in rx.messages()]
            # the trouble and its restore are events too, sent in their place
            assert codes == ["1130", "1350", "1131", "3130", "1401", "3350"]

    asyncio.run(main())


def test_a_key_file_open_to_others_stops_the_channel_with_a_trouble_and_keeps_events(tmp_path):
    key = tmp_path / "dc09.key"
    key.write_text(HEX_KEY + "\n")
    os.chmod(key, 0o644)

    async def main():
        rx = await StrictReceiver().start()
        async with on_channel(tmp_path, dc09_config(rx, key_file=str(key)), rx) as (site, comp):
            assert comp.sender is None and "dc09" in site.trouble_board
            assert "0644" in str(list(site.trouble_board))
            assert HEX_KEY[:8] not in str(list(site.trouble_board))
            report(site, comp, "E130")
            assert site.logbook.outbox_depth(channel=CHANNEL) == 1

    asyncio.run(main())


@pytest.mark.parametrize("protocol", ["tcp", "udp"])
def test_an_encrypted_channel_is_read_by_the_strict_receiver(tmp_path, protocol):
    key = tmp_path / "dc09.key"
    key.write_text(HEX_KEY + "\n")
    os.chmod(key, 0o640)

    async def main():
        rx = await StrictReceiver(key=bytes.fromhex(HEX_KEY)).start()
        port = rx.tcp_port if protocol == "tcp" else rx.udp_port
        cfg = dc09_config(rx, key_file=str(key))
        path = cfg.dc09.primary.model_copy(update={"protocol": protocol, "port": port})
        cfg = cfg.model_copy(update={"dc09": cfg.dc09.model_copy(update={"primary": path})})
        async with on_channel(tmp_path, cfg, rx) as (site, comp):
            report(site, comp, "E130")
            await until(lambda: comp.outbox.depth() == 0, "acknowledged")
            assert [m.data for m in rx.messages()] == ["1130 00 000"] and rx.refused == []

    asyncio.run(main())


@settings(
    max_examples=12, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    cids=st.lists(
        st.sampled_from(["E130", "R130", "E137", "E401", "R401"]), min_size=1, max_size=5
    ),
    script=st.lists(st.sampled_from(["ack", "silent"]), max_size=8),
)
def test_whatever_the_centre_leaves_unanswered_it_gets_every_event_once_in_order(
    tmp_path_factory, cids, script
):
    async def main():
        rx = await StrictReceiver(script=list(script)).start()
        cfg = dc09_config(rx)
        async with on_channel(tmp_path_factory.mktemp("p"), cfg, rx) as (site, comp):
            report(site, comp, *cids)
            await until(lambda: comp.outbox.depth() == 0, "everything acknowledged", comp, rx)
            journaled = [e.cid for e in site.recorded if e.cid]
            assert [m.data[:4] for m in rx.messages()] == [
                ("1" if c[0] == "E" else "3") + c[1:] for c in journaled
            ]

    asyncio.run(main())


def test_the_null_polls_of_a_path_find_it_silent_and_then_back(tmp_path):
    async def main():
        rx = await StrictReceiver(mode="silent").start()
        cfg = dc09_config(rx)
        path = cfg.dc09.primary.model_copy(update={"poll": timedelta(seconds=60)})
        cfg = cfg.model_copy(update={"dc09": cfg.dc09.model_copy(update={"primary": path})})
        async with on_channel(tmp_path, cfg, rx) as (site, comp):
            site.clock.advance(timedelta(seconds=59))
            await asyncio.sleep(0.05)
            assert rx.received == [] and rx.swallowed == 0  # no poll before its minute
            site.clock.advance(timedelta(seconds=1))
            await until(lambda: "dc09.primary" in site.trouble_board, "found down", comp, rx)
            assert not comp.sender.connected
            rx.mode = "ack"
            next_poll = comp.sender.paths[0].poll_at
            assert next_poll is not None and not rx.messages()
            site.clock.advance_to(next_poll)  # the next poll, a minute after the last one
            await until(lambda: "dc09.primary" not in site.trouble_board, "back", comp, rx)
            await until(lambda: comp.outbox.depth() == 0, "its trouble and restore delivered")
            assert [m.data[:4] for m in rx.messages()] == ["1350", "3350"]
            assert any(r.ident == "NULL" for r in rx.received)

    asyncio.run(main())


def test_after_a_restart_the_sequence_goes_on_past_every_number_reserved(tmp_path):
    async def main():
        rx = await StrictReceiver().start()
        async with on_channel(tmp_path, dc09_config(rx)) as (site, comp):
            report(site, comp, "E130", "R130")
            await until(lambda: comp.outbox.depth() == 0, "both acknowledged")
        # a new run on the same logbook (as after a SIGKILL: the reservation was saved first)
        async with on_channel(tmp_path, dc09_config(rx), rx) as (site, comp):
            report(site, comp, "E131")
            await until(lambda: comp.outbox.depth() == 0, "acknowledged")
        assert [m.seq for m in rx.messages()] == ["0001", "0002", "0101"]

    asyncio.run(main())


def test_the_reserved_block_wraps_past_9999_to_0001():
    from controller.dc09.mapping import Numbering
    from controller.dc09.sender import Dc09Sender

    cfg = config_with(dc09={"account": "1234", "primary": {"host": "127.0.0.1", "port": 1}})
    reserved = []
    sender = Dc09Sender(
        cfg.dc09,
        Numbering.of(cfg, cfg.dc09),
        None,
        VirtualClock(T0),
        seq=9950,
        on_reserve=reserved.append,
    )
    assert [sender._next_seq() for _ in range(3)] == [9951, 9952, 9953]
    assert reserved == [51]


def test_a_clock_step_moves_the_next_null_poll_with_it(tmp_path):
    async def main():
        rx = await StrictReceiver().start()
        cfg = dc09_config(rx)
        path = cfg.dc09.primary.model_copy(update={"poll": timedelta(seconds=60)})
        cfg = cfg.model_copy(update={"dc09": cfg.dc09.model_copy(update={"primary": path})})
        async with on_channel(tmp_path, cfg, rx) as (site, comp):
            site.clock.advance(timedelta(seconds=30))
            step = timedelta(hours=1)
            site.clock.jump(site.clock.now() + step)  # NTP steps the time of day forward
            comp.clock_stepped(step)
            site.clock.run_due()
            await asyncio.sleep(0.05)
            assert rx.received == []  # not due at once: 30 s of the minute are still to come
            site.clock.advance(timedelta(seconds=30))
            await until(lambda: len(rx.received) == 1, "the poll, a minute after the last")
            assert rx.received[0].ident == "NULL"

    asyncio.run(main())
