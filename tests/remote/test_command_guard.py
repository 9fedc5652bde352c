"""Rate limits, the answer budget and flood detection for the command topics (pure: time is
passed in), and the per-source code checks of the access service (a burst, a lockout, the
same work whatever the code)."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime

import pytest

from controller.access.codes import hash_code
from controller.access.gate import Attempt
from controller.access.service import MAX_QUEUED_PER_SOURCE, AccessService
from controller.clock import VirtualClock
from controller.config import SiteConfig
from controller.events import EventDraft
from controller.remote import guard as cg
from controller.remote.guard import CommandGuard, FloodDetector, TokenBucket
from controller.reporting.exposure import exposures
from controller.timers import TimerDriver
from tests.conftest import config_with


class Now:
    def __init__(self) -> None:
        self.t = 1000.0

    def __call__(self) -> float:
        return self.t


def test_a_token_bucket_allows_its_burst_then_its_rate():
    b = TokenBucket(rate=2.0, burst=3.0)
    assert [b.take(0.0) for _ in range(4)] == [True, True, True, False]
    assert b.take(0.5) and not b.take(0.5)  # one token back after half a second
    assert [b.take(10.0) for _ in range(4)] == [True, True, True, False]  # capped at the burst


def test_each_topic_has_its_own_limit_and_all_share_a_total():
    now = Now()
    g = CommandGuard(now, topic_rate=1, topic_burst=2, total_rate=1, total_burst=3)
    assert [g.admit("a") for _ in range(3)] == [True, True, False]
    assert g.admit("b")  # its own bucket...
    assert not g.admit("c")  # ... but the total is spent
    assert g.counts["over_rate"] == 2 and g.counts["received"] == 5


def test_made_up_topics_share_one_bucket():
    now = Now()
    g = CommandGuard(now, topic_rate=1, topic_burst=1, total_rate=1000, total_burst=1000)
    admitted = sum(g.admit(f"t{i}") for i in range(cg.MAX_KEYS + 50))
    assert admitted == cg.MAX_KEYS + 1  # the first MAX_KEYS, then one for all the others


def test_refusals_before_a_code_check_are_answered_within_a_budget():
    now = Now()
    g = CommandGuard(now, answer_rate=1, answer_burst=3)
    assert [g.may_answer("a") for _ in range(5)] == [True, True, True, False, False]
    now.t += 1.0
    assert g.may_answer("a")
    assert g.counts["unanswered"] == 2


def test_dropped_messages_make_one_log_line_per_interval(caplog: pytest.LogCaptureFixture):
    now = Now()
    g = CommandGuard(now, topic_rate=0.01, topic_burst=1)
    with caplog.at_level("WARNING"):
        for _ in range(1000):
            g.admit("a")
        now.t += cg.LOG_EVERY
        g.admit("a")
    lines = [r for r in caplog.records if "dropped" in r.getMessage()]
    assert len(lines) == 2 and "999 over rate" in lines[1].getMessage()


def test_a_flood_pauses_a_topic_for_longer_each_time_it_goes_on():
    now = Now()
    f = FloodDetector(now)
    assert not any(f.dropped("cmd") for _ in range(cg.FLOOD_DROPS - 1))
    assert f.dropped("cmd") and f.pause_for("cmd") == cg.PAUSE_FIRST
    pauses = []
    for _ in range(6):
        now.t += f.pause_for("cmd")
        f.resumed("cmd")
        while not f.dropped("cmd"):
            pass
        pauses.append(f.pause_for("cmd"))
    assert pauses == [10.0, 20.0, 40.0, 60.0, 60.0, 60.0]
    now.t += cg.PAUSE_MAX
    f.resumed("cmd")
    now.t += cg.PAUSE_FORGET  # quiet for a long while: the next flood starts short again
    while not f.dropped("cmd"):
        pass
    assert f.pause_for("cmd") == cg.PAUSE_FIRST


def test_a_slow_trickle_is_never_a_flood():
    now = Now()
    f = FloodDetector(now)
    for _ in range(10 * cg.FLOOD_DROPS):
        now.t += 0.1
        assert not f.dropped("cmd")


# ----------------------------------------------------------------------------- code checks

T0 = datetime(2026, 3, 4, 12, 0, tzinfo=UTC)


def hashed_site() -> SiteConfig:
    return config_with(
        users=[{"name": "bao-ve-1", "code_hash": hash_code("2468")}],
    )


def service() -> tuple[AccessService, list[EventDraft]]:
    events: list[EventDraft] = []
    return AccessService(hashed_site(), TimerDriver(VirtualClock(T0)), events.extend), events


def attempt(source: str = "mqtt") -> Attempt:
    return Attempt(source=source, zones=("finance",), action="arm", channel="mqtt")


def test_a_burst_is_checked_against_the_lockout_before_each_code():
    async def main() -> None:
        svc, events = service()
        try:
            # sixteen guesses in one burst, the right code last: at most five are ever checked
            decisions = []
            for _ in range(4):
                burst = [svc.check(attempt(), "0000") for _ in range(4)]
                decisions += await asyncio.gather(*burst)
            right = await svc.check(attempt(), "2468")
            assert right.reason == "locked_out"
            assert svc.authenticator.verifications <= 5
            wrong = [e for e in events if e.cid == "E461"]
            assert len(wrong) == 5
            assert sum(e.kind == "keypad_lockout" for e in events) == 1
            assert {d.reason for d in decisions} <= {"wrong_code", "locked_out", "busy"}
        finally:
            svc.close()

    asyncio.run(main())


def test_a_locked_source_gets_the_same_answer_with_the_same_work_whatever_the_code():
    async def main() -> None:
        svc, events = service()
        try:
            assert (await svc.check(attempt(), "2468")).ok  # the right code, now cached
            for _ in range(5):
                await svc.check(attempt(), "0000")
            before, n_events = svc.authenticator.verifications, len(events)
            right = await svc.check(attempt(), "2468")
            wrong = await svc.check(attempt(), "1111")
            assert svc.authenticator.verifications == before  # neither was checked
            assert (right.reason, right.locked_until, right.events) == (
                wrong.reason, wrong.locked_until, wrong.events,
            )
            assert len(events) == n_events  # and no event for either
        finally:
            svc.close()

    asyncio.run(main())


def test_attempts_queued_per_source_are_capped_and_other_sources_go_on():
    async def main() -> None:
        svc, _ = service()
        try:
            many = [svc.check(attempt("mqtt"), "0000") for _ in range(MAX_QUEUED_PER_SOURCE + 3)]
            console = svc.check(attempt("mqtt:signed"), "2468")
            got = await asyncio.gather(*many, console)
            assert [d.reason for d in got[:-1]].count("busy") == 3
            assert got[-1].ok  # another source is not held up by the first one's queue
        finally:
            svc.close()

    asyncio.run(main())


# ----------------------------------------------------------------------------- exposure


def test_plaintext_mqtt_with_a_login_to_another_host_is_called_out():
    cfg = config_with(mqtt={"url": "mqtt://office.example:1883", "username": "office-a",
                            "password_file": "/etc/officeguard/mqtt.pass"})
    found = {e.path: e.message for e in exposures(cfg.mqtt)}
    assert "plaintext" in found["mqtt.url"]
    local = config_with(mqtt={"url": "mqtt://127.0.0.1:1883", "username": "office-a"})
    assert "mqtt.url" not in {e.path for e in exposures(local.mqtt)}
    tls = config_with(mqtt={"url": "mqtts://office.example:8883", "username": "office-a"})
    assert "mqtt.url" not in {e.path for e in exposures(tls.mqtt)}


def test_the_reference_site_loads_and_is_told_it_has_no_command_key(ref_config):
    assert ref_config.mqtt.require_signature is True
    assert [e.path for e in exposures(ref_config.mqtt)] == ["mqtt.command_key_file"]
    off = config_with(mqtt={"require_signature": False})
    assert "replay" in {e.path: e.message for e in exposures(off.mqtt)}["mqtt.require_signature"]
