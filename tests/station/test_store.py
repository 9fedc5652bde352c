"""The station's database, on SQLite and on a real PostgreSQL: migrations, de-duplicated events,
incidents and their append-only trail, search, quarantine, operators."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError

from controller.station.incidents import IncidentError
from controller.station.schema import metadata
from controller.station.store import Store


def ev(
    kind: str = "alarm", cid: str | None = "E130", zone: str = "main", seq: int = 1, **kw: object
) -> dict[str, object]:
    e: dict[str, object] = {
        "id": uuid.uuid4().hex,
        "seq": seq,
        "site": "office-a",
        "ts": "2026-02-17T01:20:31.412+07:00",
        "kind": kind,
        "zone": zone,
        "text": f"{kind} in {zone}",
        "detail": {},
    }
    if cid:
        e["cid"] = cid
    e.update(kw)
    return e


# Alembic cannot compare an expression index (ux_incidents_open_key): test_two_writers.py checks
# that the migrated database refuses what that index refuses
@pytest.mark.filterwarnings("ignore:.*expression-based index ux_incidents_open_key")
@pytest.mark.filterwarnings("ignore:autogenerate skipping metadata-specified expression-based")
def test_the_migrations_make_exactly_the_schema_the_code_uses(store: Store) -> None:
    with store.engine.connect() as conn:
        diff = compare_metadata(MigrationContext.configure(conn), metadata)
    assert diff == []


def test_opening_the_database_twice_migrates_once(db_url: str) -> None:
    Store.open(db_url).close()
    s = Store.open(db_url)
    assert s.count_events() == 0
    s.close()


def test_an_event_received_twice_is_stored_once_and_opens_one_incident(store: Store) -> None:
    e = ev()
    first = store.ingest(events=[("office-a", e, 1.0)])
    again = store.ingest(events=[("office-a", dict(e), 2.0), ("office-a", e, 2.0)])
    assert [o.new for o in first] == [True]
    assert again == []
    assert store.count_events() == 1
    assert [i.id for i in store.open_incidents()] == [e["id"]]


def test_a_second_alarm_in_the_zone_joins_the_open_incident_and_a_restore_closes_nothing(
    store: Store,
) -> None:
    a, b = ev(seq=1), ev(seq=2)
    store.ingest(events=[("office-a", a, 1.0), ("office-a", b, 2.0)])
    store.ingest(events=[("office-a", ev("alarm_restore", cid="R130", seq=3), 3.0)])
    [inc] = store.open_incidents()
    full = store.incident(inc.id)
    assert full is not None
    assert full.events == [a["id"], b["id"]]
    assert [s.action for s in full.steps] == ["opened", "event"]


def test_the_queue_puts_a_panic_before_an_older_burglary(store: Store) -> None:
    store.ingest(events=[("office-a", ev(cid="E130"), 1.0)])
    store.ingest(events=[("office-b", ev(cid="E120", zone="hall"), 5.0)])
    assert [(i.site, i.priority) for i in store.open_incidents()] == [
        ("office-a", 2),
        ("office-b", 1),
    ][::-1]


def test_an_operator_acknowledges_notes_and_closes_and_the_trail_says_who_and_when(
    store: Store,
) -> None:
    e = ev()
    store.ingest(events=[("office-a", e, 1.0)])
    iid = str(e["id"])
    store.act(iid, "acknowledge", "lan", 10.0)
    store.act(iid, "note", "lan", 11.0, text="guard sent to the director's office")
    store.act(iid, "close", "mai", 12.0, resolution="guard_sent")
    inc = store.incident(iid)
    assert inc is not None and inc.state == "closed" and inc.resolution == "guard_sent"
    assert [(s.action, s.who, s.at) for s in inc.steps] == [
        ("opened", "station", 1.0),
        ("acknowledged", "lan", 10.0),
        ("note", "lan", 11.0),
        ("closed", "mai", 12.0),
    ]
    with pytest.raises(IncidentError):
        store.act(iid, "note", "lan", 13.0, text="too late")
    assert store.open_incidents() == []


def test_the_trail_cannot_be_edited_away_even_in_sql(store: Store) -> None:
    store.ingest(events=[("office-a", ev(), 1.0)])
    for sql in ("UPDATE incident_steps SET who = 'nobody'", "DELETE FROM incident_steps"):
        with pytest.raises(DBAPIError, match="append-only"), store.engine.begin() as conn:
            conn.execute(text(sql))


def test_events_are_found_by_site_kind_time_and_text(store: Store) -> None:
    store.ingest(
        events=[
            ("office-a", ev(zone="leadership", seq=1), 1.0),
            ("office-a", ev("arm", cid="R401", zone="main", seq=2), 1.0),
            ("office-b", ev(zone="100%_sure", seq=1, ts="2027-01-01T00:00:00+07:00"), 1.0),
        ]
    )
    assert len(store.search(site="office-a")) == 2
    assert [r["kind"] for r in store.search(kind="arm")] == ["arm"]
    assert [r["site"] for r in store.search(text="LEADER")] == ["office-a"]
    assert [r["site"] for r in store.search(text="100%")] == ["office-b"]
    assert len(store.search(since=datetime(2026, 6, 1, tzinfo=UTC).timestamp())) == 1


def test_quarantined_messages_are_kept_with_their_reason(store: Store) -> None:
    store.ingest(bad=[(1.0, "officeguard/x/event", "not JSON", b"\xff\xfe garbage")])
    n, rows = store.quarantined()
    assert n == 1 and rows[0]["reason"] == "not JSON" and "garbage" in rows[0]["payload"]


def test_operators_are_added_and_changed_without_touching_their_password(store: Store) -> None:
    store.put_operator("lan", "$argon2id$hash", "operator")
    store.put_operator("lan", None, "supervisor")
    op = store.operator("lan")
    assert op is not None and op["role"] == "supervisor" and op["password_hash"] == "$argon2id$hash"
    assert [o["login"] for o in store.operators()] == ["lan"]


def test_the_queue_pages_in_order_and_its_counts_match_the_incidents(store: Store) -> None:
    events = [
        (f"office-{k % 3}", ev(cid="E110" if k % 5 == 0 else "E130", zone=f"z{k}"), float(k))
        for k in range(23)
    ]
    store.ingest(events=events[:10])
    store.ingest(events=events[10:])
    store.comm_lost("office-9", "no heartbeat", 30.0)
    first = store.queue_page(1, 10)
    store.act(first.incidents[0].id, "close", "lan", 40.0, resolution="test")
    store.act(first.incidents[1].id, "acknowledge", "lan", 41.0)
    whole = store.open_incidents()
    pages = [store.queue_page(p, 10) for p in (1, 2, 3)]
    assert [i.id for p in pages for i in p.incidents] == [i.id for i in whole]
    assert [len(p.incidents) for p in pages] == [10, 10, 3] and pages[0].pages == 3
    with store.tx() as conn:
        truth = {(s, p): n for s, p, n in conn.execute(store.queue_counts_query())}
    assert pages[0].total == len(whole) == 23
    assert pages[0].by_priority == {p: sum(n for (_, q), n in truth.items() if q == p) for p in (1, 2)}
    assert pages[0].by_site == {
        s: sum(n for (t, _), n in truth.items() if t == s) for s, _ in truth
    }
    assert store.queue_page(4, 10).incidents == []


def test_a_page_of_the_queue_is_read_from_the_open_queue_index(store: Store) -> None:
    store.ingest(events=[("office-a", ev(zone=f"z{k}"), float(k)) for k in range(30)])

    def plan_of(query: object) -> str:
        if not store.pg:
            return store.explain(query)
        with store.tx() as conn:  # a table this small is read whole unless told otherwise
            conn.exec_driver_sql("SET LOCAL enable_seqscan = off")
            conn.exec_driver_sql("SET LOCAL enable_bitmapscan = off")
            sql = str(query.compile(conn, compile_kwargs={"literal_binds": True}))  # type: ignore[attr-defined]
            return "\n".join(str(r[0]) for r in conn.exec_driver_sql("EXPLAIN " + sql))

    plan = plan_of(store.queue_page_query(2, 10))
    assert "ix_incidents_open_queue" in plan and "Sort" not in plan and "TEMP B-TREE" not in plan
    if not store.pg:  # one statement for the page's rows: its ids from that index, then by key
        plan = plan_of(store.queue_rows_query(2, 10))
        assert "ix_incidents_open_queue" in plan and "TEMP B-TREE" not in plan
        assert "sqlite_autoindex_incidents_1" in plan
    assert [i.id for i in store.queue_page(2, 10).incidents] == [
        i.id for i in store.open_incidents()[10:20]
    ]


def test_the_queue_counts_migration_counts_the_incidents_already_open(db_url: str) -> None:
    from controller.station import schema as t
    from controller.station.store import engine_for, migrate

    eng = engine_for(db_url)
    migrate(eng, "0002")
    rows = [
        {"id": f"i{k}", "site": f"office-{k % 2}", "priority": 1 + k % 3, "what": "burglary",
         "zone": f"z{k}", "title": "x", "opened_at": float(k), "state": "closed" if k < 2 else "open"}
        for k in range(9)
    ]  # fmt: skip
    with eng.begin() as conn:
        conn.execute(t.incidents.insert(), rows)
    migrate(eng, "head")
    eng.dispose()
    s = Store.open(db_url)
    try:
        page = s.queue_page(1, 50)
        assert page.total == 7 and page.by_site == {"office-0": 4, "office-1": 3}
        assert page.by_priority == {1: 2, 2: 2, 3: 3}
    finally:
        s.close()
