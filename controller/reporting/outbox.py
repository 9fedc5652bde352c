"""The outbox: sends the logbook's events to the security office, and never loses one.

Every event is written to the journal (the logbook on disk) first. The outbox then publishes the
events that the broker has not yet confirmed, oldest first, on `<prefix>/<site>/event` with QoS 1,
and marks an event delivered only when the broker acknowledges it (PUBACK). If the connection
drops, it stops; when the connection comes back it starts again from the oldest unconfirmed
event. So after an outage, a crash or a power cut every event still arrives, in order; an event
sent twice carries the same `id` both times, so the office can drop the copy.

A very long outage (the policy, with `limit` = config `mqtt.outbox_limit`):
- nothing is dropped silently, and the disk use is capped;
- at 80 % of the limit undelivered, a trouble "outbox nearly full" (Contact ID E350,
  communication trouble) is raised (through `on_capacity`) and journaled; it clears (R350) when
  the outbox is back under 70 %;
- past the limit, the oldest undelivered *low-priority* events (journal.LOW_PRIORITY_KINDS:
  system notices, arm/disarm reports, bypasses, sirens...) are marked expired: kept in the
  logbook, never published. One `system` event (E350) then says how many were given up and their
  seq range. Alarms, tampers, troubles, duress, drones... are never expired: if they alone fill
  the outbox it grows past the limit (their rate is bounded by the engine: swinger shutdown) and
  the trouble says so;
- the journal's retention never deletes an undelivered event; an expired one ages out like a
  delivered one.

An event the broker refuses (a PUBACK with a failure reason code such as "not authorized", or
too large for the broker's Maximum Packet Size) would be refused again on every re-send and hold
up every event behind it. It is marked refused in the logbook (kept, never published again),
the events behind it go on, and a trouble (E350) says which event and why, through
`on_refused`. One trouble event is journaled per episode, not per refused event (an ACL that
refuses the whole event topic would otherwise refuse each new trouble event in turn); it clears
(R350) when the broker acknowledges an event newer than the last one refused.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Sequence
from datetime import UTC, datetime, timedelta
from functools import partial
from typing import TYPE_CHECKING, Any, Protocol

from controller import texts
from controller.events import Event, EventDraft

if TYPE_CHECKING:
    from controller.clock import Clock, TimerHandle
    from controller.reporting.mqtt import Done

texts.register(
    {
        "outbox.nearly_full": {
            "vi": "Sự cố truyền tin: hàng đợi gửi sắp đầy ({depth}/{limit} sự kiện chưa gửi được)",
            "en": "Communication trouble: outbox nearly full ({depth}/{limit} events not delivered)",
        },
        "outbox.restored": {
            "vi": "Hết sự cố truyền tin: hàng đợi gửi còn {depth} sự kiện",
            "en": "Communication trouble restored: {depth} event(s) left in the outbox",
        },
        "outbox.expired": {
            "vi": "Hàng đợi gửi đầy: bỏ {n} sự kiện ít quan trọng chưa gửi (seq {first}-{last}),"
            " vẫn giữ trong sổ nhật ký",
            "en": "Outbox full: {n} low-priority event(s) not delivered (seq {first}-{last}),"
            " kept in the logbook",
        },
        "outbox.refused": {
            "vi": "Sự cố truyền tin: máy chủ từ chối sự kiện seq {seq} ({kind}): {why};"
            " vẫn giữ trong sổ nhật ký",
            "en": "Communication trouble: the broker refused event seq {seq} ({kind}): {why};"
            " kept in the logbook",
        },
        "outbox.refused_restored": {
            "vi": "Hết sự cố truyền tin: máy chủ lại nhận sự kiện ({refused} sự kiện bị từ chối)",
            "en": "Communication trouble restored: the broker takes events again"
            " ({refused} refused)",
        },
    }
)

WARN_RATIO = 0.8  # trouble at this share of the limit undelivered
CLEAR_RATIO = 0.7  # ... restored below this share
CID_TROUBLE = "E350"  # Contact ID: communication trouble (controller/contact_id.py)

log = logging.getLogger(__name__)


class JournalLike(Protocol):
    """What the outbox needs of the logbook: each report channel's share of it."""

    def register_channel(self, name: str) -> None: ...

    def pending(self, limit: int = 100, after_seq: int = 0, channel: str = ...) -> list[Event]: ...

    def mark_sent(self, seqs: Sequence[int], channel: str = ...) -> None: ...

    def outbox_depth(self, channel: str = ...) -> int: ...

    def expire_oldest(
        self, count: int, after_seq: int = 0, channel: str = ...
    ) -> tuple[int, int | None, int | None, dict[str, int]]: ...

    def append(self, drafts: Sequence[EventDraft]) -> list[Event]: ...

    def refuse(self, seq: int, channel: str = ...) -> str | None: ...


