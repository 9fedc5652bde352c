"""The cameras on the site: a burst of snapshots for every alarm-class event, off the loop.

The component hears `events` only after the daemon has journaled them, so the siren (same loop
turn as the trigger) and the event itself (journaled, then sent by the outbox) never wait for a
camera. For each camera that looks at the event it plans a burst on the daemon's clock (the
first snapshot at once, then one every `interval`, through one `Deadline`), fetches each
snapshot as an asyncio task (httpx on the daemon's loop, at most `camera_storage.concurrency`
at once), writes it beside the logbook in a worker thread, and when the burst has ended
journals one `snapshot` event that references the alarm's id and each image (id, time, size,
sha256). Reporting sends that event like any other; the images go to the office on
`P/snapshot/<event id>` (docs/cameras.md).

A camera that fails is a trouble (E330) with its reason, journaled once and restored (R330)
at its next good snapshot; the alarm goes on unchanged whatever the camera does.
"""

from __future__ import annotations

import asyncio
import contextlib
import heapq
import logging
import sqlite3
from datetime import datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

import httpx

from controller import texts
from controller.camera.burst import Burst, cameras_for, plan
from controller.camera.fetch import (
    Credentials,
    SnapshotError,
    fetch_snapshot,
    make_client,
    read_credentials,
)
from controller.camera.onvif import snapshot_uri
from controller.camera.store import ORDER, REFUSED, SENT, SnapshotStore, Waiting, snapshot_id
from controller.camera.worker import CameraLoop
from controller.component import Component
from controller.contact_id import cid
from controller.events import EventDraft
from controller.preflight import unreadable_files
from controller.reporting.mqtt import MqttConfigError, MqttLink

if TYPE_CHECKING:
    from controller.config import Camera
    from controller.events import Event
    from controller.site import Site, Trouble

log = logging.getLogger(__name__)
# httpx logs every request at INFO: one line per snapshot is noise in the daemon's log
logging.getLogger("httpx").setLevel(logging.WARNING)

CID_CAMERA = 330
SNAPSHOT_DIR = "snapshots"

texts.register(
    {
        "camera.snapshots": {
            "vi": "Camera {camera}: {count} ảnh cho sự kiện #{seq}",
            "en": "Camera {camera}: {count} snapshots for event #{seq}",
        },
        "camera.trouble": {
            "vi": "Camera {camera} lỗi: {reason}",
            "en": "Camera {camera} trouble: {reason}",
        },
        "camera.restore": {
            "vi": "Camera {camera} hoạt động trở lại",
            "en": "Camera {camera} answers again",
        },
    }
)

WINDOW = 4  # images in flight to the broker at once: the rest wait in order
FRESH_KEPT = 16  # images just taken kept in memory for sending (more are read back from disk)


