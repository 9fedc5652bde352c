"""The station's database: SQLite (the embedded default) or PostgreSQL, through SQLAlchemy 2
Core, its schema made by Alembic migrations (`migrate`).

The database, not a process's memory, is the source of truth: two station processes that share
the event load (an MQTT 5 shared subscription) both write here, an incident is looked up and
changed in one transaction (the row locked on PostgreSQL), and an event seen twice is stored
once (its id is the primary key; a duplicate insert does nothing).
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import closing, contextmanager
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from sqlalchemy import (
    Connection,
    Engine,
    bindparam,
    create_engine,
    event,
    func,
    literal_column,
    or_,
    select,
    update,
)
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import SQLAlchemyError

from controller.errors import OfficeGuardError
from controller.station import schema as t
from controller.station.incidents import Incident, SiteLife, Step, alarm_class, priority_of

MIGRATIONS = Path(__file__).parent / "migrations"
MAX_PAYLOAD = 64 * 1024
COMM_LOST_PRIORITY = 2  # a site nobody can hear is a site nobody protects
# the open queue, written as the partial indexes' own predicate (a literal, not a bound
# parameter) so that SQLite and PostgreSQL both read those indexes for it
OPEN = t.incidents.c.state != literal_column("'closed'")


# PostgreSQL: retained-state messages in a write up to so many are logged and kept in one
# statement, more through COPY (docs/station.md, The site board)
FEW_STATES = 200
FEW_KEYS = 4  # alarms of at most so many keys in a write: their incidents inserted first

# the station's own notes in site_log (comm lost and restored, commands sent): logged, never a
# site's retained state (site_state)
STATION_NOTES = "station/"

# what makes two alarms "the same" incident: site, priority, alarm class, zone (schema.OPEN_KEY)
OpenKey = tuple[str, int, str, str | None]


class StoreError(OfficeGuardError, RuntimeError):
    """The database refused or is unreachable (the message says which and why)."""


def engine_for(url: str) -> Engine:
    """`sqlite:///path/station.db` or `postgresql+psycopg://user@host/db`; a bare path means
    SQLite."""
    if "://" not in url:
        url = f"sqlite:///{url}"
    if url.startswith("postgresql://"):
        url = "postgresql+psycopg://" + url[len("postgresql://") :]
    if url.startswith("sqlite"):
        eng = create_engine(url, connect_args={"check_same_thread": False, "timeout": 30})

        @event.listens_for(eng, "connect")
        def _pragmas(dbapi_conn: Any, _rec: Any) -> None:
            cur = dbapi_conn.cursor()
            cur.execute("PRAGMA journal_mode=WAL")
            cur.execute("PRAGMA synchronous=NORMAL")
            cur.execute("PRAGMA foreign_keys=ON")
            cur.close()

        return eng
    return create_engine(url, pool_pre_ping=True)


def migrate(engine: Engine, revision: str = "head") -> None:
    """Bring the schema to `revision` (Alembic, the scripts in migrations/versions/)."""
    from alembic import command
    from alembic.config import Config

    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    with engine.begin() as conn:
        cfg.attributes["connection"] = conn
        command.upgrade(cfg, revision)


def event_time(e: Mapping[str, Any], default: float) -> float:
    ts = e.get("ts")
    if isinstance(ts, str):
        try:
            return datetime.fromisoformat(ts).timestamp()
        except ValueError:
            pass
    return default


@dataclass(frozen=True)
class QueuePage:
    """One page of the open queue (priority then age) and the counts of the whole queue."""

    incidents: list[Incident]
    page: int
    per_page: int
    by_site: dict[str, int]
    by_priority: dict[int, int]

    @property
    def total(self) -> int:
        return sum(self.by_priority.values())

    @property
    def pages(self) -> int:
        return max(1, -(-self.total // self.per_page))


@dataclass(frozen=True)
class Opened:
    """What one stored event did to the queue."""

    incident: str
    new: bool
    priority: int
    site: str


class Store:
    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self.pg = engine.dialect.name == "postgresql"
        self._insert = postgresql.insert if self.pg else sqlite.insert
        # built once: an ON CONFLICT statement costs more to build than SQLite takes to run it
        self._new_events_stmt = (
            self._insert(t.events)
            .on_conflict_do_nothing(index_elements=["id"])
            .returning(t.events.c.id)
        )
        counts = self._insert(t.open_counts)
        self._counts_stmt = counts.on_conflict_do_update(
            index_elements=["site", "priority"], set_={"n": t.open_counts.c.n + counts.excluded.n}
        )
        self._new_incident_stmt = (
            self._insert(t.incidents)
            .on_conflict_do_nothing(index_elements=list(t.OPEN_KEY), index_where=OPEN)
            .returning(t.incidents.c.id)
        )
        # the statements of an alarm's write and of a queue page, built once too: building one
        # and its cache key cost SQLAlchemy more than SQLite takes to run it (docs/station.md)
        c = t.incidents.c
        self._open_stmt = select(c.id, c.site, c.priority, c.what, c.zone).where(
            c.site.in_(bindparam("sites", expanding=True)), OPEN
        )
        if self.pg:
            self._open_stmt = self._open_stmt.with_for_update()
        self._inserts = {tb.name: tb.insert() for tb in t.metadata.sorted_tables}
        # the newest message of each retained topic: a row only replaced by a newer one by n;
        # run on the driver's cursor (executemany: psycopg pipelines it), since SQLAlchemy's
        # multi-row VALUES cost more than the upsert itself (docs/station.md, The site board)
        self._state_sql = (
            "INSERT INTO site_state (site, topic, n, received_at, body) "
            "VALUES (?, ?, ?, ?, ?) ON CONFLICT (site, topic) DO UPDATE SET "
            "n = excluded.n, received_at = excluded.received_at, body = excluded.body "
            "WHERE excluded.n > site_state.n"
        )
        if self.pg:  # the rows as five arrays: one statement, not one a row
            self._state_sql = self._state_sql.replace(
                "VALUES (?, ?, ?, ?, ?)",
                "SELECT * FROM unnest(%s::text[], %s::text[], %s::int[], %s::float8[], %s::text[])",
            )
        self.few_states = FEW_STATES
        self._log_and_keep_sql = (
            "WITH logged AS (INSERT INTO site_log (site, topic, received_at, body) "
            "SELECT * FROM unnest(%s::text[], %s::text[], %s::float8[], %s::text[]) "
            "RETURNING n, site, topic, received_at, body) "
            "INSERT INTO site_state (site, topic, n, received_at, body) "
            "SELECT DISTINCT ON (site, topic) site, topic, n, received_at, body FROM logged "
            "WHERE topic NOT LIKE 'station/%%' ORDER BY site, topic, n DESC "  # STATION_NOTES
            "ON CONFLICT (site, topic) DO UPDATE SET "
            "n = excluded.n, received_at = excluded.received_at, body = excluded.body "
            "WHERE excluded.n > site_state.n"
        )
        self._log_numbers_sql = (
            "SELECT array_agg(nextval('site_log_n_seq'::regclass)) "  # site_log.n's serial
            "FROM generate_series(1, %s)"
        )
        oc = t.open_counts.c
        self._counts_q = select(oc.site, oc.priority, oc.n).where(oc.n > 0)
        self._rows_stmt = select(t.incidents).where(c.id.in_(bindparam("ids", expanding=True)))
        self._page_q: dict[tuple[int, int], Any] = {}
        self._page_rows_q: dict[tuple[int, int], Any] = {}

    @classmethod
    def open(cls, url: str, *, migrate_schema: bool = True) -> Store:
        eng = engine_for(url)
        try:
            if migrate_schema:
                migrate(eng)
        except SQLAlchemyError as e:
            raise StoreError(
                f"cannot open the station's database: {e.__class__.__name__}: {e}"
            ) from e
        return cls(eng)

    def close(self) -> None:
        self.engine.dispose()

    @contextmanager
    def tx(self) -> Iterator[Connection]:
        with self.engine.begin() as conn:
            yield conn

    # ------------------------------------------------------------------ ingest

    def ingest(
        self,
        events: Sequence[tuple[Any, ...]] = (),
        states: Sequence[tuple[str, str, float, str]] = (),
        bad: Sequence[tuple[float, str, str, bytes]] = (),
    ) -> list[Opened]:
        """One batch in one transaction: events (site, event, received_at[, its JSON as
        received]), retained-state messages (site, topic, received_at, body) and quarantined
        messages (received_at, topic, reason, payload). Returns the incidents the new events
        opened or joined."""
        opened: list[Opened] = []
        with self.tx() as conn:
            if events:
                rows = {}
                for item in events:
                    site, e, now = item[0], item[1], item[2]
                    eid = str(e["id"])
                    if eid in rows:
                        continue
                    rows[eid] = {
                        "id": eid,
                        "site": _clean(site),
                        "seq": int(e["seq"]),
                        "at": event_time(e, now),
                        "ts": _clean(str(e.get("ts", ""))),
                        "kind": _clean(str(e["kind"])),
                        "zone": _s(e.get("zone")),
                        "sensor": _s(e.get("sensor")),
                        "user": _s(e.get("user")),
                        "cid": _s(e.get("cid")),
                        "text": _clean(str(e.get("text", ""))),
                        "received_at": now,
                        "body": item[3]
                        if len(item) > 3
                        else json.dumps(e, ensure_ascii=False, separators=(",", ":")),
                    }
                new = self._new_events(conn, list(rows.values()))
                fresh = []
                for site, e, now, *_ in events:
                    eid = str(e["id"])
                    if eid in new and priority_of(e) is not None:
                        new.discard(eid)
                        fresh.append((site, e, now))
                if fresh:
                    opened = self._offer_all(conn, fresh)
            if states:
                self._log_states(
                    conn,
                    [
                        {
                            "site": _clean(s),
                            "topic": _clean(tp),
                            "received_at": at,
                            "body": _clean(body),
                        }
                        for s, tp, at, body in states
                    ],
                )
            if bad:
                self._bulk(
                    conn,
                    t.quarantine,
                    [
                        {
                            "received_at": at,
                            "topic": _clean(tp),
                            "reason": _clean(reason),
                            "payload": _clean(payload[:MAX_PAYLOAD].decode("utf-8", "replace")),
                        }
                        for at, tp, reason, payload in bad
                    ],
                )
        return opened

    def _offer_all(
        self, conn: Connection, fresh: Sequence[tuple[str, Mapping[str, Any], float]]
    ) -> list[Opened]:
        """Open or join incidents for a batch's alarm-class events with a few statements: one
        look-up of the open incidents of the batch's sites, then bulk inserts.

        A new incident is inserted only if no open one has its key (ux_incidents_open_key, the
        insert doing nothing on conflict): when another station process opened the same key
        since the look-up, its incident wins and these events join it, so exactly one opens
        whatever the interleaving (on PostgreSQL the insert waits for the other's commit)."""
        keyed: dict[OpenKey, list[tuple[str, Mapping[str, Any], float]]] = {}
        for site, e, now in fresh:
            prio = priority_of(e)
            assert prio is not None
            keyed.setdefault((site, prio, alarm_class(e), _s(e.get("zone"))), []).append(
                (site, e, now)
            )
        sites = {k[0] for k in keyed}
        # an alarm or a few: try the insert first, and look up only the keys it found open (a
        # new incident, the case an operator waits for, then costs no look-up); a larger batch
        # looks up first, most of its keys being open already
        winner = {} if len(keyed) <= FEW_KEYS else self._open_map(conn, sites)
        new: dict[OpenKey, Incident] = {}
        for _ in range(3):  # a winner closed between the insert and the look-up: try again
            todo = {k: keyed[k][0] for k in keyed if k not in winner and k not in new}
            if not todo:
                break
            cands = {k: Incident.open(e, site, now) for k, (site, e, now) in todo.items()}
            ins = self._insert_incidents(conn, list(cands.values()))
            new |= {k: inc for k, inc in cands.items() if inc.id in ins}
            if len(ins) < len(cands):
                winner = self._open_map(conn, sites)
        links: list[dict[str, Any]] = []
        steps: list[dict[str, Any]] = []
        by_event: dict[str, Opened] = {}
        for key, items in keyed.items():
            inc = new.get(key)
            iid = inc.id if inc is not None else winner[key]
            for site, e, now in items:
                eid = str(e["id"])
                links.append({"event_id": eid, "incident_id": iid})
                if inc is not None and eid == inc.id:
                    steps += [{"incident_id": iid, **st.as_dict()} for st in inc.steps]
                    by_event[eid] = Opened(iid, True, key[1], site)
                    continue
                text = _clean(str(e.get("text") or e.get("kind")))
                steps.append({"incident_id": iid, **Step(now, "station", "event", text).as_dict()})
                by_event[eid] = Opened(iid, False, key[1], site)
        self._bulk(conn, t.incident_events, links)
        self._bulk(conn, t.incident_steps, steps)
        return [by_event[str(e["id"])] for _, e, _ in fresh]

    def _open_map(self, conn: Connection, sites: Iterable[str]) -> dict[OpenKey, str]:
        """The open incidents of these sites by key (locked on PostgreSQL, so an operator's
        close waits for the join, and the join for the close)."""
        rows = conn.execute(self._open_stmt, {"sites": sorted(sites)})
        return {(r.site, r.priority, r.what, r.zone): r.id for r in rows}

    def _insert_incidents(self, conn: Connection, incs: list[Incident]) -> set[str]:
        """Insert the incidents whose key has no open incident, in the keys' order (two
        processes then wait on each other's keys in one order, never in a cycle), and count
        them open; the ids inserted."""
        incs = sorted(incs, key=lambda i: (i.site, i.priority, i.what, i.zone or ""))
        rows = [_incident_row(i) for i in incs]
        ins = set(conn.execute(self._new_incident_stmt, rows).scalars())
        deltas: dict[tuple[str, int], int] = {}
        for i in incs:
            if i.id in ins:
                deltas[(i.site, i.priority)] = deltas.get((i.site, i.priority), 0) + 1
        self._count_open(conn, deltas)
        return ins

    # PostgreSQL: COPY, since parsing a large multi-row INSERT costs psycopg more than the
    # server's work (bench/station_ingest.py: 2,100 events/s with INSERT, see docs/station.md)

    def _new_events(self, conn: Connection, rows: list[dict[str, Any]]) -> set[str]:
        """Insert the events whose id is not stored yet; the ids inserted."""
        if not self.pg:
            return set(conn.execute(self._new_events_stmt, rows).scalars())
        cols = [c.name for c in t.events.columns]
        names = ", ".join(f'"{c}"' for c in cols)
        raw: Any = conn.connection.dbapi_connection
        with raw.cursor() as cur:
            cur.execute(
                "CREATE TEMP TABLE IF NOT EXISTS events_in (LIKE events) ON COMMIT DELETE ROWS"
            )
            with cur.copy(f"COPY events_in ({names}) FROM STDIN") as cp:
                for r in rows:
                    cp.write_row([r[c] for c in cols])
            cur.execute(
                f"INSERT INTO events ({names}) SELECT {names} FROM events_in "  # noqa: S608 - names from schema.py
                "ON CONFLICT (id) DO NOTHING RETURNING id"
            )
            return {str(r[0]) for r in cur.fetchall()}

    def _log_states(self, conn: Connection, rows: list[dict[str, Any]]) -> None:
        """Append retained-state messages to site_log and keep the newest of each topic in
        site_state, in the caller's transaction. PostgreSQL: a tick's few messages in one
        statement (the insert's RETURNING feeds the upsert: one round trip); a larger batch
        takes its log numbers from the sequence, then COPY, then the upsert (COPY is faster
        for many rows). SQLite: the rows' numbers are the run ending at the last rowid (the
        transaction holds the only write lock)."""
        if not rows:
            return
        kept = any(not r["topic"].startswith(STATION_NOTES) for r in rows)
        raw: Any = conn.connection.dbapi_connection
        if self.pg and kept and len(rows) <= self.few_states:
            cols = ("site", "topic", "received_at", "body")
            raw.execute(self._log_and_keep_sql, [[r[c] for r in rows] for c in cols])
            return
        if self.pg and kept:
            ns = sorted(raw.execute(self._log_numbers_sql, (len(rows),)).fetchone()[0])
            rows = [{"n": n, **r} for n, r in zip(ns, rows, strict=True)]
        self._bulk(conn, t.site_log, rows)
        if not kept:
            return
        if not self.pg:
            last = int(raw.execute("SELECT last_insert_rowid()").fetchone()[0])
            rows = [{"n": last - len(rows) + 1 + i, **r} for i, r in enumerate(rows)]
        self.keep_state(conn, rows)

    def keep_state(self, conn: Connection, rows: Iterable[Mapping[str, Any]]) -> None:
        """Upsert site_log rows (n, site, topic, received_at, body) into site_state, a topic's
        row replaced only by a newer one by n: on PostgreSQL a row numbered earlier can commit
        after a later one (two station processes). One row per topic, in the keys' order, so
        two processes lock the same rows in the same order and never deadlock."""
        newest: dict[tuple[str, str], Mapping[str, Any]] = {}
        for r in rows:
            key = (r["site"], r["topic"])
            if not key[1].startswith(STATION_NOTES) and (
                key not in newest or r["n"] > newest[key]["n"]
            ):
                newest[key] = r
        if newest:
            cols = ("site", "topic", "n", "received_at", "body")
            raw: Any = conn.connection.dbapi_connection
            values = [tuple(newest[k][c] for c in cols) for k in sorted(newest)]
            with closing(raw.cursor()) as cur:
                if self.pg:
                    cur.execute(self._state_sql, [list(c) for c in zip(*values, strict=True)])
                else:
                    cur.executemany(self._state_sql, values)

    def _bulk(self, conn: Connection, table: Any, rows: list[dict[str, Any]]) -> None:
        if not rows:
            return
        if not self.pg:
            conn.execute(self._inserts[table.name], rows)
            return
        cols = list(rows[0])
        names = ", ".join(f'"{c}"' for c in cols)
        raw: Any = conn.connection.dbapi_connection
        with raw.cursor() as cur, cur.copy(f"COPY {table.name} ({names}) FROM STDIN") as cp:
            for r in rows:
                cp.write_row([r[c] for c in cols])

    def comm_lost(self, site: str, why: str, now: float) -> Opened:
        """A site silent past its heartbeat (or its last will): an incident of the station's own,
        joined by later losses while it stays open (one, as for alarms, when two station
        processes both see the loss: _offer_all)."""
        text = f"communication lost: {why}"
        key: OpenKey = (site, COMM_LOST_PRIORITY, "comm_lost", None)
        with self.tx() as conn:
            for _ in range(3):
                found = self._open_map(conn, [site]).get(key)
                if found is not None:
                    self._steps(conn, found, [Step(now, "station", "event", text)])
                    return Opened(found, False, COMM_LOST_PRIORITY, site)
                iid = uuid.uuid4().hex
                inc = Incident(iid, site, COMM_LOST_PRIORITY, "comm_lost", None, now, text)
                inc.steps.append(Step(now, "station", "opened", text))
                if self._insert_incidents(conn, [inc]):
                    self._steps(conn, inc.id, inc.steps)
                    return Opened(inc.id, True, COMM_LOST_PRIORITY, site)
        raise StoreError(f"{site}: its communication-lost incident kept closing under the join")

    def _count_open(self, conn: Connection, deltas: Mapping[tuple[str, int], int]) -> None:
        """Add to the open queue's counts (open_counts), in the caller's transaction; the rows
        in one order, so two station processes lock them in the same order."""
        rows = [{"site": s, "priority": p, "n": n} for (s, p), n in sorted(deltas.items()) if n]
        if not rows:
            return
        conn.execute(self._counts_stmt, rows)

    def _steps(self, conn: Connection, incident: str, steps: Iterable[Step]) -> None:
        rows = [{"incident_id": incident, **s.as_dict()} for s in steps]
        if rows:
            conn.execute(self._inserts["incident_steps"], rows)  # a few rows: no COPY

    # ------------------------------------------------------------------ incidents

    def incident(self, incident_id: str, conn: Connection | None = None) -> Incident | None:
        if conn is None:
            with self.tx() as c:
                return self.incident(incident_id, c)
        q = select(t.incidents).where(t.incidents.c.id == incident_id)
        if self.pg:
            q = q.with_for_update()
        row = conn.execute(q).mappings().first()
        if row is None:
            return None
        inc = _incident(row)
        inc.events = list(
            conn.execute(
                select(t.incident_events.c.event_id).where(
                    t.incident_events.c.incident_id == incident_id
                )
            ).scalars()
        )
        inc.steps = [
            Step(r.at, r.who, r.action, r.text)
            for r in conn.execute(
                select(t.incident_steps)
                .where(t.incident_steps.c.incident_id == incident_id)
                .order_by(t.incident_steps.c.n)
            )
        ]
        return inc

    def act(self, incident_id: str, action: str, who: str, now: float, **kw: str) -> Incident:
        """An operator's step (acknowledge, note, close), applied by the model and stored in one
        transaction; IncidentError when it does not fit."""
        with self.tx() as conn:
            inc = self.incident(incident_id, conn)
            if inc is None:
                raise StoreError(f"no incident {incident_id}")
            before, was_open = len(inc.steps), inc.state != "closed"
            if action == "acknowledge":
                inc.acknowledge(who, now)
            elif action == "note":
                inc.note(who, kw.get("text", ""), now)
            elif action == "close":
                inc.close(who, kw.get("resolution", ""), now, kw.get("text", ""))
            else:
                raise StoreError(f"unknown action {action!r}")
            self._steps(conn, inc.id, inc.steps[before:])
            row = _incident_row(inc)
            conn.execute(update(t.incidents).where(t.incidents.c.id == inc.id).values(**row))
            if was_open and inc.state == "closed":
                self._count_open(conn, {(inc.site, inc.priority): -1})
            return inc

    def open_incidents(self, limit: int = 1000) -> list[Incident]:
        with self.tx() as conn:
            q = (
                select(t.incidents)
                .where(OPEN)
                .order_by(t.incidents.c.priority, t.incidents.c.opened_at, t.incidents.c.id)
                .limit(limit)
            )
            return [_incident(r) for r in conn.execute(q).mappings()]

    def queue_page(self, page: int = 1, per_page: int = 50) -> QueuePage:
        """Page `page` (from 1) of the open queue, read along ix_incidents_open_queue, and the
        open incidents by site and priority from open_counts; one transaction, so the page and
        its counts agree. On SQLite the page's ids and their rows in one statement (one trip
        fewer, the same plans); PostgreSQL's planner would join that sub-query by reading the
        whole table, so there the ids come first and then their rows by key."""
        page = max(1, page)
        by_site: dict[str, int] = {}
        by_priority: dict[int, int] = {}
        with self.tx() as conn:
            if self.pg:
                ids = list(conn.execute(self.queue_page_query(page, per_page)).scalars())
                found = conn.execute(self._rows_stmt, {"ids": ids}).mappings()
            else:
                found = conn.execute(self.queue_rows_query(page, per_page)).mappings()
            incidents = sorted((_incident(r) for r in found), key=Incident.sort_key)
            for site, prio, n in conn.execute(self._counts_q):
                by_site[site] = by_site.get(site, 0) + n
                by_priority[prio] = by_priority.get(prio, 0) + n
        return QueuePage(incidents, page, per_page, by_site, dict(sorted(by_priority.items())))

    def queue_rows_query(self, page: int = 1, per_page: int = 50) -> Any:
        """The rows of a page of the open queue: those of `queue_page_query`'s ids, found by
        key (in no order: the caller sorts them); built once per page. SQLite's plan only
        (queue_page)."""
        key = (max(1, page), per_page)
        rows = self._page_rows_q.get(key)
        if rows is None:
            c = t.incidents.c
            rows = select(t.incidents).where(c.id.in_(self.queue_page_query(*key)))
            if len(self._page_rows_q) < 1000:
                self._page_rows_q[key] = rows
        return rows

    def queue_page_query(self, page: int = 1, per_page: int = 50) -> Any:
        """The ids of a page of the open queue, read from ix_incidents_open_queue alone (the
        earlier pages skipped there, without reading their rows); built once per page."""
        key = (max(1, page), per_page)
        q = self._page_q.get(key)
        if q is None:
            c = t.incidents.c
            q = (
                select(c.id)
                .where(OPEN)
                .order_by(c.priority, c.opened_at, c.id)
                .offset((key[0] - 1) * per_page)
                .limit(per_page)
            )
            if len(self._page_q) < 1000:
                self._page_q[key] = q
        return q

    def queue_counts_query(self) -> Any:
        """The open incidents counted from the incidents themselves (what open_counts keeps)."""
        c = t.incidents.c
        return select(c.site, c.priority, func.count()).where(OPEN).group_by(c.site, c.priority)

    def explain(self, query: Any) -> str:
        """The database's plan for a query (EXPLAIN QUERY PLAN on SQLite, EXPLAIN on
        PostgreSQL), as text: the tests and the queue bench check which index it reads."""
        with self.tx() as conn:
            sql = str(query.compile(conn, compile_kwargs={"literal_binds": True}))
            prefix = "EXPLAIN " if self.pg else "EXPLAIN QUERY PLAN "
            rows = conn.exec_driver_sql(prefix + sql).all()
        return "\n".join(str(r[-1]) for r in rows)

    def count_open(self) -> int:
        with self.tx() as conn:
            n = conn.execute(
                select(func.count()).select_from(t.incidents).where(OPEN)
            ).scalar()
            return int(n or 0)

    def incidents_of(
        self,
        site: str,
        limit: int = 200,
        since: float | None = None,
        until: float | None = None,
    ) -> list[Incident]:
        with self.tx() as conn:
            q = select(t.incidents).where(t.incidents.c.site == site)
            if since is not None:
                q = q.where(t.incidents.c.opened_at >= since)
            if until is not None:
                q = q.where(t.incidents.c.opened_at < until)
            q = q.order_by(t.incidents.c.opened_at.desc()).limit(limit)
            return [_incident(r) for r in conn.execute(q).mappings()]

    # ------------------------------------------------------------------ events, sites

    def search(
        self,
        site: str | None = None,
        kind: str | None = None,
        since: float | None = None,
        until: float | None = None,
        text: str | None = None,
        limit: int = 500,
    ) -> list[dict[str, Any]]:
        c = t.events.c
        q = select(c.id, c.site, c.seq, c.at, c.ts, c.kind, c.zone, c.sensor, c.user, c.cid, c.text)
        if site:
            q = q.where(c.site == site)
        if kind:
            q = q.where(c.kind == kind)
        if since is not None:
            q = q.where(c.at >= since)
        if until is not None:
            q = q.where(c.at < until)
        if text:
            pat = "%" + text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"
            q = q.where(
                or_(
                    c.text.ilike(pat, escape="\\"),
                    c.zone.ilike(pat, escape="\\"),
                    c.sensor.ilike(pat, escape="\\"),
                )
            )
        q = q.order_by(c.at.desc(), c.site, c.seq.desc()).limit(limit)
        with self.tx() as conn:
            return [dict(r) for r in conn.execute(q).mappings()]

    def count_events(self) -> int:
        with self.tx() as conn:
            return int(conn.execute(select(func.count()).select_from(t.events)).scalar() or 0)

    def quarantined(self, limit: int = 100) -> tuple[int, list[dict[str, Any]]]:
        with self.tx() as conn:
            n = int(conn.execute(select(func.count()).select_from(t.quarantine)).scalar() or 0)
            rows = conn.execute(
                select(t.quarantine).order_by(t.quarantine.c.n.desc()).limit(limit)
            ).mappings()
            return n, [dict(r) for r in rows]

    def save_sites(
        self, lives: Iterable[SiteLife], versions: Mapping[str, str] | None = None
    ) -> None:
        rows = [
            {
                "site": s.site,
                "online": s.online,
                "last_seen": s.last_seen,
                "heartbeat_s": s.heartbeat_s,
                "reason": s.reason,
                "comm_lost_since": s.comm_lost_since,
                "version": (versions or {}).get(s.site),
            }
            for s in lives
        ]
        if not rows:
            return
        stmt = self._insert(t.sites)
        stmt = stmt.on_conflict_do_update(
            index_elements=["site"],
            set_={k: stmt.excluded[k] for k in rows[0] if k not in ("site", "version")}
            | {"version": func.coalesce(stmt.excluded.version, t.sites.c.version)},
        )
        with self.tx() as conn:
            conn.execute(stmt, rows)

    def sites(self) -> list[dict[str, Any]]:
        with self.tx() as conn:
            rows = [
                dict(r) for r in conn.execute(select(t.sites).order_by(t.sites.c.site)).mappings()
            ]
            counts = conn.execute(
                select(t.incidents.c.site, func.count())
                .where(t.incidents.c.state != "closed")
                .group_by(t.incidents.c.site)
            ).all()
            open_by_site: dict[str, int] = {str(s): int(n) for s, n in counts}
        for r in rows:
            r["open_incidents"] = open_by_site.get(r["site"], 0)
        return rows

    def site_state(self, site: str, limit: int = 1000) -> list[dict[str, Any]]:
        """The newest message of each retained topic of a site (status, heartbeat, zones,
        sensors, troubles, drones, patrols), by topic, from site_state: however old."""
        c = t.site_state.c
        with self.tx() as conn:
            rows = conn.execute(
                select(c.n, c.site, c.topic, c.received_at, c.body)
                .where(c.site == site)
                .order_by(c.topic)
                .limit(limit)
            ).mappings()
            return [dict(r) for r in rows]

    def log_command(
        self, site: str, who: str, command: dict[str, Any], result: dict[str, Any], now: float
    ) -> None:
        """A remote command the station sent and the site's answer (never the code)."""
        body = {
            "who": who,
            "command": {k: v for k, v in command.items() if k not in ("code", "sig", "nonce")},
            "result": result,
        }
        with self.tx() as conn:
            conn.execute(
                t.site_log.insert().values(
                    site=site, topic="station/command", received_at=now,
                    body=_clean(json.dumps(body, ensure_ascii=False)),
                )
            )  # fmt: skip

    def commands(self, site: str, limit: int = 20) -> list[dict[str, Any]]:
        with self.tx() as conn:
            rows = conn.execute(
                select(t.site_log.c.received_at, t.site_log.c.body)
                .where(t.site_log.c.site == site, t.site_log.c.topic == "station/command")
                .order_by(t.site_log.c.n.desc())
                .limit(limit)
            ).all()
        return [{"at": r.received_at, **json.loads(r.body)} for r in rows]

    # ------------------------------------------------------------------ operators

    def operator(self, login: str) -> dict[str, Any] | None:
        with self.tx() as conn:
            r = (
                conn.execute(select(t.operators).where(t.operators.c.login == login))
                .mappings()
                .first()
            )
            return dict(r) if r else None

    def operators(self) -> list[dict[str, Any]]:
        with self.tx() as conn:
            q = select(
                t.operators.c.login,
                t.operators.c.role,
                t.operators.c.created_at,
                t.operators.c.disabled,
            )
            return [dict(r) for r in conn.execute(q.order_by(t.operators.c.login)).mappings()]

    def put_operator(
        self, login: str, password_hash: str | None, role: str, disabled: bool = False
    ) -> None:
        with self.tx() as conn:
            exists = conn.execute(
                select(t.operators.c.login).where(t.operators.c.login == login)
            ).first()
            values: dict[str, Any] = {"role": role, "disabled": disabled}
            if password_hash is not None:
                values["password_hash"] = password_hash
            if exists:
                conn.execute(
                    update(t.operators).where(t.operators.c.login == login).values(**values)
                )
            else:
                if password_hash is None:
                    raise StoreError(f"a new operator {login!r} needs a password")
                conn.execute(
                    t.operators.insert().values(login=login, created_at=time.time(), **values)
                )


def _s(v: Any) -> str | None:
    return _clean(v) if isinstance(v, str) else None


def _clean(v: str) -> str:
    """PostgreSQL's text holds no NUL character (JSON may carry one as \\u0000)."""
    return v.replace("\x00", "\ufffd")


def _incident_row(inc: Incident) -> dict[str, Any]:
    return {
        "id": inc.id,
        "site": inc.site,
        "priority": inc.priority,
        "what": inc.what,
        "zone": inc.zone,
        "title": inc.title,
        "opened_at": inc.opened_at,
        "state": inc.state,
        "acknowledged_at": inc.acknowledged_at,
        "acknowledged_by": inc.acknowledged_by,
        "closed_at": inc.closed_at,
        "closed_by": inc.closed_by,
        "resolution": inc.resolution,
    }


def _incident(r: Any) -> Incident:
    return Incident(
        id=r["id"],
        site=r["site"],
        priority=r["priority"],
        what=r["what"],
        zone=r["zone"],
        opened_at=r["opened_at"],
        title=r["title"],
        state=r["state"],
        acknowledged_at=r["acknowledged_at"],
        acknowledged_by=r["acknowledged_by"],
        closed_at=r["closed_at"],
        closed_by=r["closed_by"],
        resolution=r["resolution"],
    )
