"""The outbox's long-outage policy, on a real SQLite journal with small limits: a trouble at 80 %,
the oldest low-priority events expired past the limit (kept in the logbook, never sent, one
notice with their count and seq range), alarms never expired, retention never dropping an
undelivered event, and a real broker receiving exactly what was not given up."""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest

import controller.journal as journal_mod
from controller.events import EventDraft
from controller.journal import EXPIRED, LOW_PRIORITY_KINDS, Journal
from controller.reporting.outbox import Outbox
from tests.mqtt_broker import Broker, Recorder, until, wait_for
from tests.reporting.test_outbox import FakeLink, make_link, settle

SITE = "office-a"
TOPIC = f"officeguard/{SITE}/event"
TZ = ZoneInfo("Asia/Ho_Chi_Minh")
T0 = datetime(2026, 2, 17, 1, 30, tzinfo=UTC)


def drafts(kind: str, n: int, start: int = 0) -> list[EventDraft]:
    extra: dict[str, Any] = {"zone": "leadership", "sensor": "door.director", "cid": "E134"}
    return [
        EventDraft(
            kind=kind,
            ts=T0 + timedelta(seconds=start + i),
            text=f"{kind} {start + i}",
            **(extra if kind == "alarm" else {}),
        )
        for i in range(n)
    ]


def db_count(j: Journal, where: str = "1=1", *args: object) -> int:
    """Events matching `where`, with `state` their delivery on the MQTT channel."""
    return int(
        j.db.execute(
            "SELECT COUNT(*) FROM events JOIN event_delivery USING (seq)"  # noqa: S608
            f" WHERE channel='mqtt' AND {where}",
            args,
        ).fetchone()[0]
    )


def rows(j: Journal) -> list[tuple[int, str, int, str | None]]:
    return [
        (int(r[0]), str(r[1]), int(r[2]), r[3])
        for r in j.db.execute(
            "SELECT seq, kind, state, cid FROM events JOIN event_delivery USING (seq)"
            " WHERE channel='mqtt' ORDER BY seq"
        )
    ]


class Policy:
    """An outbox with a small limit on a fake link that starts down (the broker is away)."""

    def __init__(self, j: Journal, limit: int) -> None:
        self.journal = j
        self.link = FakeLink()
        self.states: list[dict[str, Any] | None] = []
        self.recorded: list[list[EventDraft]] = []
        self.outbox = Outbox(
            j,
            self.link,
            TOPIC,
            window=50,
            limit=limit,
            on_capacity=self.states.append,
            record=self.record,
            now=lambda: T0 + timedelta(days=1),
        )

    def record(self, ds: list[EventDraft]) -> None:
        self.recorded.append(ds)
        self.journal.append(ds)

    async def add(self, kind: str, n: int) -> None:
        for d in drafts(kind, n, start=self.journal.last_seq()):
            self.journal.append([d])
            self.outbox.wake()  # as the daemon does after every journaled event
            await settle()

    async def deliver_all(self) -> None:
        self.link.up()
        for _ in range(100):
            await settle()
            waiting = [f for _, _, f in self.link.sent if not f.done()]
            if not waiting and self.outbox.depth() == 0:
                return
            for f in waiting:
                f.set_result(True)
        raise AssertionError("the outbox did not drain")


# ---------------------------------------------------------------------- journal level


def test_expire_oldest_takes_only_low_priority_oldest_first(tmp_path: Path) -> None:
    j = Journal(tmp_path / "j.db", SITE, TZ, synchronous="NORMAL")
    j.append(drafts("system", 3) + drafts("alarm", 2) + drafts("arm", 2) + drafts("tamper", 1))
    j.append([EventDraft(kind="system", ts=T0, text="notice", cid="E350")])  # a policy notice
    j.mark_sent([1])  # delivered: not in the outbox any more
    assert j.outbox_depth() == 8
    n, first, last, kinds = j.expire_oldest(4)
    assert (n, first, last, kinds) == (4, 2, 7, {"system": 2, "arm": 2})
    assert [(s, k) for s, k, sent, _ in rows(j) if sent == EXPIRED] == [
        (2, "system"),
        (3, "system"),
        (6, "arm"),
        (7, "arm"),
    ]
    # nothing low-priority left: alarms, the tamper and the notice are never chosen
    assert j.expire_oldest(10) == (0, None, None, {})
    assert j.outbox_depth() == 4 == db_count(j, "state=0")
    assert [e.seq for e in j.pending(limit=100)] == [4, 5, 8, 9]
    assert len(list(j.events())) == 9  # expired events stay in the logbook
    assert j.expired_count() == 4
    j.close()


