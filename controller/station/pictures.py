"""Camera pictures from the sites, kept with the incidents they belong to (docs/cameras.md).

A site sends each picture of an alarm on `<prefix>/<site>/snapshot/<event id>/<snapshot id>`
(the raw JPEG; the `snapshot` event, which arrives through the events' path, gives its size,
time and sha256). Ingest hands them here: each is checked (a JPEG's start, at most
`max_image` bytes, a snapshot id that names its event), queued in memory within
`buffer_bytes` (the oldest dropped first while the database is away), and written in the
flusher's turn to the `snapshots` table, a picture seen twice stored once. Past `max_total`
bytes the oldest pictures are deleted. The incident's page shows the pictures of its events,
served by `/snapshot/<id>` behind the login like every other page.
"""

from __future__ import annotations

import logging
import threading
from collections import deque
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from sqlalchemy import delete, func, select

from controller.station import schema as t

if TYPE_CHECKING:
    from controller.station.store import Store

log = logging.getLogger(__name__)

MAX_IMAGE = 4_000_000  # the sites' own default cap (camera max_image)
MAX_TOTAL = 2_000_000_000  # pictures kept at the station, all sites together
BUFFER_BYTES = 64_000_000  # pictures waiting in memory for the database
BATCH = 16
SOI = b"\xff\xd8\xff"


@dataclass(frozen=True)
class Picture:
    id: str
    site: str
    event_id: str
    received_at: float
    image: bytes


class Pictures:
    def __init__(
        self,
        *,
        max_image: int = MAX_IMAGE,
        max_total: int = MAX_TOTAL,
        buffer_bytes: int = BUFFER_BYTES,
    ) -> None:
        self.max_image = max_image
        self.max_total = max_total
        self.buffer_bytes = buffer_bytes
        self._lock = threading.Lock()
        self._queue: deque[Picture] = deque()
        self._queued_bytes = 0
        self.received = 0
        self.stored = 0
        self.refused = 0  # too big, not a JPEG, or an id that does not name its event
        self.dropped = 0  # given up while the database was away
        self.pruned = 0

    def accept(self, site: str, rest: list[str], payload: bytes, now: float) -> None:
        """`rest` is the topic after `<prefix>/<site>/`: ["snapshot", event id, snapshot id]."""
        self.received += 1
        if len(rest) != 3 or not rest[1] or not rest[2].startswith(rest[1] + "-"):
            self.refused += 1
            return
        if len(payload) > self.max_image or not payload.startswith(SOI):
            self.refused += 1
            log.warning("station: a picture from %s refused (%d bytes, not a JPEG or too big)", site, len(payload))
            return
        pic = Picture(rest[2][:200], site, rest[1][:32], now, bytes(payload))
        with self._lock:
            self._queue.append(pic)
            self._queued_bytes += len(pic.image)
            while self._queued_bytes > self.buffer_bytes and len(self._queue) > 1:
                old = self._queue.popleft()
                self._queued_bytes -= len(old.image)
                self.dropped += 1

    def flush(self, store: Store) -> int:
        """Write what is queued (a batch at a time); raises what the database raises, and what
        was not written stays queued."""
        written = 0
        while True:
            with self._lock:
                batch = [self._queue[i] for i in range(min(BATCH, len(self._queue)))]
            if not batch:
                break
            rows = [
                {"id": p.id, "site": p.site, "event_id": p.event_id,
                 "received_at": p.received_at, "size": len(p.image), "image": p.image}
                for p in batch
            ]  # fmt: skip
            with store.tx() as conn:
                stmt = store._insert(t.snapshots).on_conflict_do_nothing(index_elements=["id"])
                conn.execute(stmt, rows)
                self.pruned += _prune(conn, self.max_total)
            with self._lock:
                for p in batch:
                    self._queue.popleft()
                    self._queued_bytes -= len(p.image)
            written += len(batch)
        self.stored += written
        return written

    def counters(self) -> dict[str, int]:
        return {
            "received": self.received,
            "stored": self.stored,
            "refused": self.refused,
            "dropped": self.dropped,
            "pruned": self.pruned,
            "waiting": len(self._queue),
        }


def _prune(conn: Any, max_total: int) -> int:
    total = conn.execute(select(func.coalesce(func.sum(t.snapshots.c.size), 0))).scalar_one()
    gone = 0
    while total > max_total:
        oldest = conn.execute(
            select(t.snapshots.c.id, t.snapshots.c.size).order_by(t.snapshots.c.received_at).limit(50)
        ).all()
        if not oldest:
            break
        ids = []
        for sid, size in oldest:
            if total <= max_total:
                break
            ids.append(sid)
            total -= size
        conn.execute(delete(t.snapshots).where(t.snapshots.c.id.in_(ids)))
        gone += len(ids)
    return gone


def of_events(store: Store, event_ids: list[str]) -> list[dict[str, Any]]:
    """The pictures of these events (without their bytes), in the order taken."""
    if not event_ids:
        return []
    c = t.snapshots.c
    with store.tx() as conn:
        rows = conn.execute(
            select(c.id, c.event_id, c.size, c.received_at)
            .where(c.event_id.in_(event_ids))
        ).mappings()
        out = [dict(r) for r in rows]
    return sorted(out, key=_taken_order)


def _taken_order(r: dict[str, Any]) -> tuple[str, str, int]:
    camera, _, n = str(r["id"]).removeprefix(str(r["event_id"]) + "-").rpartition("-")
    return (str(r["event_id"]), camera, int(n) if n.isdigit() else 0)


def image(store: Store, sid: str) -> bytes | None:
    with store.tx() as conn:
        data = conn.execute(select(t.snapshots.c.image).where(t.snapshots.c.id == sid)).scalar()
    return None if data is None else bytes(data)
