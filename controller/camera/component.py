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
import logging
from collections.abc import Callable
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
from controller.camera.store import SnapshotStore, snapshot_id
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

# a snapshot on its way to the office: (event id, snapshot id, jpeg bytes)
Publisher = Callable[[str, str, bytes], None]


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
        self.publishers: list[Publisher] = []
        self._creds: dict[str, Credentials | None] = {}
        # one client per camera, made at start: a TLS context costs ~10 ms of CPU, which must
        # not land on the loop in the turn after an alarm
        self._clients: dict[str, httpx.AsyncClient] = {}
        self._sem: asyncio.Semaphore | None = None
        self._tasks: set[asyncio.Task[None]] = set()
        self._deadline = site.timers.deadline(self._due, self._take_due)
        self.link: MqttLink | None = None
        self.sent: dict[str, bool | str] = {}  # snapshot id -> PUBACK (True), or why not

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

    def _publish(self, event_id: str, sid: str, data: bytes) -> None:
        link = self.link
        if link is None:
            return
        topic = f"{link.prefix}/snapshot/{event_id}/{sid}"

        def done(ok: bool, refused: str | None = None) -> None:
            self.sent[sid] = True if ok else (refused or "not acknowledged")

        if not link.send(topic, data, 1, False, done):
            self.sent[sid] = "broker link down"

    # ------------------------------------------------------------------ lifecycle
    def start(self) -> None:
        self.link = self._make_link()
        if self.link is not None:
            self.link.start()
            self.publishers.append(self._publish)
        for cam in self.cameras.values():
            try:
                self._creds[cam.id] = read_credentials(cam.credentials_file)
                self._clients[cam.id] = make_client(cam)
            except SnapshotError as e:
                self._creds[cam.id] = None
                self._trouble(cam, str(e))

    def close(self) -> None:
        self._deadline.cancel()
        if self._after_flush in self.site.logbook.flush_listeners:
            self.site.logbook.flush_listeners.remove(self._after_flush)
        for task in list(self._tasks):
            task.cancel()
        self._tasks.clear()
        self.bursts.clear()
        clients, self._clients = list(self._clients.values()), {}
        for client in clients:
            with contextlib.suppress(RuntimeError):
                asyncio.get_running_loop().create_task(client.aclose())
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

    def _spawn(self, coro: Any) -> None:
        task = asyncio.get_running_loop().create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _shot(self, b: Burst, cam: Camera, n: int) -> None:
        if self._sem is None:
            self._sem = asyncio.Semaphore(self.concurrency)
        try:
            async with self._sem:
                data = await fetch_snapshot(cam, self._creds.get(cam.id), self._clients.get(cam.id))
            taken = self.site.clock.now()
            sid = snapshot_id(b.event_id, cam.id, n)
            ref = await asyncio.to_thread(self.store.save, sid, data, taken)
        except SnapshotError as e:
            b.failed.append({"n": n, "reason": e.reason})
            self.last[cam.id] = {"ok": False, "reason": e.reason, "at": self.site.clock.now().isoformat()}
            self._trouble(cam, str(e))
        except OSError as e:
            b.failed.append({"n": n, "reason": "storage"})
            log.error("camera %s: cannot store a snapshot: %s", cam.id, e.strerror or e)
        else:
            ref["n"] = n
            ref["topic"] = f"snapshot/{b.event_id}/{sid}" if self.link is not None else None
            b.taken.append(ref)
            self.last[cam.id] = {"ok": True, "size": ref["size"], "at": ref["ts"]}
            self._restore(cam)
            for publish in self.publishers:
                publish(b.event_id, sid, data)
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
                       "bursts": sum(1 for b in self.bursts if b.camera == cid_)}  # fmt: skip
                for cid_ in self.cameras
            }
        }

    async def settle(self) -> None:
        """Wait for every snapshot under way (tests, and the end of a burst in `sim`)."""
        while self._tasks:
            await asyncio.gather(*list(self._tasks), return_exceptions=True)
