"""The patrol supervisor: visits and time in, patrol outcomes out. Pure: no clock, no I/O.

For each plan it follows one round at a time, the next one `plan.next_round` finds:

- a visit from `due - tolerance` on counts for the round; the first one starts it
  (`started`), each one is `visited` (with the gap since the one before), or `out_of_order`
  in an ordered plan when an earlier checkpoint of the route is still unvisited;
- at `due + tolerance` a round not started is `late`; it may still be walked;
- the round is `completed` when every checkpoint is visited; at its deadline
  (`due + tolerance + round_time`) a round never started is `missed`, and one started but not
  finished has each unvisited checkpoint `skipped`;
- while a round runs, a guard silent for `max_gap` after the last visit sets the local
  buzzer going (`Buzz`), and `alert_grace` later is `silent`: the "no sign of life" alarm to
  the office (lone-worker safety). The next visit stops the buzzer and reports `alive`.

A visit outside any round is reported `visited` without a round. A clock step re-times
every plan from the new time (as schedules do): a round the step jumped over is not reported
missed (the clock was wrong, not the guard); a round in progress keeps its visits and its
silence is measured on the corrected clock.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime, timedelta, tzinfo
from typing import Any

from controller.config import Patrol
from controller.patrol.plan import ExpectedRound, next_round
from controller.schedule.transitions import Calendar

# what the supervisor reports, in the order a round goes through them
OUTCOMES = (
    "started",
    "visited",
    "out_of_order",
    "late",
    "skipped",
    "missed",
    "completed",
    "silent",
    "alive",
)


@dataclass(frozen=True)
class PatrolOut:
    """One thing to report: `what` (one of OUTCOMES) for `plan` at `at`."""

    what: str
    plan: str | None
    at: datetime
    checkpoint: str | None = None
    user: str | None = None
    detail: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Buzz:
    """Turn the plan's local buzzer on (a silent guard) or off."""

    plan: str
    on: bool


Out = PatrolOut | Buzz


@dataclass
class VisitRecord:
    checkpoint: str
    user: str | None
    at: datetime


@dataclass
class Round:
    expected: ExpectedRound
    visits: list[VisitRecord] = field(default_factory=list)
    late: bool = False
    silence: int = 0  # 0 none, 1 local buzzer, 2 office alarmed

    @property
    def started(self) -> bool:
        return bool(self.visits)

    def visited(self) -> set[str]:
        return {v.checkpoint for v in self.visits}


@dataclass
class PlanState:
    plan: Patrol
    current: Round | None = None
    last: dict[str, Any] | None = None  # the last round that ended: due, outcome, at


