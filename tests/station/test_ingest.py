"""Ingest: messages as the broker delivers them, into a real database (SQLite and PostgreSQL)."""

from __future__ import annotations

import json
import uuid

import psycopg
import pytest

from controller.station.ingest import Ingest, check_event
from controller.station.store import Store
from tests.station.conftest import PG_ADMIN

P = "officeguard"


def event(
    site: str = "office-a", seq: int = 1, kind: str = "alarm", cid: str | None = "E130"
) -> dict[str, object]:
    e: dict[str, object] = {
        "id": uuid.uuid4().hex,
        "seq": seq,
        "site": site,
        "ts": "2026-02-17T01:20:31.412+07:00",
        "kind": kind,
        "zone": "main",
        "text": "Báo động: cửa chính",
        "detail": {},
    }
    if cid:
        e["cid"] = cid
    return e


def j(d: object) -> bytes:
    return json.dumps(d).encode()


def test_a_valid_event_passes_the_schema_and_a_broken_one_says_why() -> None:
    assert check_event(event()) is None
    bad = event()
    bad["seq"] = 0
    assert "seq" in (check_event(bad) or "")


def test_events_are_stored_once_and_open_incidents_and_bad_ones_are_quarantined(
    store: Store,
) -> None:
    ing = Ingest(store, P)
    e = event()
    ing.accept(f"{P}/office-a/event", j(e), 1.0)
    ing.accept(f"{P}/office-a/event", j(e), 1.5)  # re-sent after a reconnect
    ing.accept(f"{P}/office-a/event", b"\xffnot json", 2.0)
    broken = event(seq=2)
    del broken["kind"]
    ing.accept(f"{P}/office-a/event", j(broken), 2.0)
    ing.accept(f"{P}/office-b/event", j(event(site="office-a", seq=3)), 2.0)  # wrong topic
    ing.accept(f"{P}/office-a/zone/main/state", j({"state": "triggered", "alarm": True}), 2.0)
    ing.accept(f"{P}/office-a/command/set", b"{}", 2.0)
    opened = ing.flush(3.0)
    assert [o.incident for o in opened] == [e["id"]]
    assert store.count_events() == 1
    n, rows = store.quarantined()
    assert n == 3
    assert {r["reason"].split(":")[0] for r in rows} == {
        "not JSON",
        "schema",
        "the event names site 'office-a' but came on 'office-b''s topic",
    }
    assert [r["topic"] for r in store.site_state("office-a")] == ["zone/main/state"]
    assert ing.ignored == 1


def test_a_silent_site_opens_one_comm_lost_incident(store: Store) -> None:
    ing = Ingest(store, P)
    ing.accept(f"{P}/office-a/status", j({"online": True, "version": "0.1.0"}), 0.0)
    ing.accept(f"{P}/office-a/heartbeat", j({"seq": 1, "interval_s": 60}), 0.0)
    assert ing.tick(60.0) == []
    [lost] = ing.tick(91.0)
    assert lost.new and lost.site == "office-a"
    assert ing.tick(120.0) == []
    [inc] = store.open_incidents()
    assert inc.what == "comm_lost"
    [row] = store.sites()
    assert row["comm_lost_since"] == 91.0 and row["version"] == "0.1.0"


def test_an_idle_station_writes_a_site_only_when_its_liveness_changed(
    store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    written: list[list[str]] = []
    save = store.save_sites
    monkeypatch.setattr(
        store, "save_sites", lambda lives, v=None: (written.append([s.site for s in lives]),
                                                    save(lives, v))[1]
    )  # fmt: skip
    ing = Ingest(store, P)
    ing.accept(f"{P}/office-a/heartbeat", j({"seq": 1, "interval_s": 60}), 0.0)
    ing.accept(f"{P}/office-b/heartbeat", j({"seq": 1, "interval_s": 60}), 0.0)
    ing.tick(0.2)
    assert written == [["office-a", "office-b"]]
    for k in range(1, 50):  # ten quiet seconds of ticks
        ing.tick(0.2 + k * 0.2)
    assert written == [["office-a", "office-b"]]
    ing.accept(f"{P}/office-b/heartbeat", j({"seq": 2, "interval_s": 60}), 30.0)
    ing.tick(30.2)
    assert written[-1] == ["office-b"]
    ing.tick(91.0)  # office-a fell silent: communication lost
    ing.tick(91.2)
    assert written[-1] == ["office-a"] and len(written) == 3
    assert {r["site"]: r["comm_lost_since"] for r in store.sites()}["office-a"] == 91.0


def test_a_database_that_goes_away_is_buffered_for_and_caught_up_with(pg_url: str) -> None:
    store = Store.open(pg_url)
    name = pg_url.rsplit("/", 1)[1]
    ing = Ingest(store, P, buffer_limit=50)
    admin = psycopg.connect(PG_ADMIN, autocommit=True)
    try:
        admin.execute(f'ALTER DATABASE "{name}" ALLOW_CONNECTIONS false')
        admin.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = %s", (name,)
        )
        store.engine.dispose()
        events = [event(seq=i) for i in range(1, 41)]
        for e in events:
            ing.accept(f"{P}/office-a/event", j(e), 1.0)
        ing.flush(1.0)
        assert ing.db_down is not None and ing.buffered == 40
        for i in range(20):
            ing.accept(f"{P}/office-a/heartbeat", j({"seq": i}), 2.0)
        assert ing.buffered == 50 and ing.dropped == 10  # heartbeats go first
        admin.execute(f'ALTER DATABASE "{name}" ALLOW_CONNECTIONS true')
        ing.flush(3.0)
        assert ing.db_down is None and ing.buffered == 0
        assert store.count_events() == 40
    finally:
        admin.execute(f'ALTER DATABASE "{name}" ALLOW_CONNECTIONS true')
        admin.close()
        store.close()


