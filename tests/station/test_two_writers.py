"""Two station processes writing to one database at the same moment (two Store instances, each
its own engine and connections, in two threads): alarms of the same zone, and the same site's
loss of communication, open exactly one incident between them, on PostgreSQL and on SQLite.

On PostgreSQL both writers are held right before they insert an incident until the other is
there too, so that neither has seen the other's: the interleaving that opened two before the
unique index on the open incident's key (migration 0005). SQLite lets one
writer at a time into a write transaction (the first statement writes), so there the two only
start together."""

from __future__ import annotations

import threading
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from sqlalchemy import event, select, text
from sqlalchemy.exc import IntegrityError

from controller.station import schema as t
from controller.station.store import Opened, Store, engine_for, migrate
from tests.station.test_store import ev


@pytest.fixture
def two(db_url: str) -> Iterator[tuple[Store, Store]]:
    a = Store.open(db_url)
    b = Store.open(db_url, migrate_schema=False)
    try:
        yield a, b
    finally:
        a.close()
        b.close()


def race(
    stores: tuple[Store, Store], work: Callable[[Store, int], Opened | list[Opened]]
) -> list[Any]:
    """Run work(store, i) in two threads that start together; on PostgreSQL each then waits,
    before it first inserts an incident, for the other to get there. The two results."""
    start = threading.Barrier(2, timeout=20)
    looked = threading.Barrier(2, timeout=20)
    local = threading.local()

    def before(_c: Any, _cur: Any, statement: str, *_a: Any) -> None:
        insert = statement.lstrip().startswith("INSERT INTO incidents ")
        if insert and not getattr(local, "waited", False):
            local.waited = True
            looked.wait()

    results: list[Any] = [None, None]
    errors: list[BaseException] = []

    def run(i: int) -> None:
        try:
            start.wait()
            results[i] = work(stores[i], i)
        except BaseException as e:  # noqa: BLE001 - reported by the test
            errors.append(e)
            looked.abort()

    hooked = [s.engine for s in stores if s.pg]
    for eng in hooked:
        event.listen(eng, "before_cursor_execute", before)
    try:
        threads = [threading.Thread(target=run, args=(i,)) for i in (0, 1)]
        for th in threads:
            th.start()
        for th in threads:
            th.join(60)
    finally:
        for eng in hooked:
            event.remove(eng, "before_cursor_execute", before)
    assert not errors, errors
    return results


def open_in(store: Store, zone: str | None, what: str) -> list[str]:
    c = t.incidents.c
    with store.tx() as conn:
        q = select(c.id).where(c.state != "closed", c.what == what)
        q = q.where(c.zone.is_(None) if zone is None else c.zone == zone)
        return list(conn.execute(q).scalars())


def test_two_writers_racing_on_one_zone_open_one_incident_holding_both_alarms(
    two: tuple[Store, Store],
) -> None:
    for r in range(5):  # a site of its own each time: the look-up locks a site's open ones
        site, zone = f"office-{r}", f"vault-{r}"
        alarms = [ev(zone=zone, seq=i + 1, site=site) for i in (0, 1)]
        batches = [[(site, a, 1000.0 + i)] for i, a in enumerate(alarms)]
        res = race(two, lambda s, i, b=batches: s.ingest(events=b[i]))
        opened = [o for batch in res for o in batch]
        assert sorted(o.new for o in opened) == [False, True]
        (iid,) = {o.incident for o in opened}
        assert open_in(two[0], zone, "burglary") == [iid]
        inc = two[1].incident(iid)
        assert inc is not None
        assert sorted(inc.events) == sorted(str(a["id"]) for a in alarms)
        assert [s.action for s in inc.steps] == ["opened", "event"]
    page = two[0].queue_page()
    assert page.total == two[1].count_open() == 5


def test_two_writers_seeing_one_site_go_silent_open_one_comm_lost_incident(
    two: tuple[Store, Store],
) -> None:
    res = race(two, lambda s, i: s.comm_lost("office-b", f"no heartbeat ({i})", 2000.0 + i))
    assert sorted(o.new for o in res) == [False, True]
    (iid,) = {o.incident for o in res}
    assert open_in(two[0], None, "comm_lost") == [iid]
    inc = two[0].incident(iid)
    assert inc is not None and [s.action for s in inc.steps] == ["opened", "event"]
    assert two[0].queue_page().by_site == {"office-b": 1}


def test_the_migration_closes_the_duplicates_the_race_left_keeping_the_oldest(
    db_url: str,
) -> None:
    eng = engine_for(db_url)
    migrate(eng, "0004")
    rows = [
        {"id": uuid.uuid4().hex, "site": "office-a", "priority": 2, "what": "burglary",
         "zone": zone, "title": "x", "opened_at": at, "state": "open"}
        for zone, at in (("hall", 2.0), ("hall", 1.0), ("hall", 3.0), (None, 4.0), (None, 5.0))
    ]  # fmt: skip
    with eng.begin() as conn:
        conn.execute(t.incidents.insert(), rows)
        conn.execute(
            text("INSERT INTO open_counts (site, priority, n) VALUES ('office-a', 2, 5)")
        )
    migrate(eng, "head")
    eng.dispose()
    s = Store.open(db_url)
    try:
        assert open_in(s, "hall", "burglary") == [rows[1]["id"]]
        assert open_in(s, None, "burglary") == [rows[3]["id"]]
        assert s.queue_page().by_priority == {2: 2}
        dup = s.incident(str(rows[0]["id"]))
        assert dup is not None and dup.state == "closed" and dup.resolution == "other"
        assert dup.steps[-1].who == "station"
        assert dup.steps[-1].text == f"other: a duplicate of incident {rows[1]['id']}"
        # from now on the database itself refuses a second open incident of a key
        with pytest.raises(IntegrityError), s.tx() as conn:
            conn.execute(t.incidents.insert(), {**rows[0], "id": "another"})
        e = ev(zone="hall")
        assert s.ingest(events=[("office-a", e, 9.0)])[0].incident == rows[1]["id"]
    finally:
        s.close()
