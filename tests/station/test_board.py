"""The site board's latest states: site_state, kept by ingest beside site_log (the newest
message of each topic by log number) and filled by migration 0006 from the log already there."""

from __future__ import annotations

import threading
import time
from typing import Any

import pytest
from sqlalchemy import func, select, text

from controller.station import schema as t
from controller.station.board import latest_states, site_board, summary
from controller.station.store import Store, engine_for, migrate


def log(store: Store, *rows: tuple[str, str, str]) -> None:
    """site_log rows written as an older station wrote them, numbered 1, 2, ... by the database."""
    with store.tx() as conn:
        for i, (s, tp, b) in enumerate(rows):
            conn.execute(
                t.site_log.insert(), {"site": s, "topic": tp, "received_at": float(i), "body": b}
            )


def newest_in_log(store: Store, site: str, topic: str) -> int:
    c = t.site_log.c
    with store.tx() as conn:
        n = conn.execute(select(func.max(c.n)).where(c.site == site, c.topic == topic)).scalar()
    return int(n)


def test_the_site_state_follows_the_newest_message_of_each_topic_including_a_cleared_one(
    store: Store,
) -> None:
    store.ingest(
        states=[
            ("a", "zone/z/state", 1.0, '{"state": "disarmed"}'),
            ("a", "heartbeat", 1.0, "{}"),
            ("a", "zone/z/state", 2.0, '{"state": "armed_away"}'),  # same batch, later: wins
            ("b", "patrol/night", 2.0, '{"state": "waiting"}'),
            ("a", "station/comm_lost", 2.0, '{"why": "x"}'),  # the station's note: not a state
        ]
    )
    assert latest_states(store) == {
        "a": [{"topic": "zone/z/state", "body": '{"state": "armed_away"}'}],
        "b": [{"topic": "patrol/night", "body": '{"state": "waiting"}'}],
    }
    store.ingest(
        states=[("a", "zone/z/state", 3.0, '{"state": "triggered"}'), ("a", "drone/t1", 3.0, "{}")]
    )
    store.ingest(states=[("b", "patrol/night", 4.0, "")])  # the site cleared the retained topic
    got = latest_states(store)
    assert got["a"] == [
        {"topic": "drone/t1", "body": "{}"},
        {"topic": "zone/z/state", "body": '{"state": "triggered"}'},
    ]
    assert got["b"] == [{"topic": "patrol/night", "body": ""}]
    assert site_board(got["b"])["patrols"] == {}
    # a site's page has every retained topic, heartbeat too, each with its log row
    page = store.site_state("a")
    assert [r["topic"] for r in page] == ["drone/t1", "heartbeat", "zone/z/state"]
    assert all(r["n"] == newest_in_log(store, "a", r["topic"]) for r in page)


def test_an_older_message_arriving_later_does_not_overwrite_a_newer_one(store: Store) -> None:
    store.ingest(states=[("a", "zone/z/state", 2.0, '{"state": "armed_away"}')])
    n = newest_in_log(store, "a", "zone/z/state")
    older = {
        "site": "a",
        "topic": "zone/z/state",
        "received_at": 1.0,
        "body": '{"state": "disarmed"}',
    }
    # numbered before it, committed after it: another station process's slower transaction
    with store.tx() as conn:
        store.keep_state(conn, [{**older, "n": n - 1}])
    assert latest_states(store)["a"] == [
        {"topic": "zone/z/state", "body": '{"state": "armed_away"}'}
    ]
    with store.tx() as conn:
        store.keep_state(conn, [{**older, "n": n + 1, "body": '{"state": "armed_home"}'}])
    assert latest_states(store)["a"] == [
        {"topic": "zone/z/state", "body": '{"state": "armed_home"}'}
    ]