def test_outbox_depth_is_a_running_count_that_matches_the_table(tmp_path: Path) -> None:
    path = tmp_path / "j.db"
    j = Journal(path, SITE, TZ, synchronous="NORMAL")
    j.append(drafts("system", 30))
    j.mark_sent(list(range(1, 11)))
    j.mark_sent([5, 11, 11])  # already delivered and a repeat: counted once
    j.expire_oldest(3)
    assert j.outbox_depth() == db_count(j, "state=0") == 16
    j.close()
    j = Journal(path, SITE, TZ, synchronous="NORMAL")  # restart: counted from the table
    assert j.outbox_depth() == 16
    j.append(drafts("alarm", 2))
    assert j.outbox_depth() == 18 == db_count(j, "state=0")
    j.close()


def test_prune_drops_expired_like_delivered_but_never_undelivered(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(journal_mod, "RETENTION_MIN_EVENTS", 2)
    j = Journal(tmp_path / "j.db", SITE, TZ, synchronous="NORMAL")
    j.append(drafts("system", 6) + drafts("alarm", 4, start=6) + drafts("system", 2, start=10))
    j.mark_sent([1, 2])
    j.expire_oldest(2)  # seq 3, 4
    removed = j.prune(T0 + timedelta(days=400))
    left = [e.seq for e in j.events()]
    assert removed == 4 and left == list(range(5, 13))  # 1-2 delivered, 3-4 expired: gone
    assert j.outbox_depth() == 8 and j.integrity_ok()
    j.close()


# ---------------------------------------------------------------------- the policy in the outbox


def test_trouble_at_80_percent_expiry_past_the_limit_and_restore_after_delivery(
    tmp_path: Path,
) -> None:
    j = Journal(tmp_path / "j.db", SITE, TZ, synchronous="NORMAL")

    async def main() -> None:
        p = Policy(j, limit=100)
        await p.add("system", 79)
        assert p.states == [] and p.outbox.trouble is None
        await p.add("system", 1)  # 80 undelivered: 80 % of the limit
        what = "outbox nearly full (80/100 events waiting for the broker)"
        assert p.states == [{"source": "outbox", "cid": "E350", "what": what}]
        trouble = list(j.events(kind="trouble"))
        assert len(trouble) == 1 and trouble[0].cid == "E350"
        await p.add("alarm", 10)
        await p.add("arm", 10)  # 101 waiting (79+1+1 trouble+10+10): over the limit
        assert p.outbox.expired > 0
        assert j.outbox_depth() <= 100
        notices = [e for e in j.events(kind="system") if e.cid == "E350"]
        assert len(notices) == 1
        d = notices[0].detail
        assert d["outbox"] == "expired" and d["expired"] == p.outbox.expired
        assert d["first_seq"] == 1 and d["kinds"] == {"system": d["expired"]}
        assert "not delivered" in notices[0].text and str(d["last_seq"]) in notices[0].text
        assert p.states[-1] is not None and p.states[-1]["what"].startswith("outbox full")
        assert len(p.states) == 2  # raised, then changed stage once: not once per event
        # nothing silently dropped: every event is still in the logbook
        assert len(list(j.events())) == j.last_seq()
        expired = {s for s, _, sent, _ in rows(j) if sent == EXPIRED}
        assert len(expired) == p.outbox.expired
        assert all(k in LOW_PRIORITY_KINDS for s, k, _, _ in rows(j) if s in expired)
        assert not any(k == "alarm" for s, k, _, _ in rows(j) if s in expired)

        await p.deliver_all()  # the broker comes back
        sent = set(p.link.seqs())
        assert not sent & expired  # expired events are never published
        assert p.states[-1] is None  # trouble restored
        restores = list(j.events(kind="trouble_restore"))
        assert len(restores) == 1 and restores[0].cid == "R350"
        # everything else went out; only the restore, journaled at the very end, may still wait
        assert set(range(1, j.last_seq() + 1)) - (sent | expired) <= {restores[0].seq}
        await p.deliver_all()  # the restore event itself goes out too
        assert set(p.link.seqs()) | expired == set(range(1, j.last_seq() + 1))

    asyncio.run(main())
    j.close()


def test_alarms_are_never_expired_even_over_the_limit(tmp_path: Path) -> None:
    j = Journal(tmp_path / "j.db", SITE, TZ, synchronous="NORMAL")

    async def main() -> None:
        p = Policy(j, limit=20)
        await p.add("alarm", 30)
        assert p.outbox.expired == 0 and j.expired_count() == 0
        assert j.outbox_depth() == 31  # 30 alarms and the trouble event, all kept
        assert p.states[-1] is not None and "never given up" in p.states[-1]["what"]
        await p.deliver_all()
        assert sorted(set(p.link.seqs())) == list(range(1, j.last_seq() + 1))

    asyncio.run(main())
    j.close()


def test_a_restart_with_a_full_outbox_raises_the_trouble_at_once(tmp_path: Path) -> None:
    path = tmp_path / "j.db"
    j = Journal(path, SITE, TZ, synchronous="NORMAL")
    j.append(drafts("system", 90))
    j.close()
    j = Journal(path, SITE, TZ, synchronous="NORMAL")

    async def main() -> None:
        p = Policy(j, limit=100)  # no new event, broker still away
        await settle()
        assert p.states and p.states[0] is not None and "nearly full" in p.states[0]["what"]

    asyncio.run(main())
    j.close()


def test_bad_limit_refused(tmp_path: Path) -> None:
    j = Journal(tmp_path / "j.db", SITE, TZ, synchronous="NORMAL")
    with pytest.raises(ValueError, match="limit"):
        Outbox(j, FakeLink(), TOPIC, limit=5)
    j.close()


def test_long_outage_with_a_real_broker_delivers_exactly_what_was_kept(tmp_path: Path) -> None:
    broker = Broker(tmp_path)
    broker.start()
    j = Journal(tmp_path / "j.db", SITE, TZ, synchronous="NORMAL")
    rec = Recorder(broker.port, TOPIC, client_id="policy-recorder")
    states: list[dict[str, Any] | None] = []
    try:

        async def main() -> None:
            link = make_link(broker.url)
            ob = Outbox(j, link, TOPIC, limit=200, on_capacity=states.append)
            link.start()
            assert await until(lambda: link.connected, 10)
            await asyncio.to_thread(broker.stop)  # a long outage begins
            assert await until(lambda: not link.connected, 10)
            for i in range(300):  # mostly book-keeping, some alarms
                kind = "alarm" if i % 10 == 0 else "system"
                j.append(drafts(kind, 1, start=i))
                ob.wake()
                await asyncio.sleep(0)
            await settle()
            assert ob.expired > 0 and j.outbox_depth() <= 200
            await asyncio.to_thread(broker.start)
            assert await until(lambda: ob.depth() == 0, 20)
            await link.close()

        asyncio.run(main())
        kept = {s for s, _, sent, _ in rows(j) if sent != EXPIRED}
        expired = {s for s, _, sent, _ in rows(j) if sent == EXPIRED}
        assert wait_for(lambda: len(rec.snapshot()) >= len(kept), 10)
        got = [json.loads(p) for t, p, _ in rec.snapshot() if t == TOPIC]
        seqs = [int(e["seq"]) for e in got]
        assert set(seqs) == kept and not set(seqs) & expired
        assert seqs == sorted(seqs)  # in order
        assert sum(1 for e in got if e["kind"] == "alarm") == 30  # every alarm arrived
        notices = [e for e in got if e["kind"] == "system" and e.get("cid") == "E350"]
        assert notices and sum(int(e["detail"]["expired"]) for e in notices) == len(expired)
        assert states[0] is not None and states[-1] is None  # raised, then restored
    finally:
        rec.close()
        broker.stop()
        j.close()


def test_events_in_flight_are_never_expired(tmp_path: Path) -> None:
    """Connected to a broker that is slow to acknowledge: what is in flight may still be
    delivered, so the policy gives up on the next ones instead."""
    j = Journal(tmp_path / "j.db", SITE, TZ, synchronous="NORMAL")

    async def main() -> None:
        p = Policy(j, limit=40)
        p.link.up()
        await p.add("system", 30)
        in_flight = set(p.link.seqs())
        assert in_flight == set(range(1, 31))  # window 50: all out, no PUBACK yet
        await p.add("system", 30)  # past the limit while they wait
        expired = {s for s, _, sent, _ in rows(j) if sent == EXPIRED}
        assert expired and not expired & in_flight
        notices = [e for e in j.events(kind="system") if e.cid == "E350"]
        assert sum(int(e.detail["expired"]) for e in notices) == len(expired)
        assert j.outbox_depth() <= 40 + len(notices)  # only the notices (never expired) above
        await p.deliver_all()
        assert not set(p.link.seqs()) & expired

    asyncio.run(main())
    j.close()
