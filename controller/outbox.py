"""The outbox: sends the logbook's events to the security office, and never loses one.

Every event is written to the journal (the logbook on disk) first. The outbox then publishes the
events that the broker has not yet confirmed, oldest first, on `<prefix>/<site>/event` with QoS 1,
and marks an event delivered only when the broker acknowledges it (PUBACK). If the connection
drops, it stops; when the connection comes back it starts again from the oldest unconfirmed
event. So after an outage, a crash or a power cut every event still arrives, in order; an event
sent twice carries the same `id` both times, so the office can drop the copy.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Sequence
from typing import Protocol

from controller.events import Event

log = logging.getLogger(__name__)


class JournalLike(Protocol):
    def pending(self, limit: int = 100, after_seq: int = 0) -> list[Event]: ...

    def mark_sent(self, seqs: Sequence[int]) -> None: ...

    def outbox_depth(self) -> int: ...


class LinkLike(Protocol):
    @property
    def connected(self) -> bool: ...

    def publish(
        self, topic: str, payload: str | bytes, qos: int = 1, retain: bool = False
    ) -> asyncio.Future[bool]: ...

    connect_listeners: list[Callable[[], None]]
    disconnect_listeners: list[Callable[[], None]]


class Outbox:
    """Publishes journaled events in `seq` order with up to `window` messages awaiting PUBACK.

    Runs entirely on the asyncio loop. It registers itself with the link's connect/disconnect
    listeners; the daemon calls `wake()` after journaling new events. Acknowledgements are
    written to the journal in batches (one `mark_sent` per loop turn).
    """

    def __init__(
        self,
        journal: JournalLike,
        link: LinkLike,
        topic: str,
        *,
        window: int = 1000,
        batch: int = 500,
        retry_delay: float = 1.0,
    ) -> None:
        if window < 1 or batch < 1:
            raise ValueError("window and batch must be at least 1")
        self.journal = journal
        self.link = link
        self.topic = topic
        self.window = window
        self.batch = batch
        self.retry_delay = retry_delay
        self._inflight: dict[int, asyncio.Future[bool]] = {}
        self._sent_upto = 0  # highest seq handed to the link in this round
        self._round = 0  # bumped whenever we restart from the oldest unacknowledged event
        self._acked: list[int] = []
        self._tick_scheduled = False
        self._retry: asyncio.TimerHandle | None = None
        self._closed = False
        self.published = 0
        self.delivered = 0
        self.failures = 0
        link.connect_listeners.append(self.wake)
        link.disconnect_listeners.append(self._on_disconnect)

    # ------------------------------------------------------------------ public

    def wake(self) -> None:
        """New events were journaled (or the link came up): publish what is waiting."""
        self._schedule_tick()

    def depth(self) -> int:
        """Events not yet acknowledged by the broker (on disk and in memory)."""
        self._flush_acks()
        return self.journal.outbox_depth()

    @property
    def inflight(self) -> int:
        return len(self._inflight)

    def close(self) -> None:
        """Stop publishing; record the acknowledgements received so far."""
        self._flush_acks()
        self._closed = True
        if self._retry is not None:
            self._retry.cancel()
        self._restart_round()
        for listeners, cb in (
            (self.link.connect_listeners, self.wake),
            (self.link.disconnect_listeners, self._on_disconnect),
        ):
            if cb in listeners:
                listeners.remove(cb)

    # ------------------------------------------------------------------ internals

    def _schedule_tick(self) -> None:
        if self._tick_scheduled or self._closed:
            return
        self._tick_scheduled = True
        asyncio.get_running_loop().call_soon(self._tick)

    def _tick(self) -> None:
        self._tick_scheduled = False
        self._flush_acks()
        self._pump()

    def _pump(self) -> None:
        if self._closed or not self.link.connected or self._retry is not None:
            return
        while len(self._inflight) < self.window:
            room = min(self.batch, self.window - len(self._inflight))
            events = self.journal.pending(limit=room, after_seq=self._sent_upto)
            if not events:
                return
            for ev in events:
                fut = self.link.publish(self.topic, ev.to_json(), 1, False)
                self._inflight[ev.seq] = fut
                self._sent_upto = ev.seq
                self.published += 1
                fut.add_done_callback(self._make_done(self._round, ev.seq))
                if not self.link.connected:
                    return

    def _make_done(self, rnd: int, seq: int) -> Callable[[asyncio.Future[bool]], None]:
        def done(fut: asyncio.Future[bool]) -> None:
            if rnd != self._round:
                return  # from an abandoned round: that event is re-sent in the current one
            self._inflight.pop(seq, None)
            ok = (not fut.cancelled()) and fut.exception() is None and fut.result()
            if ok:
                self._acked.append(seq)
                self.delivered += 1
                self._schedule_tick()
            else:
                self._on_failure()

        return done

    def _on_failure(self) -> None:
        """A message was refused or lost: restart from the oldest unacknowledged event so that
        order is kept. If the link is still up (the broker refused), wait a little first."""
        self.failures += 1
        self._flush_acks()
        self._restart_round()
        if self.link.connected and not self._closed and self._retry is None:
            loop = asyncio.get_running_loop()
            self._retry = loop.call_later(self.retry_delay, self._retry_now)

    def _retry_now(self) -> None:
        self._retry = None
        self._schedule_tick()

    def _on_disconnect(self) -> None:
        self._flush_acks()
        self._restart_round()

    def _restart_round(self) -> None:
        self._round += 1
        self._inflight.clear()
        self._sent_upto = 0

    def _flush_acks(self) -> None:
        if not self._acked:
            return
        acked, self._acked = self._acked, []
        self.journal.mark_sent(acked)