def test_no_payload_makes_ingest_raise(store: Store) -> None:
    ing = Ingest(store, P)
    for topic in (
        f"{P}/a/event",
        f"{P}/a/status",
        f"{P}/a/heartbeat",
        f"{P}/a/drone/t1",
        "other/x",
        f"{P}/",
        f"{P}//event",
    ):
        for payload in (
            b"",
            b"null",
            b"[]",
            b"{}",
            b'{"online": "yes"}',
            b"\x00" * 70000,
            j(event()),
        ):
            ing.accept(topic, payload, 1.0)
    ing.tick(2.0)
    assert ing.db_down is None


def test_the_fast_validator_agrees_with_jsonschema_on_valid_and_broken_events() -> None:
    from jsonschema import Draft202012Validator

    from controller.station.ingest import SCHEMA, _fast

    ref = Draft202012Validator(json.loads(SCHEMA.read_text(encoding="utf-8")))
    base = event()
    variants: list[dict[str, object]] = [base, {**base, "cid": "R401"}, {**base, "user": "lan"}]
    for key, bad in (
        ("id", "XYZ"),
        ("id", 5),
        ("seq", 0),
        ("seq", "1"),
        ("kind", "party"),
        ("cid", "E1"),
        ("ts", 3),
        ("detail", []),
        ("text", None),
        ("extra", 1),
    ):
        variants.append({**base, key: bad})
    variants.append({k: v for k, v in base.items() if k != "site"})
    for v in variants:
        fast_ok = True
        try:
            _fast()(v)
        except Exception:
            fast_ok = False
        assert fast_ok == ref.is_valid(v), v


def test_the_writer_stores_an_alarm_at_once_but_lets_a_flood_wait_for_its_tick(
    store: Store,
) -> None:
    import threading
    import time

    from controller.station.ingest import FLOOD

    def stored(ing: Ingest, n: int) -> bool:
        deadline = time.monotonic() + 10
        while ing.stored_events < n and time.monotonic() < deadline:
            time.sleep(0.01)
        return ing.stored_events == n

    ing = Ingest(store, P)
    stop = threading.Event()
    writer = threading.Thread(target=ing.run, args=(stop, 3600.0))  # its tick: once an hour
    writer.start()
    try:
        for k in (1, 2, 3):  # one alarm after another, each written long before the tick
            ing.accept(f"{P}/office-a/event", j(event(seq=k)), float(k))
            assert stored(ing, k)
    finally:
        stop.set()
        writer.join(10)

    flood = Ingest(store, P)
    for k in range(FLOOD):
        flood.accept(f"{P}/office-b/event", j(event(site="office-b", seq=k + 1)), 5.0)
    stop = threading.Event()
    writer = threading.Thread(target=flood.run, args=(stop, 3600.0))
    writer.start()  # its first write is the flood, in one transaction
    try:
        assert stored(flood, FLOOD)
        flood.accept(f"{P}/office-b/event", j(event(site="office-b", seq=FLOOD + 1)), 6.0)
        time.sleep(0.3)
        assert flood.stored_events == FLOOD  # after a flood, an alarm waits for the tick
    finally:
        stop.set()
        writer.join(10)
    assert flood.stored_events == FLOOD + 1  # the last tick wrote it


def test_while_the_writer_runs_an_alarm_is_written_by_the_thread_that_receives_it(
    store: Store,
) -> None:
    """No hand-over to the writer's thread on SQLite: the alarm is stored when `accept` returns
    (on the MQTT loop's thread in the station), the writer's tick being an hour away. Not on
    PostgreSQL, whose server could hold that thread: there the writer writes it at once."""
    import threading
    import time

    ing = Ingest(store, P)
    stop = threading.Event()
    writer = threading.Thread(target=ing.run, args=(stop, 3600.0, 0.0))  # no rate limit
    writer.start()
    try:
        deadline = time.monotonic() + 10
        while not ing._writer_runs and time.monotonic() < deadline:
            time.sleep(0.01)
        for k in (1, 2, 3):
            ing.accept(f"{P}/office-a/event", j({**event(seq=k), "zone": f"z{k}"}), float(k))
            if store.pg:
                deadline = time.monotonic() + 10
                while ing.stored_events < k and time.monotonic() < deadline:
                    time.sleep(0.01)
            assert ing.stored_events == k
            assert len(store.open_incidents()) == k
    finally:
        stop.set()
        writer.join(10)