class PatrolSupervisor:
    """Follows every plan's rounds. Feed it `start`, `visit`, `tick` and `clock_stepped`."""

    def __init__(self, plans: list[Patrol], calendar: Calendar, tz: tzinfo) -> None:
        self.calendar = calendar
        self.tz = tz
        self.plans: dict[str, PlanState] = {p.id: PlanState(p) for p in plans}

    # ------------------------------------------------------------------ inputs
    def start(self, now: datetime, saved: dict[str, Any] | None = None) -> list[Out]:
        """Follow each plan's round due at `now`; `saved` (a `snapshot()` from before a restart
        or a reload) gives back the visits of a round still running, and each plan's last round."""
        out: list[Out] = []
        for st in self.plans.values():
            self._arm_next(st, now)
            out += self._restore(st, (saved or {}).get(st.plan.id))
        return out + self.tick(now)

    def snapshot(self) -> dict[str, Any]:
        """What `start` needs to carry a running round across a restart (JSON-able)."""
        snap: dict[str, Any] = {}
        for pid, st in self.plans.items():
            cur = st.current
            snap[pid] = {
                "last": st.last,
                "round": None
                if cur is None
                else {
                    "due": cur.expected.due.isoformat(),
                    "visits": [[v.checkpoint, v.user, v.at.isoformat()] for v in cur.visits],
                    "late": cur.late,
                    "silence": cur.silence,
                },
            }
        return snap

    def _restore(self, st: PlanState, saved: Any) -> list[Out]:
        if not isinstance(saved, dict):
            return []
        last = saved.get("last")
        st.last = last if isinstance(last, dict) else None
        r = saved.get("round")
        cur = st.current
        if not isinstance(r, dict) or cur is None:
            return []
        try:
            if datetime.fromisoformat(r["due"]) != cur.expected.due:
                return []  # another round by now: the saved one ended while we were away
            visits = [
                VisitRecord(str(c), u if isinstance(u, str) else None, datetime.fromisoformat(a))
                for c, u, a in r.get("visits", [])
                if c in st.plan.checkpoints
            ]
        except (KeyError, TypeError, ValueError):
            return []
        cur.visits = visits
        cur.late = bool(r.get("late"))
        cur.silence = int(r.get("silence") or 0) if visits else 0
        return [Buzz(st.plan.id, True)] if cur.silence else []

    def clock_stepped(self, delta: timedelta, now: datetime) -> list[Out]:
        """The time of day stepped by `delta`: visits already made happened that much real
        time ago on the corrected clock; each plan follows the round due at the new time."""
        out: list[Out] = []
        for st in self.plans.values():
            cur = st.current
            if cur is not None:
                for v in cur.visits:
                    v.at += delta
                if (
                    cur.expected.deadline(st.plan) <= now
                    or cur.expected.due - st.plan.tolerance > now
                ):
                    if cur.silence:
                        out.append(Buzz(st.plan.id, False))
                    st.current = None
            if st.current is None:
                self._arm_next(st, now)
        return out + self.tick(now)

    def visit(self, checkpoint: str, user: str | None, at: datetime) -> list[Out]:
        """A guard proved a visit at `checkpoint` (a badge's user, or None for a key switch)."""
        out = self.tick(at)
        took = False
        for st in self.plans.values():
            plan = st.plan
            cur = st.current
            if checkpoint not in plan.checkpoints or cur is None:
                continue
            if at < cur.expected.due - plan.tolerance:
                continue  # too early for this round
            took = True
            out += self._visit(st, cur, checkpoint, user, at)
        if not took:
            out.append(PatrolOut("visited", None, at, checkpoint, user, {"round": None}))
        return out

    def tick(self, now: datetime) -> list[Out]:
        """Everything due by `now`, in time order."""
        out: list[Out] = []
        while True:
            best: tuple[datetime, PlanState] | None = None
            for st in self.plans.values():
                t = self._next_point(st)
                if t is not None and t <= now and (best is None or t < best[0]):
                    best = (t, st)
            if best is None:
                return out
            out += self._fire(best[1], best[0])

    def next_due(self) -> datetime | None:
        times = [t for st in self.plans.values() if (t := self._next_point(st)) is not None]
        return min(times) if times else None

    # ------------------------------------------------------------------ state
    def state(self, plan_id: str, now: datetime) -> dict[str, Any]:
        """The plan's state for status, the retained topic and Home Assistant."""
        st = self.plans[plan_id]
        cur = st.current
        state = "idle"
        round_: dict[str, Any] | None = None
        if cur is not None:
            due = cur.expected.due
            if cur.silence == 2:
                state = "no_sign_of_life"
            elif cur.silence == 1:
                state = "silent"
            elif cur.started:
                state = "in_round"
            elif cur.late:
                state = "late"
            elif now >= due - st.plan.tolerance:
                state = "due"
            else:
                state = "waiting"
            round_ = {
                "due": self._iso(due),
                "night": cur.expected.night.isoformat(),
                "visited": [v.checkpoint for v in cur.visits],
                "remaining": [c for c in st.plan.checkpoints if c not in cur.visited()],
                "deadline": self._iso(cur.expected.deadline(st.plan)),
            }
        return {
            "state": state,
            "next_due": self._iso(cur.expected.due) if cur is not None else None,
            "round": round_,
            "last_round": st.last,
        }

    # ------------------------------------------------------------------ internals
    def _iso(self, t: datetime) -> str:
        return t.astimezone(self.tz).isoformat()

    def _arm_next(self, st: PlanState, after: datetime) -> None:
        nxt = next_round(st.plan, self.calendar, self.tz, after)
        st.current = Round(nxt) if nxt is not None else None

    def _round_detail(self, st: PlanState, r: Round, **more: Any) -> dict[str, Any]:
        night: date = r.expected.night
        return {"due": self._iso(r.expected.due), "night": night.isoformat(), **more}

    def _next_point(self, st: PlanState) -> datetime | None:
        cur = st.current
        if cur is None:
            return None
        plan = st.plan
        points = [cur.expected.deadline(plan)]
        if not cur.started and not cur.late:
            points.append(cur.expected.due + plan.tolerance)
        if cur.started:
            last = cur.visits[-1].at
            if cur.silence == 0:
                points.append(last + plan.max_gap)
            elif cur.silence == 1:
                points.append(last + plan.max_gap + plan.alert_grace)
        return min(points)

    def _fire(self, st: PlanState, t: datetime) -> list[Out]:
        cur = st.current
        assert cur is not None
        plan = st.plan
        out: list[Out] = []
        if t >= cur.expected.deadline(plan):
            return self._end(st, cur, t)
        if not cur.started and not cur.late and t >= cur.expected.due + plan.tolerance:
            cur.late = True
            out.append(PatrolOut("late", plan.id, t, detail=self._round_detail(st, cur)))
            return out
        if cur.started:
            last = cur.visits[-1].at
            if cur.silence == 0 and t >= last + plan.max_gap:
                cur.silence = 1
                out.append(Buzz(plan.id, True))
            elif cur.silence == 1 and t >= last + plan.max_gap + plan.alert_grace:
                cur.silence = 2
                silent_s = int((t - last).total_seconds())
                out.append(
                    PatrolOut(
                        "silent",
                        plan.id,
                        t,
                        checkpoint=cur.visits[-1].checkpoint,
                        user=cur.visits[-1].user,
                        detail=self._round_detail(st, cur, silent_s=silent_s),
                    )
                )
        return out

    def _visit(
        self, st: PlanState, cur: Round, checkpoint: str, user: str | None, at: datetime
    ) -> list[Out]:
        plan = st.plan
        out: list[Out] = []
        if cur.silence:
            out.append(Buzz(plan.id, False))
            if cur.silence == 2:
                out.append(
                    PatrolOut("alive", plan.id, at, checkpoint, user, self._round_detail(st, cur))
                )
            cur.silence = 0
        if not cur.started:
            late = at > cur.expected.due + plan.tolerance
            out.append(
                PatrolOut(
                    "started", plan.id, at, checkpoint, user, self._round_detail(st, cur, late=late)
                )
            )
        gap = (at - cur.visits[-1].at) if cur.visits else (at - cur.expected.due)
        seen = cur.visited()
        repeat = checkpoint in seen
        earlier = plan.checkpoints[: plan.checkpoints.index(checkpoint)]
        out_of_order = (
            plan.order == "ordered" and not repeat and any(c not in seen for c in earlier)
        )
        cur.visits.append(VisitRecord(checkpoint, user, at))
        detail = self._round_detail(
            st,
            cur,
            gap_s=int(gap.total_seconds()),
            n=len(cur.visits),
            of=len(plan.checkpoints),
        )
        if repeat:
            detail["repeat"] = True
        out.append(
            PatrolOut(
                "out_of_order" if out_of_order else "visited", plan.id, at, checkpoint, user, detail
            )
        )
        if set(plan.checkpoints) <= cur.visited():
            out += self._end(st, cur, at)
        return out

    def _end(self, st: PlanState, cur: Round, t: datetime) -> list[Out]:
        plan = st.plan
        out: list[Out] = []
        if cur.silence:
            out.append(Buzz(plan.id, False))
        seen = cur.visited()
        if not cur.started:
            outcome = "missed"
            out.append(PatrolOut("missed", plan.id, t, detail=self._round_detail(st, cur)))
        elif set(plan.checkpoints) <= seen:
            outcome = "late" if cur.late else "completed"
            took = cur.visits[-1].at - cur.visits[0].at
            out.append(
                PatrolOut(
                    "completed",
                    plan.id,
                    t,
                    cur.visits[-1].checkpoint,
                    cur.visits[-1].user,
                    self._round_detail(
                        st,
                        cur,
                        late=cur.late,
                        took_s=int(took.total_seconds()),
                        visits=len(cur.visits),
                    ),
                )
            )
        else:
            outcome = "incomplete"
            for c in plan.checkpoints:
                if c not in seen:
                    out.append(
                        PatrolOut("skipped", plan.id, t, c, None, self._round_detail(st, cur))
                    )
        st.last = {"due": self._iso(cur.expected.due), "outcome": outcome, "at": self._iso(t)}
        # the next round: the first one whose deadline is after this one's
        self._arm_next(st, max(t, cur.expected.deadline(plan)))
        return out
