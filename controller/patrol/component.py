"""Guard patrols on the site's port: the checkpoint drivers feed the pure supervisor
(controller/patrol/supervisor.py), whose outcomes become `patrol` events, the local buzzer
and, for a plan that says so, the exemption of the sensors on the guard's route.

Contact ID has no guard-tour code, so the nearest standard meanings are used (a central
station's software shows them with those names; `detail.patrol` says exactly what happened):

| outcome | code | why this one |
|---|---|---|
| round started / completed | E458 / R458 | "user on premises": the guard is on the round, then off it |
| checkpoint visited | E422 | "access report by user": who was where, when |
| visit out of order | E450 | "exception open/close": a visit, but not as planned |
| round late | E452 | "late to open/close": the round did not start on time |
| checkpoint skipped | E612 | "point not tested": a point of the round was not checked |
| round missed | E102 | "fail to report in": the check-in code of guard and lone-worker services |
| no sign of life / sign of life again | E101 / R101 | "personal emergency": a guard silent past the plan's gap may be down |
| unknown badge, or a disabled user's | E421 | "access denied" |

A garbled read (parity or length) is counted in the status, not reported: a reader's noise
must not flood the logbook. Neither a badge number nor its hash is ever logged or echoed.
"""

from __future__ import annotations

import asyncio
import logging
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from controller import texts
from controller.component import Component
from controller.config import Checkpoint, Patrol
from controller.engine.model import Bypass
from controller.events import EventDraft
from controller.patrol.badges import BadgeBook, BadgeOwner
from controller.patrol.supervisor import Buzz, Out, PatrolOut, PatrolSupervisor
from controller.schedule.calendar import OfficeCalendar

if TYPE_CHECKING:
    from controller.site import Site, Trouble

log = logging.getLogger(__name__)

STATE_KEY = "patrol"  # the supervisor's snapshot in the logbook's state table

# outcome -> Contact ID (see the module's docstring)
CIDS: dict[str, str] = {
    "started": "E458",
    "completed": "R458",
    "visited": "E422",
    "out_of_order": "E450",
    "late": "E452",
    "skipped": "E612",
    "missed": "E102",
    "silent": "E101",
    "alive": "R101",
    "unknown_badge": "E421",
    "refused_badge": "E421",
}

texts.register(
    {
        "patrol.started": {
            "vi": "Tuần tra {plan}: bắt đầu lượt {due} tại {checkpoint}",
            "en": "Patrol {plan}: round of {due} started at {checkpoint}",
        },
        "patrol.visited": {
            "vi": "Tuần tra {plan}: đã qua điểm {checkpoint}",
            "en": "Patrol {plan}: checkpoint {checkpoint} visited",
        },
        "patrol.visited_free": {
            "vi": "Điểm tuần tra {checkpoint}: có người quẹt thẻ ngoài lượt",
            "en": "Checkpoint {checkpoint} visited outside any round",
        },
        "patrol.out_of_order": {
            "vi": "Tuần tra {plan}: điểm {checkpoint} sai thứ tự",
            "en": "Patrol {plan}: checkpoint {checkpoint} visited out of order",
        },
        "patrol.late": {
            "vi": "Tuần tra {plan}: lượt {due} chưa bắt đầu (trễ)",
            "en": "Patrol {plan}: round of {due} has not started (late)",
        },
        "patrol.skipped": {
            "vi": "Tuần tra {plan}: lượt {due} bỏ qua điểm {checkpoint}",
            "en": "Patrol {plan}: round of {due} skipped checkpoint {checkpoint}",
        },
        "patrol.missed": {
            "vi": "Tuần tra {plan}: lượt {due} không được thực hiện",
            "en": "Patrol {plan}: round of {due} missed",
        },
        "patrol.completed": {
            "vi": "Tuần tra {plan}: hoàn thành lượt {due}",
            "en": "Patrol {plan}: round of {due} completed",
        },
        "patrol.silent": {
            "vi": "Tuần tra {plan}: bảo vệ không có dấu hiệu hoạt động từ điểm {checkpoint}",
            "en": "Patrol {plan}: no sign of life from the guard since {checkpoint}",
        },
        "patrol.alive": {
            "vi": "Tuần tra {plan}: bảo vệ đã có dấu hiệu hoạt động tại {checkpoint}",
            "en": "Patrol {plan}: sign of life from the guard at {checkpoint}",
        },
        "patrol.unknown_badge": {
            "vi": "Điểm tuần tra {checkpoint}: thẻ không xác định",
            "en": "Checkpoint {checkpoint}: unknown badge",
        },
        "refused.unknown_checkpoint": {
            "vi": "không có điểm tuần tra {name} loại này (các điểm: {known})",
            "en": "no checkpoint {name} of that kind (checkpoints: {known})",
        },
        "refused.bad_badge": {
            "vi": "số thẻ là 0 đến 4294967295; lỗi giả lập là parity hoặc length",
            "en": "a badge number is 0 to 4294967295; a garbled read is parity or length",
        },
        "patrol.refused_badge": {
            "vi": "Điểm tuần tra {checkpoint}: thẻ của người dùng đã bị khóa",
            "en": "Checkpoint {checkpoint}: badge of a disabled user refused",
        },
    }
)