def test_on_postgresql_a_message_numbered_first_but_committed_last_leaves_the_newer_one(
    pg_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = Store.open(pg_url)
    store.few_states = 0  # a batch as a catch-up writes it: numbers, then COPY, then upsert
    numbered, newer_done = threading.Event(), threading.Event()
    bulk = store._bulk

    def slow_first(conn: Any, table: Any, rows: list[dict[str, Any]]) -> None:
        if threading.current_thread().name == "first":
            numbered.set()  # its log number taken: the other process writes and commits now
            assert newer_done.wait(10)
        bulk(conn, table, rows)

    monkeypatch.setattr(store, "_bulk", slow_first)
    first = threading.Thread(
        target=store.ingest,
        kwargs={"states": [("a", "zone/z/state", 1.0, '{"state": "disarmed"}')]},
        name="first",
    )
    try:
        first.start()
        assert numbered.wait(10)
        store.ingest(states=[("a", "zone/z/state", 2.0, '{"state": "armed_away"}')])
        newer_done.set()
        first.join(10)
        assert [r["body"] for r in store.site_state("a")] == ['{"state": "armed_away"}']
        assert store.site_state("a")[0]["n"] == newest_in_log(store, "a", "zone/z/state")
        with store.tx() as conn:  # both are in the log, the slower one numbered first
            logged = conn.execute(select(t.site_log.c.body).order_by(t.site_log.c.n)).scalars()
            assert list(logged) == ['{"state": "disarmed"}', '{"state": "armed_away"}']
    finally:
        newer_done.set()
        store.close()


def test_on_postgresql_a_ticks_message_waiting_on_a_newer_ones_transaction_leaves_the_newer_one(
    pg_url: str,
) -> None:
    store = Store.open(pg_url)
    zone = ("a", "zone/z/state")
    store.ingest(states=[(*zone, 0.0, '{"state": "disarmed"}')])
    first = threading.Thread(
        target=store.ingest, kwargs={"states": [(*zone, 1.0, '{"state": "armed_home"}')]}
    )
    try:
        with store.engine.connect() as other:  # another station process, mid-transaction
            tx = other.begin()
            c = t.site_state.c
            other.execute(
                select(c.n).where(c.site == "a", c.topic == zone[1]).with_for_update()
            ).all()
            first.start()  # logged (numbered) in its one statement, then waits for the row
            for _ in range(200):
                with store.tx() as conn:
                    if conn.execute(
                        text("SELECT count(*) FROM pg_locks WHERE NOT granted")
                    ).scalar():
                        break
                time.sleep(0.05)
            else:
                pytest.fail("the tick's write never waited for the other transaction")
            # the other process logs a newer message (numbered after the waiting one), commits
            store._log_states(
                other,
                [
                    {
                        "site": "a",
                        "topic": zone[1],
                        "received_at": 2.0,
                        "body": '{"state": "armed_away"}',
                    }
                ],
            )
            tx.commit()
        first.join(10)
        assert [r["body"] for r in store.site_state("a")] == ['{"state": "armed_away"}']
        with store.tx() as conn:
            logged = conn.execute(select(t.site_log.c.body).order_by(t.site_log.c.n)).scalars()
            assert list(logged)[1:] == ['{"state": "armed_home"}', '{"state": "armed_away"}']
    finally:
        store.close()


def test_the_migration_fills_the_site_state_from_the_log_already_there(db_url: str) -> None:
    eng = engine_for(db_url)
    migrate(eng, "0005")
    store = Store(eng)
    log(
        store,
        ("a", "zone/z/state", '{"state": "disarmed"}'),
        ("a", "zone/z/state", '{"state": "armed_away"}'),
        ("a", "heartbeat", '{"n": 3}'),
        ("a", "station/command", "{}"),
        ("b", "drone/t1", '{"uas_id": "x"}'),
        ("b", "drone/t1", ""),
        ("a", "heartbeat", '{"n": 7}'),
        ("b", "station/comm_lost", "{}"),
    )
    migrate(eng, "head")
    try:
        assert [(r["n"], r["topic"], r["body"]) for r in store.site_state("a")] == [
            (7, "heartbeat", '{"n": 7}'),
            (2, "zone/z/state", '{"state": "armed_away"}'),
        ]
        assert [(r["n"], r["topic"], r["body"]) for r in store.site_state("b")] == [
            (6, "drone/t1", "")
        ]
        store.ingest(states=[("a", "zone/z/state", 9.0, '{"state": "triggered"}')])
        assert latest_states(store)["a"] == [
            {"topic": "zone/z/state", "body": '{"state": "triggered"}'}
        ]
    finally:
        store.close()


def test_a_boards_summary_tells_armed_zones_alarms_and_a_patrol_gone_wrong() -> None:
    b = site_board(
        [
            {"topic": "zone/a/state", "body": '{"state": "armed_night", "alarm": false}'},
            {"topic": "zone/b/state", "body": '{"state": "disarmed", "alarm": false}'},
            {"topic": "zone/c/state", "body": '{"state": "armed_away", "alarm": true}'},
            {"topic": "drone/t", "body": '{"uas_id": "x"}'},
            {
                "topic": "patrol/p",
                "body": '{"state": "in_round", "last_round": {"outcome": "missed"}}',
            },
            {"topic": "patrol/q", "body": '{"state": "waiting", "last_round": null}'},
        ]
    )
    s = summary(b)
    assert [(z["zone"], z["cls"]) for z in s["zones"]] == [
        ("a", "green"),
        ("b", "grey"),
        ("c", "red"),
    ]
    assert s["drones_now"] == 1
    assert [(p["plan"], p["last"], p["bad"]) for p in s["patrols"]] == [
        ("p", "missed", True),
        ("q", None, False),
    ]