class LinkLike(Protocol):
    @property
    def connected(self) -> bool: ...

    def publish(
        self, topic: str, payload: str | bytes, qos: int = 1, retain: bool = False
    ) -> asyncio.Future[bool]: ...

    def send(
        self,
        topic: str,
        payload: str | bytes,
        qos: int,
        retain: bool,
        done: Done,
    ) -> bool: ...

    connect_listeners: list[Callable[[], None]]
    disconnect_listeners: list[Callable[[], None]]


class Outbox:
    """Publishes journaled events in `seq` order with up to `window` messages awaiting PUBACK.

    Runs entirely on the asyncio loop. It registers itself with the link's connect/disconnect
    listeners; the daemon calls `wake()` after journaling new events. Acknowledgements are
    written to the journal in batches (one `mark_sent` per loop turn).

    Long-outage policy (see the module docstring), active when `limit` is given:
    `on_capacity(trouble)` is called with {"source": "outbox", "cid": "E350", "what": ...} when
    the trouble starts or changes, and with None when it clears; `record(drafts)` journals the
    policy's own events (default: journal.append; the daemon passes its record_external so they
    reach its log and listeners); `now()` gives their time; `language` their text.

    An event the broker refuses is marked refused and skipped (see the module docstring);
    `on_refused(trouble)` is called like `on_capacity`, with None when that trouble clears.

    `channel` is the report channel whose share of the logbook this outbox works on ("mqtt";
    registered with the journal if it is new): its acknowledgements, refusals and expiries
    leave the other channels' deliveries alone.
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
        limit: int | None = None,
        on_capacity: Callable[[dict[str, Any] | None], None] | None = None,
        on_refused: Callable[[dict[str, Any] | None], None] | None = None,
        record: Callable[[list[EventDraft]], Any] | None = None,
        now: Callable[[], datetime] | None = None,
        language: str = "en",
        channel: str = "mqtt",
        refused_texts: tuple[str, str] = ("outbox.refused", "outbox.refused_restored"),
        peer: str = "broker",
        clock: Clock | None = None,
    ) -> None:
        if window < 1 or batch < 1:
            raise ValueError("window and batch must be at least 1")
        if limit is not None and limit < 10:
            raise ValueError("the outbox limit must be at least 10 events")
        self.journal = journal
        self.channel = channel
        # who refuses on this channel, and the texts of its trouble (a receiving centre's own)
        self.refused_texts = refused_texts
        self.peer = peer
        journal.register_channel(channel)
        self.link = link
        self.topic = topic
        self.window = window
        self.batch = batch
        self.retry_delay = retry_delay
        self._inflight: set[int] = set()  # seqs handed to the link, not yet acknowledged
        self._sent_upto = 0  # highest seq handed to the link in this round
        self._round = 0  # bumped whenever we restart from the oldest unacknowledged event
        self._acked: list[int] = []
        self._tick_scheduled = False
        self._retry: TimerHandle | asyncio.TimerHandle | None = None
        self._clock = clock  # the daemon's: a retry waits on its time (asyncio's without one)
        self._retry_at: datetime | None = None  # when, on that clock
        self._closed = False
        self.published = 0
        self.delivered = 0
        self.failures = 0
        self.limit = limit
        self.on_capacity = on_capacity
        self.on_refused = on_refused
        self.refused = 0  # events the broker refused since this outbox started
        self.refused_trouble: dict[str, Any] | None = None
        self._refused_in_trouble = 0
        self._last_refused = 0  # seq of the last event refused while the trouble is up
        self._record = record if record is not None else journal.append
        self._now = now if now is not None else (lambda: datetime.now(UTC))
        self.language = language
        self.trouble: dict[str, Any] | None = None
        self._trouble_stage: str | None = None
        self.expired = 0  # events given up by the policy since this outbox started
        self._expired_in_trouble = 0  # ... since the trouble was raised
        self._over_with_protected = False
        self._over_logged = False
        # expired events not yet told about in a notice
        self._unreported: dict[str, Any] = {"n": 0, "first": None, "last": None, "kinds": {}}
        link.connect_listeners.append(self.wake)
        link.disconnect_listeners.append(self._on_disconnect)
        # a journal with group commit says when the events of a loop turn are on disk
        self._flush_listeners: list[Callable[[bool], None]] | None = getattr(
            journal, "flush_listeners", None
        )
        if self._flush_listeners is not None:
            self._flush_listeners.append(self._on_flushed)
        if limit is not None:
            # a restart with a full outbox: raise the trouble without waiting for a new event
            try:
                asyncio.get_running_loop()
            except RuntimeError:
                pass
            else:
                self._schedule_tick()

    # ------------------------------------------------------------------ public

    def wake(self) -> None:
        """New events were journaled (or the link came up): publish what is waiting."""
        self._schedule_tick()

    def depth(self) -> int:
        """Events not yet acknowledged by the broker (on disk and in memory)."""
        self._flush_acks()
        return self.journal.outbox_depth(channel=self.channel)

    @property
    def inflight(self) -> int:
        return len(self._inflight)

    def close(self) -> None:
        """Stop publishing; record the acknowledgements received so far (and a notice for
        events given up since the last one)."""
        self._flush_acks()
        try:
            self._report_expired()
        except Exception:  # stopping: the count is in the log and the logbook's rows
            log.exception("outbox: could not journal the last expiry notice")
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
        if self._flush_listeners is not None and self._on_flushed in self._flush_listeners:
            self._flush_listeners.remove(self._on_flushed)

    def _on_flushed(self, ok: bool) -> None:
        # the events just made durable go out in this loop turn (an alarm waits for nothing
        # else); the tick's bookkeeping (acknowledgements, capacity) follows in its own turn
        if not self._closed:
            self._pump()
        self.wake()

    # ------------------------------------------------------------------ internals

    def _schedule_tick(self) -> None:
        if self._tick_scheduled or self._closed:
            return
        self._tick_scheduled = True
        asyncio.get_running_loop().call_soon(self._tick)

    def _tick(self) -> None:
        self._tick_scheduled = False
        if self._closed:  # a tick scheduled before close(): the journal may be closed by now
            return
        self._flush_acks()
        if self.limit is not None:
            try:
                self._check_capacity(self.limit)
            except Exception:  # the policy must never stop delivery
                log.exception("outbox: capacity check failed")
        self._pump()

    # ------------------------------------------------------------------ long-outage policy

    def _check_capacity(self, limit: int) -> None:
        depth = self.journal.outbox_depth(channel=self.channel)
        if depth > limit:
            # expire a little more than the excess, so this runs once per ~1 % of the limit
            slack = max(1, limit // 100)
            # never an event in flight: the broker may still acknowledge it
            n, first, last, kinds = self.journal.expire_oldest(
                depth - limit + slack, after_seq=self._sent_upto, channel=self.channel
            )
            if n:
                self.expired += n
                self._expired_in_trouble += n
                u = self._unreported
                u["n"] += n
                u["first"] = first if u["first"] is None else min(u["first"], first)
                u["last"] = last if u["last"] is None else max(u["last"], last)
                for k, c in kinds.items():
                    u["kinds"][k] = u["kinds"].get(k, 0) + c
                if u["n"] >= slack:  # one notice per ~1 % of the limit given up, not per event
                    self._report_expired()
                depth = self.journal.outbox_depth(channel=self.channel)
            elif not self._over_logged:
                self._over_logged = True
                log.error(
                    "outbox: %d events waiting, over the limit of %d, and none of them may be"
                    " given up now (alarms, tampers, troubles, or in flight): keeping them all",
                    depth,
                    limit,
                )
            self._over_with_protected = n == 0
        else:
            self._over_with_protected = False
            self._over_logged = False
        if depth >= WARN_RATIO * limit:
            self._raise_trouble(depth, limit)
        elif depth < CLEAR_RATIO * limit and self.trouble is not None:
            self._clear_trouble(depth)

    def _report_expired(self) -> None:
        """One `system` event (E350) saying how many events were given up and their seq range."""
        u = self._unreported
        if not u["n"]:
            return
        self._unreported = {"n": 0, "first": None, "last": None, "kinds": {}}
        log.warning(
            "outbox: over its limit of %s: %d low-priority event(s) given up (seq %s-%s)",
            self.limit,
            u["n"],
            u["first"],
            u["last"],
        )
        self._journal(
            EventDraft(
                kind="system",
                ts=self._now(),
                cid=CID_TROUBLE,
                text=texts.render(
                    self.language, "outbox.expired", n=u["n"], first=u["first"], last=u["last"]
                ),
                detail={
                    "outbox": "expired",
                    "expired": u["n"],
                    "first_seq": u["first"],
                    "last_seq": u["last"],
                    "kinds": u["kinds"],
                    "limit": self.limit,
                },
            )
        )

    def _raise_trouble(self, depth: int, limit: int) -> None:
        """Raise the trouble, or update it when its stage changes (not on every event)."""
        if self._over_with_protected:
            stage = "over"
            what = f"outbox over its limit ({depth}/{limit}) with alarms that are never given up"
        elif self._expired_in_trouble:
            stage = "full"
            what = f"outbox full ({limit}): oldest low-priority events not delivered (see the log)"
        else:
            stage = "nearly_full"
            what = f"outbox nearly full ({depth}/{limit} events waiting for the broker)"
        if self.trouble is None:
            self._journal(
                EventDraft(
                    kind="trouble",
                    ts=self._now(),
                    cid=CID_TROUBLE,
                    text=texts.render(self.language, "outbox.nearly_full", depth=depth, limit=limit),
                    detail={"source": "outbox", "depth": depth, "limit": limit},
                )
            )
        elif stage == self._trouble_stage:
            return
        self._trouble_stage = stage
        self.trouble = {"source": "outbox", "cid": CID_TROUBLE, "what": what}
        if self.on_capacity is not None:
            self.on_capacity(dict(self.trouble))

    def _clear_trouble(self, depth: int) -> None:
        self._report_expired()  # whatever was given up since the last notice
        self.trouble = None
        self._trouble_stage = None
        self._expired_in_trouble = 0
        self._journal(
            EventDraft(
                kind="trouble_restore",
                ts=self._now(),
                cid="R" + CID_TROUBLE[1:],
                text=texts.render(self.language, "outbox.restored", depth=depth),
                detail={"source": "outbox", "depth": depth, "expired": self.expired},
            )
        )
        if self.on_capacity is not None:
            self.on_capacity(None)

    def _journal(self, draft: EventDraft) -> None:
        self._record([draft])
        self._schedule_tick()

    def _pump(self) -> None:
        if self._closed or not self.link.connected or self._retry is not None:
            return
        while len(self._inflight) < self.window:
            room = min(self.batch, self.window - len(self._inflight))
            batch = self._next_batch(room)
            if not batch:
                return
            rnd = self._round
            for seq, payload in batch:
                self._inflight.add(seq)
                if not self.link.send(self.topic, payload, 1, False, partial(self._done, rnd, seq)):
                    # refused at once (the link went down meanwhile): as if nacked, next turn
                    asyncio.get_running_loop().call_soon(self._done, rnd, seq, False)
                    return
                self._sent_upto = seq
                self.published += 1

    def _next_batch(self, room: int) -> list[tuple[int, str]]:
        """(seq, JSON) of the next events to publish; straight from the rows when the journal
        can (no JSON parsed and dumped again per event)."""
        fast = getattr(self.journal, "pending_payloads", None)
        if fast is not None:
            batch: list[tuple[int, str]] = fast(
                limit=room, after_seq=self._sent_upto, channel=self.channel
            )
            return batch
        return [
            (ev.seq, ev.to_json())
            for ev in self.journal.pending(
                limit=room, after_seq=self._sent_upto, channel=self.channel
            )
        ]

    def _done(self, rnd: int, seq: int, ok: bool, refused: str | None = None) -> None:
        """The link's answer for one event (PUBACK, refusal or lost connection)."""
        if rnd != self._round:
            return  # from an abandoned round: that event is re-sent in the current one
        self._inflight.discard(seq)
        if ok:
            self._acked.append(seq)
            self.delivered += 1
            if self.refused_trouble is not None and seq > self._last_refused:
                self._clear_refused()
            self._schedule_tick()
        elif refused is not None:
            self._refuse(seq, refused)
        else:
            self._on_failure()

    def _refuse(self, seq: int, why: str) -> None:
        """The broker refused this very event: keep it in the logbook, never send it again,
        go on with the next ones, and say so with a trouble."""
        self.refused += 1
        self._refused_in_trouble += 1
        self._last_refused = max(self._last_refused, seq)
        kind = self.journal.refuse(seq, channel=self.channel) or "?"
        log.error(
            "outbox: the %s refused event seq %d (%s): %s; kept in the logbook, not sent again",
            self.peer,
            seq,
            kind,
            why,
        )
        what = f"{self.peer} refused event seq {seq} ({kind}): {why}"
        if self._refused_in_trouble > 1:
            what += f" ({self._refused_in_trouble} refused)"
        if self.refused_trouble is None:
            self._journal(
                EventDraft(
                    kind="trouble",
                    ts=self._now(),
                    cid=CID_TROUBLE,
                    text=texts.render(
                        self.language, self.refused_texts[0], seq=seq, kind=kind, why=why
                    ),
                    detail={
                        "source": "outbox",
                        "refused_seq": seq,
                        "refused_kind": kind,
                        "reason": why,
                    },
                )
            )
        self.refused_trouble = {"source": "outbox", "cid": CID_TROUBLE, "what": what}
        if self.on_refused is not None:
            self.on_refused(dict(self.refused_trouble))
        self._schedule_tick()

    def _clear_refused(self) -> None:
        n = self._refused_in_trouble
        self.refused_trouble = None
        self._refused_in_trouble = 0
        self._journal(
            EventDraft(
                kind="trouble_restore",
                ts=self._now(),
                cid="R" + CID_TROUBLE[1:],
                text=texts.render(self.language, self.refused_texts[1], refused=n),
                detail={"source": "outbox", "refused": n},
            )
        )
        if self.on_refused is not None:
            self.on_refused(None)

    def _on_failure(self) -> None:
        """A message was refused or lost: restart from the oldest unacknowledged event so that
        order is kept. If the link is still up (the broker refused), wait a little first."""
        self.failures += 1
        self._flush_acks()
        self._restart_round()
        if self.link.connected and not self._closed and self._retry is None:
            if self._clock is not None:
                self._retry_at = self._clock.now() + timedelta(seconds=self.retry_delay)
                self._retry = self._clock.call_at(self._retry_at, self._retry_now)
            else:
                self._retry = asyncio.get_running_loop().call_later(
                    self.retry_delay, self._retry_now
                )

    def clock_stepped(self, delta: timedelta) -> None:
        """The time of day stepped: a pause under way keeps its length (a step back must not
        hold delivery up for as long as the step)."""
        if self._clock is not None and self._retry is not None and self._retry_at is not None:
            self._retry.cancel()
            self._retry_at += delta
            self._retry = self._clock.call_at(self._retry_at, self._retry_now)

    def _retry_now(self) -> None:
        self._retry = None
        self._retry_at = None
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
        self.journal.mark_sent(acked, channel=self.channel)