class Patrols(Component):
    """The site's checkpoints and patrol plans."""

    name = "patrols"

    def __init__(self, site: Site) -> None:
        super().__init__(site)
        cfg = site.config
        self.checkpoints: dict[str, Checkpoint] = {c.id: c for c in cfg.checkpoints}
        self.plans: dict[str, Patrol] = {p.id: p for p in cfg.patrols}
        self.badges = BadgeBook(cfg.users)
        self.supervisor = PatrolSupervisor(
            list(cfg.patrols), OfficeCalendar(cfg.holidays, cfg.site.language), cfg.tz
        )
        self.counts: dict[str, dict[str, int]] = {
            c: {"reads": 0, "garbled": 0, "unknown": 0, "refused": 0, "presses": 0}
            for c in self.checkpoints
        }
        self.exempted: dict[str, dict[str, str | None]] = {}  # plan -> sensor -> user
        self.drivers: list[Any] = []
        self._faults: dict[str, str] = {}  # checkpoint -> why its pins could not be opened
        self.checking: set[asyncio.Future[BadgeOwner | None]] = set()  # badges in scrypt
        self._closed = False
        self.twins: dict[str, Any] = {}
        self._deadline = site.timers.deadline(self.supervisor.next_due, self._tick)

    # ------------------------------------------------------------------ lifecycle
    def start(self) -> None:
        if not self.plans and not self.checkpoints:
            return
        self._open_drivers()
        saved = self.site.logbook.load_state(STATE_KEY)
        self._handle(self.supervisor.start(self.site.clock.now(), saved))
        for pid, st in self.supervisor.plans.items():  # a restored round keeps its route open
            for v in st.current.visits if st.current is not None else []:
                self._exempt(pid, v.checkpoint, v.user)

    def _open_drivers(self) -> None:
        factory = getattr(self.site, "pin_factory", None)
        if factory is None or not self.checkpoints:
            return
        from hardware.backend import HardwareError, is_simulated
        from hardware.checkpoints import KeySwitch, SimKeySwitch, SimWiegandReader, WiegandReader

        loop = asyncio.get_running_loop()
        sim = is_simulated(factory)
        for c in self.checkpoints.values():
            # a checkpoint whose pins cannot be opened is a trouble, never a daemon that does
            # not start: the alarm matters more than the patrol
            try:
                if c.kind == "badge":
                    assert c.d0 is not None and c.d1 is not None
                    self.drivers.append(
                        WiegandReader(c.id, c.d0, c.d1, factory, loop, self.on_read, bits=c.bits)
                    )
                    if sim:
                        self.twins[c.id] = SimWiegandReader(c.d0, c.d1, factory, c.bits)
                else:
                    assert c.pin is not None
                    self.drivers.append(
                        KeySwitch(
                            c.id,
                            c.pin,
                            factory,
                            self.site.clock,
                            loop,
                            self.on_press,
                            self.site.config.hardware.debounce,
                        )
                    )
                    if sim:
                        self.twins[c.id] = SimKeySwitch(c.pin, factory)
            except HardwareError as e:
                log.error("checkpoint %s: %s", c.id, e)
                self._faults[c.id] = str(e)

    def close(self) -> None:
        self._closed = True
        self._deadline.cancel()
        for d in self.drivers:
            d.close()
        self.drivers = []
        for plan in list(self.exempted):
            self._end_exemption(plan)

    def clock_stepped(self, delta: timedelta) -> None:
        self._handle(self.supervisor.clock_stepped(delta, self.site.clock.now()))

    # ------------------------------------------------------------------ inputs
    def on_read(self, checkpoint: str, number: int | None, garbled: str | None) -> None:
        """A badge read (a number) or a garbled one, from the checkpoint's reader."""
        counts = self.counts[checkpoint]
        if number is None:
            counts["garbled"] += 1
            log.info("checkpoint %s: garbled badge read (%s), skipped", checkpoint, garbled)
            return
        counts["reads"] += 1
        done, owner = self.badges.known(str(number))
        if done:
            self._badge(checkpoint, owner)
            return
        # a badge not seen yet: scrypt against the hashes, in a worker thread (a card nobody
        # has would otherwise cost the loop one check per guard's badge, every time)
        loop = asyncio.get_running_loop()
        fut = loop.run_in_executor(None, self.badges.identify, str(number))
        self.checking.add(fut)
        fut.add_done_callback(lambda f: self._checked(f, checkpoint))

    def _checked(self, fut: asyncio.Future[BadgeOwner | None], checkpoint: str) -> None:
        self.checking.discard(fut)
        if not self._closed and not fut.cancelled():
            self._badge(checkpoint, fut.result())

    def _badge(self, checkpoint: str, owner: BadgeOwner | None) -> None:
        counts = self.counts[checkpoint]
        now = self.site.clock.now()
        if owner is None:
            counts["unknown"] += 1
            self._record([PatrolOut("unknown_badge", None, now, checkpoint)])
        elif owner.disabled:
            counts["refused"] += 1
            self._record([PatrolOut("refused_badge", None, now, checkpoint, owner.user)])
        else:
            self.visit(checkpoint, owner.user)

    def on_press(self, checkpoint: str, at: datetime) -> None:
        self.counts[checkpoint]["presses"] += 1
        self.visit(checkpoint, None)

    def visit(self, checkpoint: str, user: str | None) -> None:
        now = self.site.clock.now()
        outs = self.supervisor.visit(checkpoint, user, now)
        self._handle(outs)

    def _tick(self) -> None:
        self._handle(self.supervisor.tick(self.site.clock.now()))

    # ------------------------------------------------------------------ outcomes
    def _handle(self, outs: list[Out]) -> None:
        events: list[PatrolOut] = []
        for o in outs:
            if isinstance(o, Buzz):
                self._buzz(o)
            else:
                events.append(o)
        self._record(events)
        if outs:  # a running round survives a restart or a reload (its visits, its silence)
            self.site.logbook.save_state(STATE_KEY, self.supervisor.snapshot())
        for o in events:
            if o.plan is None:
                continue
            if o.what in ("visited", "out_of_order", "started") and o.checkpoint is not None:
                self._exempt(o.plan, o.checkpoint, o.user)
            elif o.what in ("completed", "missed", "skipped"):
                self._end_exemption(o.plan)
        self._deadline.reschedule()

    def _record(self, outs: list[PatrolOut]) -> None:
        if not outs:
            return
        lang = self.site.config.site.language
        tz = self.site.config.tz
        # stamped now: a round a restart caught up on (late, missed) is decided now, and the
        # logbook's times never go back; `detail.due` says which round it was
        now = self.site.clock.now()
        drafts = []
        for o in outs:
            key = o.what
            if o.what == "visited" and o.plan is None:
                key = "visited_free"
            cp = self.checkpoints.get(o.checkpoint) if o.checkpoint else None
            due = o.detail.get("due")
            due_hm = datetime.fromisoformat(due).astimezone(tz).strftime("%H:%M") if due else ""
            plan = self.plans.get(o.plan) if o.plan else None
            text = texts.render(
                lang,
                f"patrol.{key}",
                plan=(plan.name or plan.id) if plan else "",
                checkpoint=(cp.name or cp.id) if cp else (o.checkpoint or ""),
                due=due_hm,
            )
            detail = {"patrol": o.what, "plan": o.plan, **o.detail}
            drafts.append(
                EventDraft(
                    kind="patrol",
                    ts=max(o.at, now),
                    cid=CIDS.get(o.what),
                    text=text,
                    zone=cp.zone if cp else None,
                    sensor=o.checkpoint,
                    user=o.user,
                    detail=detail,
                )
            )
        self.site.record(drafts)

    def _buzz(self, b: Buzz) -> None:
        plan = self.plans[b.plan]
        if plan.buzzer is None:
            return
        bz = self.site.buzzer(plan.buzzer)
        if bz is None:
            return
        if b.on:
            bz.start_delay_beeps(self.site.clock.now() + plan.alert_grace)
        else:
            bz.stop()

    # ------------------------------------------------------------------ the route's exemption
    def _exempt(self, plan_id: str, checkpoint: str, user: str | None) -> None:
        plan = self.plans[plan_id]
        cp = self.checkpoints[checkpoint]
        if not plan.exempt or not cp.exempt:
            return
        held = self.exempted.setdefault(plan_id, {})
        sensors = self.site.engine.sensors
        for sid in cp.exempt:
            if sid in held or sid not in sensors or sensors[sid].bypassed:
                continue  # already lifted (by this round, or by a user: left as it is)
            held[sid] = user
            self.site.submit(Bypass(sid, True, user=user, source="patrol"))

    def _end_exemption(self, plan_id: str) -> None:
        held = self.exempted.pop(plan_id, {})
        sensors = self.site.engine.sensors
        for sid, user in held.items():
            if sid in sensors and sensors[sid].bypassed:
                self.site.submit(Bypass(sid, False, user=user, source="patrol"))

    def troubles(self) -> list[Trouble]:
        return [
            {"source": cid, "cid": "E333", "what": f"checkpoint {cid} not working: {why}"}
            for cid, why in self._faults.items()
        ]

    # ------------------------------------------------------------------ status, simulation
    def status(self) -> dict[str, Any] | None:
        if not self.plans and not self.checkpoints:
            return None
        now = self.site.clock.now()
        return {
            "patrols": {pid: self.supervisor.state(pid, now) for pid in self.plans},
            "checkpoints": {cid: dict(c) for cid, c in self.counts.items()},
        }

    async def sim_badge(self, checkpoint: str, number: int, garble: str | None = None) -> None:
        """Present a badge at a simulated reader (`garble`: "parity" or "length")."""
        from hardware.wiegand import encode

        twin = self.twins[checkpoint]
        frame = encode(number, twin.bits)
        if garble == "parity":
            frame[1] ^= 1
        elif garble == "length":
            frame = frame[:-3]
        twin.send(frame)
        # the edges' hand-over to the loop, then the line's silence that ends a frame (real
        # time: Wiegand timing is the reader's, not the daemon's clock)
        await asyncio.sleep(0)
        await asyncio.sleep(0.02)
        if self.checking:  # a badge not seen yet: its check, and its visit, before the reply
            await asyncio.wait(list(self.checking))
            await asyncio.sleep(0)

    async def sim_press(self, checkpoint: str) -> None:
        """Turn a simulated key switch and let it go (each held past the debounce time)."""
        twin = self.twins[checkpoint]
        for act in (twin.press, twin.release):
            act()
            await self._settle()

    async def _settle(self) -> None:
        for _ in range(3):
            await asyncio.sleep(0)
        clock = self.site.clock
        advance = getattr(clock, "advance", None)
        if clock.virtual and advance is not None:
            advance(self.site.config.hardware.debounce + timedelta(milliseconds=1))
            for _ in range(3):
                await asyncio.sleep(0)
