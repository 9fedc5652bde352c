"""The one timer driver (controller/timers.py) and the trouble board (controller/site.py)."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

import pytest

from controller.clock import VirtualClock
from controller.site import TroubleBoard
from controller.timers import Deadline, TimerDriver, Waits

T0 = datetime(2026, 3, 4, 11, 0, tzinfo=UTC)


class Owner:
    """Something with a next due time and a record of when it fired."""

    def __init__(self, clock: VirtualClock, due: datetime | None) -> None:
        self.clock = clock
        self.due = due
        self.fired: list[datetime] = []

    def next_due(self) -> datetime | None:
        return self.due

    def fire(self) -> None:
        self.fired.append(self.clock.now())
        self.due = None


def one_deadline(after_s: int) -> tuple[VirtualClock, TimerDriver, Owner, Deadline]:
    """A clock, its driver, and one owner due `after_s` seconds from now, its timer set."""
    clock = VirtualClock(T0)
    driver = TimerDriver(clock)
    owner = Owner(clock, T0 + timedelta(seconds=after_s))
    deadline = driver.deadline(owner.next_due, owner.fire)
    deadline.reschedule()
    return clock, driver, owner, deadline


def test_a_deadline_fires_at_its_owners_due_time_and_once() -> None:
    clock, driver, owner, deadline = one_deadline(5)
    assert deadline.due == T0 + timedelta(seconds=5) and driver.pending() == 1
    clock.advance(timedelta(seconds=10))
    assert owner.fired == [T0 + timedelta(seconds=5)] and driver.pending() == 0


def test_rescheduling_moves_the_one_timer_instead_of_adding_one() -> None:
    clock, driver, owner, deadline = one_deadline(5)
    owner.due = T0 + timedelta(seconds=8)
    deadline.reschedule()
    clock.advance(timedelta(seconds=10))
    assert owner.fired == [T0 + timedelta(seconds=8)] and driver.pending() == 0


def test_after_a_clock_step_every_deadline_is_set_again_from_its_owner() -> None:
    clock = VirtualClock(T0)
    driver = TimerDriver(clock)
    owners = [Owner(clock, T0 + timedelta(seconds=s)) for s in (5, 7)]
    for owner in owners:
        driver.deadline(owner.next_due, owner.fire).reschedule()
    for owner in owners:  # each owner moved its own time by the step, as components do
        assert owner.due is not None
        owner.due += timedelta(hours=1)
    driver.reschedule_all()
    clock.advance(timedelta(seconds=10))
    assert [o.fired for o in owners] == [[], []]
    clock.advance(timedelta(hours=1))
    assert [len(o.fired) for o in owners] == [1, 1]


def test_a_cancelled_deadline_never_fires_and_close_cancels_them_all() -> None:
    clock = VirtualClock(T0)
    driver = TimerDriver(clock)
    first, second = Owner(clock, T0 + timedelta(seconds=1)), Owner(clock, T0 + timedelta(seconds=2))
    d1 = driver.deadline(first.next_due, first.fire)
    d1.reschedule()
    driver.deadline(second.next_due, second.fire).reschedule()
    d1.cancel()
    driver.close()
    clock.advance(timedelta(seconds=5))
    assert first.fired == [] and second.fired == [] and driver.pending() == 0


def test_the_trouble_board_keeps_one_trouble_per_key_in_the_order_raised() -> None:
    board = TroubleBoard()
    board.raise_("journal", {"source": "journal", "cid": "E300", "what": "a"})
    board.raise_("mqtt", {"source": "mqtt", "cid": "E350", "what": "b"})
    board.raise_("journal", {"source": "journal", "cid": "E300", "what": "c"})
    assert [t["what"] for t in board] == ["c", "b"] and len(board) == 2
    board.clear("journal")
    board.clear("never raised")
    assert "journal" not in board and "mqtt" in board and len(board) == 1


def test_awaited_waits_end_only_when_the_virtual_clock_gets_there():
    async def main():
        clock = VirtualClock(T0)
        waits = Waits(clock)
        slept = asyncio.ensure_future(waits.sleep(timedelta(seconds=5)))
        answer: asyncio.Future[str] = asyncio.get_running_loop().create_future()
        timed = asyncio.ensure_future(waits.within(timedelta(seconds=10), answer))
        await asyncio.sleep(0)
        assert (waits.sleeping, waits.timing) == (1, 1)
        clock.advance(timedelta(seconds=4))
        await asyncio.sleep(0)
        assert not slept.done()
        clock.advance(timedelta(seconds=1))
        await slept
        step = timedelta(hours=1) - timedelta(seconds=5)
        clock.jump(clock.now() + step)  # a step forward: the timeout keeps its length
        waits.clock_stepped(step)
        clock.run_due()
        await asyncio.sleep(0)
        assert not timed.done()
        clock.advance(timedelta(seconds=5))
        with pytest.raises(TimeoutError):
            await timed
        assert answer.cancelled() and (waits.sleeping, waits.timing) == (0, 0)
        quick: asyncio.Future[str] = asyncio.get_running_loop().create_future()
        quick.set_result("ACK")
        assert await waits.within(timedelta(seconds=1), quick) == "ACK"

    asyncio.run(main())