class Cameras(Component):
    """Every configured camera, its bursts and its trouble."""

    name = "cameras"
    publish = True  # the images to the office on their own link (tests of one part say False)

    def __init__(self, site: Site) -> None:
        super().__init__(site)
        cfg = site.config
        self.cameras: dict[str, Camera] = {c.id: c for c in cfg.cameras}
        limits = cfg.camera_storage
        self.store = SnapshotStore(
            Path(site.logbook.path).parent / SNAPSHOT_DIR, limits.max_bytes, limits.max_age
        )
        self.concurrency = limits.concurrency
        self.bursts: list[Burst] = []
        self.troubled: dict[str, str] = {}  # camera -> its trouble, as shown
        self.last: dict[str, dict[str, Any]] = {}  # camera -> last snapshot or failure
        self._creds: dict[str, Credentials | None] = {}
        self._uris: dict[str, str] = {}  # camera -> snapshot URL its ONVIF service gave
        self._asking: dict[str, asyncio.Lock] = {}
        # one client per camera, made at start: a TLS context costs ~10 ms of CPU, which must
        # not land on the loop in the turn after an alarm
        self._clients: dict[str, httpx.AsyncClient] = {}
        self._sem: asyncio.Semaphore | None = None
        self._worker = CameraLoop()  # the HTTP work, off the daemon's loop (worker.py)
        self._tasks: set[asyncio.Task[None]] = set()
        self._deadline = site.timers.deadline(self._due, self._take_due)
        self.link: MqttLink | None = None
        self.sent: dict[str, bool | str] = {}  # snapshot id -> PUBACK (True), or why not
        # the images on their way to the office: a heap in the order they came in
        self._queue: list[tuple[int, str, str]] = []
        self._queued: set[str] = set()
        self._inflight: dict[str, Waiting] = {}
        self._fresh: dict[str, bytes] = {}  # images just taken, sent without reading the file
        self._wake: asyncio.Event | None = None
        self._pump_task: asyncio.Task[None] | None = None
        self._answers: dict[int, list[str]] = {}
        self._recording: asyncio.Task[None] | None = None

    def _make_link(self) -> MqttLink | None:
        """The cameras' own broker link: images never queue in front of the events, and it
        honours the broker's Maximum Packet Size (an image over it is refused, not sent)."""
        cfg = self.site.config
        if not self.publish or not self.cameras or unreadable_files(cfg.mqtt):
            return None  # reporting already says the link's files are unreadable (E350)
        base = cfg.mqtt.client_id or f"officeguard-{cfg.site.id}"
        mqtt = cfg.mqtt.model_copy(update={"client_id": f"{base}-camera"})
        prefix = f"{mqtt.topic_prefix}/{cfg.site.id}"
        try:
            return MqttLink(mqtt, cfg.site.id, now=self.site.clock.now,
                            status_topic=f"{prefix}/camera/status")  # fmt: skip
        except MqttConfigError as e:
            log.error("camera images stay on the site: %s", e)
            return None

    # ------------------------------------------------------------------ to the office
    def _publish(self, event_id: str, sid: str, data: bytes, order: int | None = None) -> None:
        """A new image joins the office's queue, behind any backlog (docs/cameras.md)."""
        if self.link is None or order is None:
            return
        if self.link.connected and len(self._fresh) < FRESH_KEPT:
            self._fresh[sid] = data  # sent from memory; a backlog is read back from disk
        self._enqueue(Waiting(order, event_id, sid))

    def _enqueue(self, w: Waiting) -> None:
        if w.sid in self._queued or w.sid in self._inflight:
            return
        self._queued.add(w.sid)
        heapq.heappush(self._queue, (w.order, w.event_id, w.sid))
        self._wake_pump()

    def _wake_pump(self) -> None:
        if self._wake is not None:
            self._wake.set()

    async def _pump(self) -> None:
        """Hands the waiting images to the link in their order, at most WINDOW in flight;
        woken by a new image, a PUBACK and a reconnect."""
        assert self._wake is not None
        backlog = await asyncio.to_thread(self.store.waiting)
        for w in backlog:
            self._enqueue(w)
        if backlog:
            log.info("camera: %d images wait for the office from before", len(backlog))
        while True:
            await self._wake.wait()
            self._wake.clear()
            link = self.link
            while link is not None and link.connected and self._queue and len(self._inflight) < WINDOW:
                order, event_id, sid = heapq.heappop(self._queue)
                self._queued.discard(sid)
                data = self._fresh.pop(sid, None)
                if data is None:
                    data = await asyncio.to_thread(self.store.read, sid)
                if data is None:  # pruned while it waited: counted by the store (once)
                    await asyncio.to_thread(self.store.lost, sid)
                    continue
                if not link.connected or self.link is not link:
                    self._enqueue(Waiting(order, event_id, sid))
                    break
                self._send(link, Waiting(order, event_id, sid), data)

    def _send(self, link: MqttLink, w: Waiting, data: bytes) -> None:
        topic = f"{link.prefix}/snapshot/{w.event_id}/{w.sid}"

        def done(ok: bool, refused: str | None = None) -> None:
            self._inflight.pop(w.sid, None)
            if ok:
                self.sent[w.sid] = True
                self._answered(w.sid, SENT)
            elif refused is not None:  # the broker will never take it: not sent again
                self.sent[w.sid] = refused
                self._answered(w.sid, REFUSED)
            else:  # the link dropped first: back in its place for the next connection
                self.sent[w.sid] = "broker link down"
                self._enqueue(w)
            self._wake_pump()

        self._inflight[w.sid] = w
        if not link.send(topic, data, 1, False, done):
            self._inflight.pop(w.sid, None)
            self.sent[w.sid] = "broker link down"
            self._enqueue(w)

    def _answered(self, sid: str, state: int) -> None:
        """The broker's answers go to the delivery table in batches, off the loop."""
        self._answers.setdefault(state, []).append(sid)
        if self._recording is None:
            self._recording = asyncio.get_running_loop().create_task(self._record_answers())

    async def _record_answers(self) -> None:
        try:
            while self._answers:
                answers, self._answers = self._answers, {}
                for state, sids in answers.items():
                    try:
                        await asyncio.to_thread(self.store.mark, sids, state)
                    except (OSError, sqlite3.Error) as e:
                        log.error("camera: cannot record images as sent: %s", e)
        finally:
            self._recording = None

    def _link_up(self) -> None:
        self._wake_pump()

    def _link_down(self) -> None:
        self._fresh.clear()  # what waits now is read back from disk when the link returns
        # whatever the link held for this connection (in flight, or queued behind the broker's
        # Receive Maximum, which the link drops without a word) goes back in its place
        inflight, self._inflight = self._inflight, {}
        for w in inflight.values():
            self._enqueue(w)

    # ------------------------------------------------------------------ lifecycle
    def start(self) -> None:
        if self.cameras:
            self._worker.start()
        self.link = self._make_link()
        if self.link is not None:
            self.store.deliver = True
            self.link.connect_listeners.append(self._link_up)
            self.link.disconnect_listeners.append(self._link_down)
            self.link.start()
            self._wake = asyncio.Event()
            self._pump_task = asyncio.get_running_loop().create_task(self._pump())
        for cam in self.cameras.values():
            try:
                self._creds[cam.id] = read_credentials(cam.credentials_file)
                self._clients[cam.id] = make_client(cam)
            except SnapshotError as e:
                self._creds[cam.id] = None
                self._trouble(cam, str(e))
            else:
                if cam.onvif is not None:  # asked now, so the first alarm need not wait for it
                    with contextlib.suppress(RuntimeError):
                        self._spawn(self._discover_at_start(cam))

    def close(self) -> None:
        self._deadline.cancel()
        if self._after_flush in self.site.logbook.flush_listeners:
            self.site.logbook.flush_listeners.remove(self._after_flush)
        for task in list(self._tasks):
            task.cancel()
        self._tasks.clear()
        self.bursts.clear()
        if self._pump_task is not None:
            self._pump_task.cancel()
            self._pump_task = None
        self._queue.clear()
        self._queued.clear()
        self._inflight.clear()
        self._fresh.clear()
        self.store.close()
        clients, self._clients = list(self._clients.values()), {}

        async def close_clients() -> None:
            for client in clients:
                await client.aclose()

        self._worker.stop(close_clients())
        if self.link is not None:  # a reload: dropped at once (stop says goodbye first)
            link, self.link = self.link, None
            with contextlib.suppress(RuntimeError):
                asyncio.get_running_loop().create_task(link.close())

    async def stop(self, reason: str) -> None:
        link, self.link = self.link, None
        self.close()
        if link is not None:  # a goodbye on the cameras' status topic, then disconnect
            await link.close({"online": False, "reason": reason})

    def clock_stepped(self, delta: timedelta) -> None:
        for b in self.bursts:
            b.shift(delta)

    # ------------------------------------------------------------------ bursts
    def events(self, events: list[Event]) -> None:
        cameras = list(self.cameras.values())
        if not cameras:
            return
        now = self.site.clock.now()
        for ev in events:
            for cam in cameras_for(ev, cameras):
                self.bursts.append(
                    Burst(ev.id, ev.seq, cam.id, ev.zone, ev.sensor, plan(now, cam.burst, cam.interval))
                )
        journal = self.site.logbook
        if journal.writing():  # the events go to disk, then out: the first snapshot after that
            if self._after_flush not in journal.flush_listeners:
                journal.flush_listeners.append(self._after_flush)
        else:
            self._take_due()

    def _after_flush(self, ok: bool) -> None:
        """Told after the outbox's own listener, which has handed the events to the broker
        link in this same call: only now do the bursts start."""
        journal = self.site.logbook
        if self._after_flush in journal.flush_listeners:
            journal.flush_listeners.remove(self._after_flush)
        self._take_due()

    def _due(self) -> datetime | None:
        return min((b.due[0] for b in self.bursts if b.due), default=None)

    def _take_due(self) -> None:
        now = self.site.clock.now()
        for b in self.bursts:
            while b.due and b.due[0] <= now:
                b.due.pop(0)
                cam = self.cameras[b.camera]
                n = b.next_index(cam.burst) - 1
                b.running += 1
                self._spawn(self._shot(b, cam, n))
        self._deadline.reschedule()

    async def _snapshot_url(self, cam: Camera) -> str | None:
        """The camera's snapshot URL: its `url`, or the one its ONVIF Media service gave (asked
        once, then kept; asked again after the URL stops answering)."""
        if cam.onvif is None:
            return cam.url
        lock = self._asking.setdefault(cam.id, asyncio.Lock())
        async with lock:  # a burst's snapshots ask once between them
            if cam.id not in self._uris:
                client = self._clients.get(cam.id)
                if client is None:
                    raise SnapshotError("credentials", "the camera could not be set up")
                self._uris[cam.id] = await self._worker.run(
                    snapshot_uri(cam, self._creds.get(cam.id), client)
                )
                log.info("camera %s: ONVIF gives the snapshot URL %s", cam.id, self._uris[cam.id])
            return self._uris[cam.id]

    async def _discover_at_start(self, cam: Camera) -> None:
        try:
            await self._snapshot_url(cam)
        except SnapshotError as e:
            self.last[cam.id] = {"ok": False, "reason": e.reason, "at": self.site.clock.now().isoformat()}
            self._trouble(cam, str(e))

    def _spawn(self, coro: Any) -> None:
        task = asyncio.get_running_loop().create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _shot(self, b: Burst, cam: Camera, n: int) -> None:
        if self._sem is None:
            self._sem = asyncio.Semaphore(self.concurrency)
        try:
            async with self._sem:
                url = await self._snapshot_url(cam)
                try:
                    data = await self._worker.run(
                        fetch_snapshot(cam, self._creds.get(cam.id), self._clients.get(cam.id), url)
                    )
                except SnapshotError as e:
                    if cam.onvif is not None and e.reason in ("http", "unreachable"):
                        self._uris.pop(cam.id, None)  # moved? ask the camera again next time
                    raise
            taken = self.site.clock.now()
            sid = snapshot_id(b.event_id, cam.id, n)
            ref = await asyncio.to_thread(self.store.save, sid, data, taken, b.event_id)
        except SnapshotError as e:
            b.failed.append({"n": n, "reason": e.reason})
            self.last[cam.id] = {"ok": False, "reason": e.reason, "at": self.site.clock.now().isoformat()}
            self._trouble(cam, str(e))
        except OSError as e:
            b.failed.append({"n": n, "reason": "storage"})
            log.error("camera %s: cannot store a snapshot: %s", cam.id, e.strerror or e)
        else:
            order = ref.pop(ORDER, None)
            ref["n"] = n
            ref["topic"] = f"snapshot/{b.event_id}/{sid}" if self.link is not None else None
            b.taken.append(ref)
            self.last[cam.id] = {"ok": True, "size": ref["size"], "at": ref["ts"]}
            self._restore(cam)
            self._publish(b.event_id, sid, data, order)
        finally:
            b.running -= 1
            if b.done:
                self._finish(b)

    def _finish(self, b: Burst) -> None:
        if b in self.bursts:
            self.bursts.remove(b)
        lang = self.site.config.site.language
        text = texts.render(lang, "camera.snapshots", camera=b.camera, count=len(b.taken), seq=b.event_seq)
        draft = EventDraft(
            kind="snapshot",
            ts=self.site.clock.now(),
            text=text,
            zone=b.zone,
            sensor=b.sensor,
            detail=b.detail(),
        )
        self.site.record([draft])

    # ------------------------------------------------------------------ troubles
    def _trouble(self, cam: Camera, why: str) -> None:
        first = cam.id not in self.troubled
        self.troubled[cam.id] = why
        board_entry: Trouble = {"source": cam.id, "cid": cid(CID_CAMERA), "what": f"camera: {why}"}
        if cam.zones:
            board_entry["zone"] = cam.zones[0]
        self.site.trouble_board.raise_(f"camera:{cam.id}", board_entry)
        if first:
            lang = self.site.config.site.language
            self.site.record([EventDraft(
                kind="trouble", ts=self.site.clock.now(), cid=cid(CID_CAMERA),
                zone=cam.zones[0] if cam.zones else None, sensor=cam.id,
                text=texts.render(lang, "camera.trouble", camera=cam.id, reason=why),
                detail={"trouble": "camera", "reason": why},
            )])  # fmt: skip

    def _restore(self, cam: Camera) -> None:
        if self.troubled.pop(cam.id, None) is None:
            return
        self.site.trouble_board.clear(f"camera:{cam.id}")
        lang = self.site.config.site.language
        self.site.record([EventDraft(
            kind="trouble_restore", ts=self.site.clock.now(), cid=cid(CID_CAMERA, restore=True),
            zone=cam.zones[0] if cam.zones else None, sensor=cam.id,
            text=texts.render(lang, "camera.restore", camera=cam.id),
            detail={"trouble": "camera"},
        )])  # fmt: skip

    # ------------------------------------------------------------------ status
    def status(self) -> dict[str, Any] | None:
        if not self.cameras:
            return None
        return {
            "cameras": {
                cid_: {"trouble": self.troubled.get(cid_), "last": self.last.get(cid_),
                       "bursts": sum(1 for b in self.bursts if b.camera == cid_),
                       "snapshot_url": self._uris.get(cid_) or self.cameras[cid_].url}  # fmt: skip
                for cid_ in self.cameras
            },
            "camera_images": {  # on their way to the office (docs/cameras.md)
                "waiting": len(self._queue) + len(self._inflight),
                "dropped": self.store.dropped_count,
            },
        }

    async def settle(self) -> None:
        """Wait for every snapshot under way (tests, and the end of a burst in `sim`)."""
        while self._tasks:
            await asyncio.gather(*list(self._tasks), return_exceptions=True)
