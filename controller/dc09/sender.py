"""The DC-09 sender: one message at a time to a receiving centre, over TCP or UDP, with the
centre's answers, retries, failover to a backup path and NULL polls.

It is the "link" of an Outbox (controller/reporting/outbox.py) on the logbook's "dc09"
channel: `send()` takes one event (its JSON, as the logbook keeps it) and tells `done(True)`
when the centre acknowledged it, so the outbox moves its cursor only then, in order; `done(False,
refused=...)` when the centre answered DUH (it does not know the message: sending it again
would not help; the outbox keeps the event in the logbook, marks it refused on this channel and
raises a trouble); `done(False)` when no path answered, after which `connected` is False until a
NULL poll gets an answer again, and the outbox waits.

What each answer does:
- ACK (or RSP) with our sequence number (and account, when it has one): the message is done;
- NAK: the receiver refused it, most often for its timestamp; a NAK that carries the receiver's
  time sets the clock offset used for every timestamp from then on, and the message is sent
  again at once (a NAK counts as an attempt, so a receiver that always NAKs cannot hold the
  sender);
- DUH: the receiver does not understand the message: refused, see above;
- nothing within `ack_timeout` (or a closed connection, or a frame that does not check): sent
  again after `retry_delay`, `attempts` times on a path, then on the other path; a path that
  fails all its attempts is down (a trouble), and when every path is down the link is.

Timeouts, back-off and polls follow the daemon's clock (controller/timers.py `Waits`), like
every other timing of the daemon: in simulation and in tests they end when the virtual clock is
moved, and a clock step moves them with it. Timestamps come from the same clock plus the offset
a NAK set.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from controller.clock import Clock, TimerHandle
from controller.config import Dc09, Dc09Path
from controller.dc09 import frame
from controller.dc09.frame import Frame, FrameError, Header
from controller.dc09.mapping import Message, Numbering
from controller.reporting.mqtt import Done
from controller.timers import Waits

log = logging.getLogger(__name__)

Listener = Callable[[], None]
MAX_ANSWER = 1024  # bytes: an answer is a short frame
SEQ_BLOCK = 100  # sequence numbers reserved in the logbook at a time


@dataclass
class PathState:
    """One path to the centre, as the sender sees it."""

    name: str  # "primary" or "backup"
    cfg: Dc09Path
    format: str = "ADM-CID"  # what its receiver is sent: ADM-CID or SIA-DCS
    up: bool = True  # until it fails all its attempts
    why: str = ""  # why it is down
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    stream: tuple[asyncio.StreamReader, asyncio.StreamWriter] | None = None
    poll: TimerHandle | None = None
    poll_at: datetime | None = None  # when its next NULL poll is due
    sent: int = 0
    acked: int = 0
    last_answer: str | None = None

    @property
    def where(self) -> str:
        return f"{self.cfg.protocol}://{self.cfg.host}:{self.cfg.port}"


@dataclass(frozen=True)
class Result:
    """What became of one message."""

    ok: bool
    answer: Frame | None = None
    path: str | None = None
    refused: str | None = None  # DUH: why it is refused for good
    attempts: int = 0


class _UdpAnswer(asyncio.DatagramProtocol):
    def __init__(self) -> None:
        self.answer: asyncio.Future[bytes] = asyncio.get_running_loop().create_future()

    def datagram_received(self, data: bytes, addr: Any) -> None:
        if not self.answer.done():
            self.answer.set_result(data)

    def error_received(self, exc: Exception) -> None:
        if not self.answer.done():
            self.answer.set_exception(exc)


class Dc09Sender:
    """Sends to a centre's receivers; an Outbox's link (`connected`, `send`, listeners).

    `clock` is the daemon's clock (every wait and timestamp); `on_path(name, up, why)` is told when a path goes down or
    comes back (the component raises and clears its trouble); `seq` the last sequence number a
    previous run reserved and `on_reserve(n)` is told each new reservation (`_next_seq`)."""

    def __init__(
        self,
        cfg: Dc09,
        numbering: Numbering,
        key: bytes | None,
        clock: Clock,
        on_path: Callable[[str, bool, str], None] | None = None,
        seq: int = 0,
        on_reserve: Callable[[int], None] | None = None,
    ) -> None:
        self.cfg = cfg
        self.numbering = numbering
        self.key = key
        self.clock = clock
        self.now = clock.now
        self.waits = Waits(clock)
        self.on_path = on_path
        self.header = Header(cfg.account, cfg.receiver, cfg.line)
        self.paths = [PathState("primary", cfg.primary, cfg.primary.format or cfg.format)]
        if cfg.backup is not None:
            self.paths.append(PathState("backup", cfg.backup, cfg.backup.format or cfg.format))
        self.offset = timedelta(0)  # the centre's time minus ours, from its last NAK
        self.seq = seq  # the last sequence number used (0: none yet)
        self.on_reserve = on_reserve
        self._seq_left = 0  # numbers left in the block reserved through on_reserve
        self.connect_listeners: list[Listener] = []
        self.disconnect_listeners: list[Listener] = []
        self._queue: deque[tuple[dict[str, Any], Done]] = deque()
        self._worker: asyncio.Task[None] | None = None
        self._probe: asyncio.Task[None] | None = None
        self._polls: set[asyncio.Task[None]] = set()
        self._closed = False
        self.delivered = 0
        self.refused = 0
        self.failovers = 0
        self.naks = 0

    # ------------------------------------------------------------------ the outbox's link

    @property
    def connected(self) -> bool:
        """Some path answered last time it was tried."""
        return any(p.up for p in self.paths)

    def publish(self, topic: str, payload: str | bytes, qos: int = 1, retain: bool = False) -> Any:
        raise NotImplementedError("a DC-09 link sends events only, through send()")

    def send(self, topic: str, payload: str | bytes, qos: int, retain: bool, done: Done) -> bool:
        """Queue one event for the centre; `done` is told what became of it."""
        if self._closed:
            return False
        event = json.loads(payload)
        self._queue.append((event, done))
        if self._worker is None or self._worker.done():
            self._worker = asyncio.get_running_loop().create_task(self._drain())
        return True

    # ------------------------------------------------------------------ lifecycle

    def start(self) -> None:
        for p in self.paths:
            self._schedule_poll(p)

    def clock_stepped(self, delta: timedelta) -> None:
        """The time of day stepped: every wait and poll keeps its length."""
        self.waits.clock_stepped(delta)
        for p in self.paths:
            if p.poll is not None and p.poll_at is not None:
                p.poll.cancel()
                self._arm_poll(p, p.poll_at + delta)

    def close(self) -> None:
        self._closed = True
        self.waits.close()
        for p in self.paths:
            if p.poll is not None:
                p.poll.cancel()
                p.poll = None
            if p.stream is not None:
                p.stream[1].close()
                p.stream = None
        for task in (self._worker, self._probe, *self._polls):
            if task is not None:
                task.cancel()
        while self._queue:  # the outbox sends them again from the logbook
            self._queue.popleft()[1](False)

    def status(self) -> dict[str, Any]:
        return {
            "connected": self.connected,
            "paths": {
                p.name: {
                    "where": p.where,
                    "format": p.format,
                    "up": p.up,
                    "why": p.why or None,
                    "sent": p.sent,
                    "acked": p.acked,
                    "last_answer": p.last_answer,
                }
                for p in self.paths
            },
            "offset_s": self.offset.total_seconds(),
            "delivered": self.delivered,
            "refused": self.refused,
            "failovers": self.failovers,
        }

    # ------------------------------------------------------------------ messages

    async def _drain(self) -> None:
        while self._queue and not self._closed:
            event, done = self._queue[0]
            message = self.numbering.message(event)
            if message is None:  # nothing a centre is told (no Contact ID code): done here
                self._queue.popleft()
                done(True)
                continue
            result = await self.deliver(message)
            if self._closed or not self._queue:
                return  # closed meanwhile: close() told the outbox
            self._queue.popleft()
            if result.ok:
                self.delivered += 1
                done(True)
            elif result.refused is not None:
                self.refused += 1
                done(False, result.refused)
            else:
                done(False)
                while self._queue:  # the outbox starts again from the oldest one
                    self._queue.popleft()[1](False)

    def _next_seq(self) -> int:
        """The next sequence number. Numbers are reserved `SEQ_BLOCK` at a time through
        `on_reserve` (the component keeps the last one reserved in the logbook), so a restart,
        even after a SIGKILL, goes on past every number used and never sends one again soon
        (a receiver may take a repeated number for a repeated message)."""
        self.seq = frame.next_seq(self.seq)
        if self.on_reserve is not None and self._seq_left <= 0:
            upto = self.seq
            for _ in range(SEQ_BLOCK - 1):
                upto = frame.next_seq(upto)
            self.on_reserve(upto)
            self._seq_left = SEQ_BLOCK
        self._seq_left -= 1
        return self.seq

    async def deliver(self, message: Message) -> Result:
        """Send one event (its data in each format: a path sends its own) until a path
        acknowledges it, every path has failed, or the centre refuses it (DUH). Paths that
        are up are tried first, the primary before."""
        seq = self._next_seq()
        order = [p for p in self.paths if p.up] + [p for p in self.paths if not p.up]
        attempts = 0
        first = order[0].name
        for path in order:
            if path.name != first:
                self.failovers += 1
                log.warning("dc09: failing over to the %s path (%s)", path.name, path.where)
            result, tries = await self._on_path(path, seq, message)
            attempts += tries
            if result is not None:
                return Result(result.ok, result.answer, path.name, result.refused, attempts)
        if self.connected is False:
            for cb in list(self.disconnect_listeners):
                cb()
            self._start_probe()
        return Result(False, attempts=attempts)

    async def _on_path(
        self, path: PathState, seq: int, message: Message | None
    ) -> tuple[Result | None, int]:
        """`attempts` sends on one path: a Result when the centre decided (ACK or DUH), None
        when the path gave no usable answer (it is then down). `message` None: a NULL poll."""
        why = "no answer"
        delay = self.cfg.retry_delay
        for attempt in range(1, self.cfg.attempts + 1):
            if self._closed:
                return Result(False), attempt - 1
            answer, why = await self._exchange(path, seq, message)
            if answer is not None:
                if answer.ident in ("ACK", "RSP"):
                    path.acked += 1
                    self._path_up(path)
                    return Result(True, answer), attempt
                if answer.ident == "DUH":
                    self._path_up(path)  # it answered: the path works
                    return Result(False, answer, refused="the centre answered DUH"), attempt
                if answer.ident == "NAK":
                    self.naks += 1
                    self._path_up(path)
                    if answer.at is not None:
                        self.offset = answer.at - self.now().replace(microsecond=0)
                        log.warning(
                            "dc09: NAK from the %s path: clock offset now %+.0fs, sending again",
                            path.name,
                            self.offset.total_seconds(),
                        )
                        continue  # again at once, with the centre's time
                    why = "NAK"
            if attempt < self.cfg.attempts:
                await self.waits.sleep(delay)
                delay = min(delay * 2, self.cfg.max_retry_delay)
        self._path_down(path, why)
        return None, self.cfg.attempts

    async def _exchange(
        self, path: PathState, seq: int, message: Message | None
    ) -> tuple[Frame | None, str]:
        """One send and its answer (or None and why not); `message` None: a NULL poll."""
        token, data = ("NULL", "") if message is None else (path.format, message[path.format])
        raw = frame.build(token, seq, self.header, data, self.now() + self.offset, key=self.key)
        timeout = self.cfg.ack_timeout
        async with path.lock:
            path.sent += 1
            try:
                if path.cfg.protocol == "udp":
                    reply = await self.waits.within(timeout, self._udp(path, raw))
                else:
                    reply = await self.waits.within(timeout, self._tcp(path, raw))
            except (TimeoutError, OSError, asyncio.IncompleteReadError) as e:
                self._drop_stream(path)
                why = "no answer" if isinstance(e, TimeoutError) else f"connection: {e}"
                return None, why
        try:
            answer = frame.parse(reply, self.key)
        except FrameError as e:
            self._drop_stream(path)
            log.warning("dc09: unreadable answer on the %s path: %s", path.name, e)
            path.last_answer = "unreadable"
            return None, f"unreadable answer: {e}"
        path.last_answer = answer.ident
        if answer.ident in ("ACK", "RSP", "DUH") and (
            answer.seq != seq or (answer.account not in (None, self.cfg.account))
        ):
            log.warning(
                "dc09: an answer for seq %04d account %s, not ours (seq %04d account %s)",
                answer.seq,
                answer.account,
                seq,
                self.cfg.account,
            )
            return None, "answer for another message"
        return answer, answer.ident

    async def _tcp(self, path: PathState, raw: bytes) -> bytes:
        if path.stream is None:
            reader, writer = await asyncio.open_connection(path.cfg.host, path.cfg.port)
            sock = writer.get_extra_info("socket")
            if sock is not None:
                import socket

                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            path.stream = (reader, writer)
        reader, writer = path.stream
        writer.write(raw)
        await writer.drain()
        buf = b""
        while b"\r" not in buf:
            chunk = await reader.read(MAX_ANSWER)
            if not chunk:
                raise OSError("the receiver closed the connection")
            buf += chunk
            if len(buf) > MAX_ANSWER:
                raise OSError("an answer longer than any DC-09 answer")
        return buf

    async def _udp(self, path: PathState, raw: bytes) -> bytes:
        loop = asyncio.get_running_loop()
        transport, proto = await loop.create_datagram_endpoint(
            _UdpAnswer, remote_addr=(path.cfg.host, path.cfg.port)
        )
        try:
            transport.sendto(raw)
            return await proto.answer
        finally:
            transport.close()

    def _drop_stream(self, path: PathState) -> None:
        if path.stream is not None:
            path.stream[1].close()
            path.stream = None

    # ------------------------------------------------------------------ paths and polls

    def _path_up(self, path: PathState) -> None:
        if path.up:
            return
        was_connected = self.connected
        path.up, path.why = True, ""
        log.warning("dc09: the %s path (%s) answers again", path.name, path.where)
        if self.on_path is not None:
            self.on_path(path.name, True, "")
        if not was_connected:
            for cb in list(self.connect_listeners):
                cb()

    def _path_down(self, path: PathState, why: str) -> None:
        if not path.up:
            return
        path.up, path.why = False, why
        self._drop_stream(path)
        log.error("dc09: the %s path (%s) is down: %s", path.name, path.where, why)
        if self.on_path is not None:
            self.on_path(path.name, False, why)

    def _schedule_poll(self, path: PathState) -> None:
        if path.cfg.poll <= timedelta(0) or self._closed:
            return
        self._arm_poll(path, self.clock.now() + path.cfg.poll)

    def _arm_poll(self, path: PathState, when: datetime) -> None:
        path.poll_at = when
        path.poll = self.clock.call_at(when, lambda: self._spawn_poll(path))

    def _spawn_poll(self, path: PathState) -> None:
        path.poll = path.poll_at = None
        # the loop keeps only a weak reference to a task: hold it until it is done
        task = asyncio.get_running_loop().create_task(self._poll(path))
        self._polls.add(task)
        task.add_done_callback(self._polls.discard)

    async def _poll(self, path: PathState) -> None:
        """A NULL message on one path (the link test the centre supervises)."""
        try:
            if not self._closed:
                await self.poll(path)
        finally:
            self._schedule_poll(path)

    async def poll(self, path: PathState) -> bool:
        """One NULL poll with its retries on `path`: True when the centre answered."""
        result, _ = await self._on_path(path, self._next_seq(), None)
        return result is not None and result.ok

    def _start_probe(self) -> None:
        """Every path is down: NULL polls with a growing back-off until one answers (a path's
        own `poll` may be far longer than an outage should last)."""
        if self._probe is None or self._probe.done():
            self._probe = asyncio.get_running_loop().create_task(self._probing())

    async def _probing(self) -> None:
        delay = self.cfg.retry_delay
        while not self.connected and not self._closed:
            await self.waits.sleep(delay)
            for path in self.paths:
                with contextlib.suppress(FrameError):
                    answer, _ = await self._exchange(path, self._next_seq(), None)
                    if answer is not None:
                        self._path_up(path)
                        break
            delay = min(delay * 2, self.cfg.max_retry_delay)
