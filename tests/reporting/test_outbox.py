"""Tests of the outbox: journaled events reach the broker in order, none lost, marked delivered
only on the broker's acknowledgement. Unit tests use a fake link; integration tests a real
Mosquitto that is stopped and restarted mid-way."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from controller.clock import VirtualClock
from controller.config import Mqtt
from controller.demo.mosquitto import LocalMosquitto
from controller.events import EventDraft
from controller.journal import REFUSED, Journal
from controller.reporting.mqtt import MqttLink
from controller.reporting.outbox import Outbox
from tests.fake_link import SendViaPublish
from tests.mqtt_broker import Broker, Recorder, wait_for
from tests.mqtt_broker import until as _until

SITE = "office-a"
TOPIC = f"officeguard/{SITE}/event"
TZ = ZoneInfo("Asia/Ho_Chi_Minh")
T0 = datetime(2026, 2, 17, 1, 30, tzinfo=UTC)


def journal_with(tmp_path: Path, n: int, name: str = "j.db") -> Journal:
    j = Journal(tmp_path / name, SITE, TZ, synchronous="NORMAL")
    add(j, n)
    return j


def add(j: Journal, n: int) -> None:
    drafts = [
        EventDraft(kind="system", ts=T0 + timedelta(seconds=i), text=f"e{i}") for i in range(n)
    ]
    if drafts:
        j.append(drafts)


class FakeLink(SendViaPublish):
    def __init__(self) -> None:
        self.connected = False
        self.sent: list[tuple[str, str, asyncio.Future[bool]]] = []
        self.connect_listeners: list[Callable[[], None]] = []
        self.disconnect_listeners: list[Callable[[], None]] = []

    def publish(
        self, topic: str, payload: str | bytes, qos: int = 1, retain: bool = False
    ) -> asyncio.Future[bool]:
        assert qos == 1 and retain is False
        fut: asyncio.Future[bool] = asyncio.get_running_loop().create_future()
        if not self.connected:
            fut.set_result(False)
        self.sent.append((topic, str(payload), fut))
        return fut

    def up(self) -> None:
        self.connected = True
        for cb in list(self.connect_listeners):
            cb()

    def down(self) -> None:
        self.connected = False
        for _, _, f in self.sent:
            if not f.done():
                f.set_result(False)
        for cb in list(self.disconnect_listeners):
            cb()

    def seqs(self) -> list[int]:
        return [json.loads(p)["seq"] for _, p, _ in self.sent]


async def settle() -> None:
    for _ in range(5):
        await asyncio.sleep(0)


def test_window_order_and_marked_only_on_puback(tmp_path: Path) -> None:
    j = journal_with(tmp_path, 10)

    async def main() -> None:
        link = FakeLink()
        ob = Outbox(j, link, TOPIC, window=4, batch=3)
        ob.wake()
        await settle()
        assert link.sent == []  # not connected: nothing published
        link.up()
        await settle()
        assert link.seqs() == [1, 2, 3, 4]  # window of 4 in flight
        assert ob.inflight == 4 and ob.depth() == 10
        link.sent[1][2].set_result(True)
        link.sent[0][2].set_result(True)
        await settle()
        assert ob.depth() == 8  # only the acknowledged ones are marked
        assert link.seqs() == [1, 2, 3, 4, 5, 6]
        assert all(t == TOPIC for t, _, _ in link.sent)
        ev = json.loads(link.sent[0][1])
        assert ev["id"] and ev["site"] == SITE and ev["kind"] == "system"
        for _, _, f in link.sent[2:]:
            f.set_result(True)
        await settle()
        while any(not f.done() for _, _, f in link.sent):
            for _, _, f in link.sent:
                if not f.done():
                    f.set_result(True)
            await settle()
        assert link.seqs() == list(range(1, 11))
        assert ob.depth() == 0 and ob.delivered == 10

    asyncio.run(main())


def test_disconnect_resumes_from_oldest_unacked_with_same_id(tmp_path: Path) -> None:
    j = journal_with(tmp_path, 6)

    async def main() -> None:
        link = FakeLink()
        ob = Outbox(j, link, TOPIC, window=10)
        link.up()
        await settle()
        first = {json.loads(p)["seq"]: json.loads(p)["id"] for _, p, _ in link.sent}
        link.sent[0][2].set_result(True)
        link.sent[1][2].set_result(True)
        await settle()
        link.down()
        await settle()
        assert ob.depth() == 4 and ob.inflight == 0
        add(j, 2)  # journaled during the outage
        ob.wake()
        await settle()
        assert len(link.sent) == 6  # nothing sent while down
        link.up()
        await settle()
        again = [json.loads(p) for _, p, _ in link.sent[6:]]
        assert [e["seq"] for e in again] == [3, 4, 5, 6, 7, 8]
        assert all(first[e["seq"]] == e["id"] for e in again if e["seq"] in first)
        for _, _, f in link.sent[6:]:
            f.set_result(True)
        await settle()
        assert ob.depth() == 0

    asyncio.run(main())


def test_refused_message_restarts_in_order_after_a_pause(tmp_path: Path) -> None:
    j = journal_with(tmp_path, 3)

    async def main() -> None:
        link = FakeLink()
        ob = Outbox(j, link, TOPIC, window=10, retry_delay=0.01)
        link.up()
        await settle()
        link.sent[0][2].set_result(True)
        link.sent[1][2].set_result(False)  # broker refused seq 2 (e.g. quota)
        link.sent[2][2].set_result(True)  # a late ack from the abandoned round is ignored
        await settle()
        assert ob.failures == 1 and ob.depth() == 2
        assert len(link.sent) == 3  # pausing, not hammering the broker
        await asyncio.sleep(0.03)
        await settle()
        assert link.seqs()[3:] == [2, 3]
        ob.close()
        assert ob.wake() is None and link.connect_listeners == []

    asyncio.run(main())


def test_a_pause_after_a_lost_message_follows_the_daemons_clock(tmp_path: Path) -> None:
    j = journal_with(tmp_path, 2)

    async def main() -> None:
        clock = VirtualClock(T0)
        link = FakeLink()
        ob = Outbox(j, link, TOPIC, window=10, retry_delay=5.0, clock=clock)
        link.up()
        await settle()
        link.sent[0][2].set_result(False)  # lost: the round starts again, after a pause
        link.sent[1][2].set_result(True)
        await settle()
        await asyncio.sleep(0.05)  # real time passing changes nothing
        await settle()
        assert len(link.sent) == 2
        clock.advance(timedelta(seconds=4))
        await settle()
        assert len(link.sent) == 2
        clock.advance(timedelta(seconds=1))
        await settle()
        assert link.seqs()[2:] == [1, 2]
        ob.close()

    asyncio.run(main())


def test_a_pause_keeps_its_length_when_the_clock_steps_back(tmp_path: Path) -> None:
    j = journal_with(tmp_path, 1)

    async def main() -> None:
        clock = VirtualClock(T0)
        link = FakeLink()
        ob = Outbox(j, link, TOPIC, window=10, retry_delay=5.0, clock=clock)
        link.up()
        await settle()
        link.sent[0][2].set_result(False)  # lost: a pause of 5 s begins
        await settle()
        step = timedelta(hours=-1)  # NTP sets the clock an hour back
        clock.jump(clock.now() + step)
        ob.clock_stepped(step)
        clock.advance(timedelta(seconds=5))
        await settle()
        assert link.seqs()[1:] == [1]  # resent after 5 s, not after an hour
        ob.close()

    asyncio.run(main())


def test_bad_arguments_refused(tmp_path: Path) -> None:
    j = journal_with(tmp_path, 0)
    with pytest.raises(ValueError, match="window"):
        Outbox(j, FakeLink(), TOPIC, window=0)


# ---------------------------------------------------------------------- with a real broker



def make_link(url: str) -> MqttLink:
    return MqttLink(Mqtt(url=url, keepalive="5s"), SITE, reconnect_min=0.05, reconnect_max=0.2)


def received(rec: Recorder) -> list[dict[str, object]]:
    return [json.loads(p) for t, p, _ in rec.snapshot() if t == TOPIC]


def check_delivery(events: list[dict[str, object]], n: int, ids: dict[int, str]) -> int:
    """Every seq 1..n arrived, first arrivals in seq order, copies only with the same id.
    Returns the number of duplicates."""
    first: list[int] = []
    seen: set[int] = set()
    for e in events:
        seq = int(str(e["seq"]))
        assert e["id"] == ids[seq], f"seq {seq} re-sent with another id"
        if seq not in seen:
            seen.add(seq)
            first.append(seq)
    assert first == list(range(1, n + 1))
    return len(events) - n


def test_outbox_delivers_journal_in_order(broker: Broker, tmp_path: Path) -> None:
    n = 2000
    j = journal_with(tmp_path, n)
    ids = {e.seq: e.id for e in j.pending(limit=n)}
    rec = Recorder(broker.port, TOPIC)

    async def main() -> float:
        link = make_link(broker.url)
        ob = Outbox(j, link, TOPIC)
        t0 = time.perf_counter()
        link.start()
        assert await until(lambda: ob.depth() == 0)
        dt = time.perf_counter() - t0
        await link.close()
        return dt

    dt = asyncio.run(main())
    assert wait_for(lambda: len(received(rec)) >= n, 10)
    assert check_delivery(received(rec), n, ids) == 0
    rec.close()
    print(f"outbox drained {n} events in {dt:.3f} s ({n / dt:.0f}/s)")


def test_broker_restart_mid_drain_loses_nothing(broker: Broker, tmp_path: Path) -> None:
    n1, n2 = 3000, 500
    j = journal_with(tmp_path, n1)
    rec = Recorder(broker.port, TOPIC)

    async def main() -> int:
        link = make_link(broker.url)
        ob = Outbox(j, link, TOPIC, window=200)
        link.start()
        assert await until(lambda: ob.delivered > 300)
        await asyncio.to_thread(broker.stop)  # the office's broker goes away mid-drain
        assert await until(lambda: not link.connected)
        depth_down = ob.depth()
        assert 0 < depth_down < n1
        add(j, n2)  # alarms keep being journaled during the outage
        ob.wake()
        await asyncio.sleep(0.05)
        assert ob.depth() == depth_down + n2
        await asyncio.to_thread(broker.start)
        assert await until(lambda: ob.depth() == 0, 15)
        assert link.connects == 2
        await link.close()
        return depth_down

    asyncio.run(main())
    ids = all_ids(j)
    n = n1 + n2
    wait_for(lambda: len({e["seq"] for e in received(rec)}) >= n, 10)
    got = {int(str(e["seq"])) for e in received(rec)}
    missing = sorted(set(range(1, n + 1)) - got)
    assert not missing, (missing[:5], missing[-5:], len(missing))
    dups = check_delivery(received(rec), n, ids)
    rec.close()
    print(f"broker restart: {n} events delivered, {dups} duplicate(s) with the same id")


def test_new_outbox_on_same_journal_resumes_after_crash(broker: Broker, tmp_path: Path) -> None:
    """A daemon killed before the PUBACKs were recorded re-sends those events, same ids."""
    j = journal_with(tmp_path, 50)
    j.mark_sent(list(range(1, 21)))  # the first 20 were confirmed before the crash
    rec = Recorder(broker.port, TOPIC)

    async def main() -> None:
        link = make_link(broker.url)
        ob = Outbox(j, link, TOPIC)
        link.start()
        assert await until(lambda: ob.depth() == 0)
        await link.close()

    asyncio.run(main())
    assert wait_for(lambda: len(received(rec)) >= 30, 5)
    assert [e["seq"] for e in received(rec)] == list(range(21, 51))
    rec.close()


def all_ids(j: Journal) -> dict[int, str]:
    return {int(r["seq"]): str(r["id"]) for r in j.db.execute("SELECT seq, id FROM events")}


async def until(cond: Callable[[], bool], timeout: float = 10.0) -> bool:
    return await _until(cond, timeout)


def test_group_commit_journal_publishes_once_on_disk(tmp_path: Path) -> None:
    j = Journal(tmp_path / "g.db", SITE, TZ, synchronous="NORMAL", group_commit=True)

    async def main() -> None:
        link = FakeLink()
        ob = Outbox(j, link, TOPIC, window=10)
        link.up()
        ob.wake()  # a tick already due before the events of this turn are written
        add(j, 3)
        assert ob.depth() == 3
        await settle()
        assert link.seqs() == [1, 2, 3]  # published after the turn's commit, woken by it
        on_disk = {int(r[0]) for r in j.db.execute("SELECT seq FROM events")}
        assert on_disk == {1, 2, 3}
        for _, _, f in link.sent:
            f.set_result(True)
        await settle()
        assert ob.depth() == 0
        ob.close()
        assert j.flush_listeners == []

    asyncio.run(main())
    j.close()


def test_an_event_the_broker_refuses_is_a_trouble_and_the_events_behind_it_go_on(
    tmp_path: Path,
) -> None:
    """An event too large for the broker's max_packet_size can never be delivered: it is kept in
    the logbook, marked refused, reported as an E350 trouble with its reason, and the events
    behind it are delivered (before, it was re-sent every second in front of all of them)."""
    j = Journal(tmp_path / "j.db", SITE, TZ, synchronous="NORMAL")
    add(j, 3)
    j.append([EventDraft(kind="system", ts=T0, text="x" * 5000)])  # seq 4: over 4 KiB
    add(j, 3)
    broker = LocalMosquitto(tmp_path / "b", extra_conf="max_packet_size 4096\n")
    broker.start()
    rec = Recorder(broker.port, TOPIC)
    troubles: list[dict[str, object] | None] = []

    async def main() -> None:
        link = make_link(broker.url)
        ob = Outbox(j, link, TOPIC, on_refused=troubles.append, now=lambda: T0)
        link.start()
        assert await until(lambda: ob.depth() == 0)
        assert ob.refused == 1 and ob.failures == 0
        await link.close()

    try:
        asyncio.run(main())
        assert wait_for(lambda: len(received(rec)) >= 8)
    finally:
        rec.close()
        broker.stop()
    got = received(rec)
    # the events behind it, then the trouble (journaled as seq 8) and its restore (seq 9)
    assert [e["seq"] for e in got] == [1, 2, 3, 5, 6, 7, 8, 9]
    trouble, restore = got[-2], got[-1]
    assert trouble["kind"] == "trouble" and trouble["cid"] == "E350"
    detail = trouble["detail"]
    assert isinstance(detail, dict)
    assert detail["refused_seq"] == 4 and "Maximum Packet Size of 4096" in str(detail["reason"])
    assert restore["kind"] == "trouble_restore" and restore["cid"] == "R350"
    first = troubles[0]
    assert first is not None and first["cid"] == "E350" and "seq 4" in str(first["what"])
    assert troubles[-1] is None  # cleared once a newer event was acknowledged
    sent = dict(j.db.execute("SELECT seq, state FROM event_delivery WHERE channel='mqtt'"))
    assert sent[4] == REFUSED and all(sent[s] == 1 for s in sent if s != 4)
    assert j.outbox_depth() == 0


def test_a_topic_the_broker_never_allows_raises_one_trouble_not_one_per_event(
    tmp_path: Path,
) -> None:
    """An ACL that refuses the event topic: each event (and the trouble event itself) is
    refused with "Not authorized", marked so, and the trouble stays up without feeding itself."""
    j = journal_with(tmp_path, 5)
    acl = tmp_path / "acl"
    acl.write_text(f"topic readwrite officeguard/{SITE}/status\n")
    broker = LocalMosquitto(tmp_path / "b", extra_conf=f"acl_file {acl}\n")
    broker.start()
    troubles: list[dict[str, object] | None] = []

    async def main() -> None:
        link = make_link(broker.url)
        ob = Outbox(j, link, TOPIC, on_refused=troubles.append, now=lambda: T0)
        link.start()
        assert await until(lambda: ob.depth() == 0)
        await asyncio.sleep(0.1)  # nothing more comes of it
        assert ob.refused == 6 and ob.depth() == 0  # the 5 events and the trouble event
        assert link.connected and link.connects == 1
        await link.close()

    try:
        asyncio.run(main())
    finally:
        broker.stop()
    assert [t is None for t in troubles] == [False] * 6  # raised, then updated; never cleared
    last = troubles[-1]
    assert last is not None and "Not authorized" in str(last["what"]) and "(6 refused)" in str(last["what"])
    kinds = [
        k
        for k, in j.db.execute(
            "SELECT kind FROM events JOIN event_delivery USING (seq)"
            " WHERE channel='mqtt' AND state=? ORDER BY seq",
            (REFUSED,),
        )
    ]
    assert kinds == ["system"] * 5 + ["trouble"]
