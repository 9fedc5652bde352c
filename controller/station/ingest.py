"""From MQTT messages to the station's database: validation, quarantine, batching, liveness.

`Ingest.accept(topic, payload, now)` takes one message under `<prefix>/<site>/...` (from any
thread) and queues it; `flush(now)` writes what is queued in one transaction and notes which
incidents it opened; `tick(now)` also checks every site's liveness (communication lost within
200 s). An event that fails `controller/event.schema.json`, or a payload that is not JSON, goes
to the quarantine table with the reason; nothing a broker sends makes ingest raise.

When the database is away, messages stay queued in memory up to `buffer_limit` (`db_down` says
so, and every page of the console shows it); beyond the limit the oldest retained-state messages
are dropped first, then events, and `dropped` counts them. When the database is back, the queue
is written in order and ingest catches up.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections import deque
from collections.abc import Callable
from functools import lru_cache
from pathlib import Path
from typing import Any

from sqlalchemy.exc import InterfaceError, OperationalError, SQLAlchemyError

from controller.station.incidents import Liveness, priority_of
from controller.station.pictures import Pictures
from controller.station.store import Opened, Store

log = logging.getLogger(__name__)

SCHEMA = Path(__file__).resolve().parent.parent / "event.schema.json"
MAX_PAYLOAD = 64 * 1024
BATCH = 2000
BUFFER_LIMIT = 200_000
FLOOD = 100  # events in one write: alarms then wait for the writer's tick (Ingest.run)
HERE_MAX = 50  # queued messages past which an alarm is left to the writer (Ingest._write_here)
STATE_KINDS = ("status", "heartbeat", "zone", "sensor", "detector", "trouble", "drone", "patrol")


@lru_cache(maxsize=1)
def _validator() -> Any:
    from jsonschema import Draft202012Validator

    schema = json.loads(SCHEMA.read_text(encoding="utf-8"))
    return Draft202012Validator(schema)


@lru_cache(maxsize=1)
def _fast() -> Callable[[Any], Any]:
    """The schema compiled to Python (fastjsonschema). The schema uses only keywords that mean
    the same in draft 7, the newest fastjsonschema knows; a test checks both agree."""
    import fastjsonschema

    schema = json.loads(SCHEMA.read_text(encoding="utf-8"))
    schema["$schema"] = "http://json-schema.org/draft-07/schema#"
    validate: Callable[[Any], Any] = fastjsonschema.compile(schema)
    return validate


def check_event(e: Any) -> str | None:
    """Why `e` is not a valid event, or None."""
    if not isinstance(e, dict):
        return "not a JSON object"
    from fastjsonschema import JsonSchemaException

    try:
        _fast()(e)
        return None
    except JsonSchemaException:
        pass
    err = next(iter(_validator().iter_errors(e)), None)
    if err is None:
        return None
    where = "/".join(str(p) for p in err.absolute_path) or "(event)"
    return f"schema: {where}: {err.message}"[:500]


class Ingest:
    def __init__(
        self,
        store: Store,
        prefix: str = "officeguard",
        *,
        liveness: Liveness | None = None,
        buffer_limit: int = BUFFER_LIMIT,
    ) -> None:
        self.store = store
        self.prefix = prefix.strip("/")
        self.liveness = liveness or Liveness()
        self.buffer_limit = buffer_limit
        self._lock = threading.Lock()
        # one write at a time: the writer's, or an alarm's on the thread that received it
        self._writing = threading.Lock()
        self._writer_runs = False  # Ingest.run is on: alarms may be written where they arrive
        # only into SQLite, a local file: a PostgreSQL server that stops answering (a network
        # gone quiet) would hold the MQTT loop until TCP gives up, where the writer's thread
        # waits and the loop goes on buffering (docs/station.md: Database away)
        self._here_ok = not store.pg
        self._urgent_every = 0.05
        self._last_flush = 0.0  # time.monotonic() of the last urgent write
        self._last_batch = 0  # events in the last write (FLOOD or more: a flood is on; _flush)
        # set when an alarm-class event arrives: the flusher writes at once instead of at its
        # next tick (service.py), so the queue shows it within milliseconds
        self.urgent = threading.Event()
        # (site, event, received at, its JSON as received)
        self._events: deque[tuple[str, dict[str, Any], float, str]] = deque()
        self._states: deque[tuple[str, str, float, str]] = deque()
        self._bad: deque[tuple[float, str, str, bytes]] = deque()
        self._versions: dict[str, str] = {}
        self._saved_sites: dict[str, tuple[Any, ...]] = {}  # each site's row as last written
        self.db_down: str | None = None  # why the last write failed, while it keeps failing
        self.messages = 0
        self.stored_events = 0
        self.quarantined = 0
        self.ignored = 0
        self.dropped = 0
        self.generation = 0  # grows whenever the queue may have changed (for live pages)
        # told of every P/cmd/result (site, payload): the answers to the station's commands
        self.on_command_result: Callable[[str, bytes], None] | None = None
        # told of every incident a flush opened or joined, e.g. to wake the web console
        self.listeners: list[Callable[[list[Opened]], None]] = []
        self.pictures = Pictures()  # camera pictures, beside the events (pictures.py)
        # told whenever `generation` grows (from the writer's thread): the console's live pages
        self.watchers: list[Callable[[], None]] = []

    @property
    def buffered(self) -> int:
        return len(self._events) + len(self._states) + len(self._bad)

    # ------------------------------------------------------------------ accept

    def accept(self, topic: str, payload: bytes, now: float) -> None:
        """One message; never raises."""
        try:
            self._accept(topic, payload, now)
        except Exception as e:  # noqa: BLE001 - ingest must survive any payload
            self._quarantine(now, topic, f"unreadable: {e.__class__.__name__}", payload)

    def _accept(self, topic: str, payload: bytes, now: float) -> None:
        self.messages += 1
        head = self.prefix + "/"
        if not topic.startswith(head):
            self.ignored += 1
            return
        parts = topic[len(head) :].split("/")
        if len(parts) < 2 or not parts[0]:
            self.ignored += 1
            return
        site, rest = parts[0], parts[1:]
        if rest == ["event"]:
            self._event(site, topic, payload, now)
        elif rest[0] == "snapshot":
            self.pictures.accept(site, rest, payload, now)
        elif rest == ["cmd", "result"] and self.on_command_result is not None:
            self.on_command_result(site, payload)
        elif rest[0] in STATE_KINDS and not (len(rest) > 1 and rest[-1] in ("set", "result")):
            self._state(site, "/".join(rest), payload, now)
        else:
            self.ignored += 1  # commands and their results

    def _event(self, site: str, topic: str, payload: bytes, now: float) -> None:
        if len(payload) > MAX_PAYLOAD:
            self._quarantine(now, topic, "too large", payload)
            return
        try:
            text = payload.decode("utf-8")
            e = json.loads(text)
        except (ValueError, UnicodeDecodeError):
            self._quarantine(now, topic, "not JSON", payload)
            return
        why = check_event(e)
        if why is None and e.get("site") != site:
            why = f"the event names site {e.get('site')!r} but came on {site!r}'s topic"
        if why is not None:
            self._quarantine(now, topic, why, payload)
            return
        with self._lock:
            self._events.append((site, e, now, text))
            self._bound()
        if priority_of(e) is not None and not self._write_here() and not self.urgent.is_set():
            self.urgent.set()  # (set() takes a lock and notifies even when set: a flood's cost)

    def _write_here(self) -> bool:
        """Write an alarm on the thread that received it (the MQTT loop's), sparing it the
        hand-over to the writer's thread (0.6-1.7 ms under load, docs/station.md: Speed), when
        the writer runs, the database is SQLite and answers, no flood is on, little is queued,
        the last urgent write is `urgent_every` old and no other write is under way; else the
        writer writes it. Whether it wrote."""
        if not (self._writer_runs and self._here_ok) or self._last_batch >= FLOOD:
            return False
        if self.db_down is not None:
            return False
        if self.buffered > HERE_MAX or time.monotonic() < self._last_flush + self._urgent_every:
            return False
        if not self._writing.acquire(blocking=False):
            return False
        try:
            self._last_flush = time.monotonic()
            self._flush(time.time())
        except Exception:  # noqa: BLE001 - the MQTT loop must outlive any one failure
            log.exception("station: writing an alarm failed")
        finally:
            self._writing.release()
        return True

    def _state(self, site: str, rest: str, payload: bytes, now: float) -> None:
        body = payload[:MAX_PAYLOAD].decode("utf-8", "replace")
        d: Any = None
        if payload:
            try:
                d = json.loads(body)
            except ValueError:
                self._quarantine(now, f"{self.prefix}/{site}/{rest}", "not JSON", payload)
                return
        lv = self.liveness
        if rest == "status" and isinstance(d, dict) and isinstance(d.get("online"), bool):
            lv.status(
                site,
                d["online"],
                now,
                d.get("reason") if isinstance(d.get("reason"), str) else None,
            )
            if isinstance(d.get("version"), str):
                self._versions[site] = d["version"]
        elif rest == "heartbeat" and isinstance(d, dict):
            interval = d.get("interval_s")
            lv.heartbeat(site, now, float(interval) if isinstance(interval, int | float) else None)
        with self._lock:
            self._states.append((site, rest, now, body))
            self._bound()

    def _quarantine(self, now: float, topic: str, reason: str, payload: bytes) -> None:
        self.quarantined += 1
        with self._lock:
            self._bad.append((now, topic, reason, payload[:MAX_PAYLOAD]))
            self._bound()

    def _bound(self) -> None:
        while self.buffered > self.buffer_limit:
            q = self._states or self._bad or self._events
            q.popleft()
            self.dropped += 1

    # ------------------------------------------------------------------ flush

    def flush(self, now: float) -> list[Opened]:
        """Write what is queued, in batches; on a database error keep it and say why."""
        with self._writing:
            return self._flush(now)

    def _flush(self, now: float) -> list[Opened]:
        opened: list[Opened] = []
        self._last_batch = 0  # the events this write stores (FLOOD or more: a flood is on)
        while True:
            with self._lock:
                ev = [self._events[i] for i in range(min(BATCH, len(self._events)))]
                st = [self._states[i] for i in range(min(BATCH, len(self._states)))]
                bad = [self._bad[i] for i in range(min(BATCH, len(self._bad)))]
            if not (ev or st or bad):
                break
            try:
                opened += self.store.ingest(events=ev, states=st, bad=bad)
            except (OperationalError, InterfaceError) as e:
                why = _why(e)
                if self.db_down is None:
                    log.error("station: the database is unavailable (%s); buffering", why)
                self.db_down = why
                break
            except SQLAlchemyError:
                # the database refused something in this batch: write it one by one, and
                # quarantine what it refuses, so one odd message never blocks ingest
                opened += self._one_by_one(ev, st, bad)
            with self._lock:  # what was written leaves the queue (new arrivals stay behind it)
                for q, n in (
                    (self._events, len(ev)),
                    (self._states, len(st)),
                    (self._bad, len(bad)),
                ):
                    for _ in range(n):
                        q.popleft()
            self.stored_events += len(ev)
            self._last_batch += len(ev)
            if self.db_down is not None:
                log.warning("station: the database is back; caught up")
                self.db_down = None
        if self.db_down is None:
            try:
                if self.pictures.flush(self.store):
                    self.changed()  # an open incident page shows the new picture
            except SQLAlchemyError as e:
                self.db_down = _why(e)
        if opened:
            self.changed()
            for f in self.listeners:
                f(opened)
        return opened

    def changed(self) -> None:
        """The queue may have changed: a new generation, and the watchers told."""
        self.generation += 1
        for f in self.watchers:
            f()

    def _one_by_one(
        self,
        ev: list[tuple[str, dict[str, Any], float, str]],
        st: list[tuple[str, str, float, str]],
        bad: list[tuple[float, str, str, bytes]],
    ) -> list[Opened]:
        opened: list[Opened] = []
        refused: list[tuple[float, str, str, bytes]] = []
        for e in ev:
            try:
                opened += self.store.ingest(events=[e])
            except (OperationalError, InterfaceError):
                raise
            except SQLAlchemyError as x:
                topic = f"{self.prefix}/{e[0]}/event"
                refused.append(
                    (e[2], topic, f"database refused: {_why(x)}", e[3].encode())
                )
        for s in st:
            try:
                self.store.ingest(states=[s])
            except (OperationalError, InterfaceError):
                raise
            except SQLAlchemyError as x:
                refused.append(
                    (
                        s[2],
                        f"{self.prefix}/{s[0]}/{s[1]}",
                        f"database refused: {_why(x)}",
                        s[3].encode(),
                    )
                )
        for b in bad + refused:
            try:
                self.store.ingest(bad=[b])
            except (OperationalError, InterfaceError):
                raise
            except SQLAlchemyError:
                self.dropped += 1
                log.error("station: the database refused a quarantined message from %s", b[1])
        self.quarantined += len(refused)
        return opened

    def tick(self, now: float) -> list[Opened]:
        """Flush, then open an incident for every site whose communication was just lost. All
        its writes are one `_writing` turn: an alarm arriving meanwhile goes to the writer
        instead of waiting on SQLite's lock (whose busy handler sleeps milliseconds)."""
        changes = self.liveness.check(now)
        with self._lock:
            for site, lost, why in changes:
                topic = "station/comm_lost" if lost else "station/comm_restored"
                self._states.append((site, topic, now, json.dumps({"why": why})))
        with self._writing:
            opened = self._flush(now)
            if self.db_down is None:
                try:
                    for site, lost, why in changes:
                        if lost:
                            opened.append(self.store.comm_lost(site, why, now))
                    self._save_sites()
                except SQLAlchemyError as e:
                    self.db_down = _why(e)
        if changes:
            self.changed()
        return opened

    def _save_sites(self) -> None:
        """Write the sites whose liveness or version changed since they were last written: an
        idle station writes nothing, where it committed every site five times a second."""
        rows = {
            s.site: (s.online, s.last_seen, s.heartbeat_s, s.reason, s.comm_lost_since,
                     self._versions.get(s.site))  # fmt: skip
            for s in self.liveness.sites.values()
        }
        dirty = [s for s in self.liveness.sites.values() if self._saved_sites.get(s.site) != rows[s.site]]
        if not dirty:
            return
        self.store.save_sites(dirty, self._versions)
        for s in dirty:
            self._saved_sites[s.site] = rows[s.site]

    def run(self, stop: threading.Event, every: float = 0.2, urgent_every: float = 0.05) -> None:
        """The station's writer: `tick` every `every` seconds, and a flush as soon as an alarm
        arrives (such flushes at most every `urgent_every`), unless the last write held FLOOD
        events or more: then alarms wait for the tick too, so a flood is written in fewer,
        larger transactions. While it runs, an alarm that finds nothing else to write is
        written by the thread that received it (`_write_here`). Until `stop` is set; then a
        last tick."""
        self._urgent_every = urgent_every
        last_tick = time.monotonic()
        try:
            self.tick(time.time())  # the first tick before alarms may be written elsewhere
        except Exception:  # noqa: BLE001 - the writer must outlive any one failure
            log.exception("station: flush failed")
        self._writer_runs = True
        try:
            while not stop.is_set():
                due = last_tick + every - time.monotonic()
                urgent = self.urgent.wait(min(max(due, 0.0), 0.25))  # and look at `stop` often
                if not urgent and last_tick + every > time.monotonic():
                    continue
                self.urgent.clear()
                try:
                    due = last_tick + every - time.monotonic()
                    if urgent and due > 0 and self._last_batch < FLOOD:
                        wait = self._last_flush + urgent_every - time.monotonic()
                        if wait > 0 and stop.wait(wait):
                            break
                        self._last_flush = time.monotonic()
                        self.flush(time.time())
                    else:
                        if due > 0 and stop.wait(due):  # a flood's alarms wait for the tick
                            break
                        last_tick = time.monotonic()
                        self.tick(time.time())
                except Exception:  # noqa: BLE001 - the writer must outlive any one failure
                    log.exception("station: flush failed")
        finally:
            self._writer_runs = False
        self.tick(time.time())

    def counters(self) -> dict[str, Any]:
        return {
            "messages": self.messages,
            "stored_events": self.stored_events,
            "quarantined": self.quarantined,
            "ignored": self.ignored,
            "buffered": self.buffered,
            "dropped": self.dropped,
            "db_down": self.db_down,
            "pictures": self.pictures.counters(),
        }


def _why(e: Exception) -> str:
    first = (str(e).splitlines() or [""])[0]
    return f"{e.__class__.__name__}: {first[:200]}"
