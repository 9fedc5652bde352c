"""Keypad key sequences (pure): CODE#, CODE*1..3, clearing, timeouts, over-long entries, and the
controller tying them to codes, lockout, permissions and duress, on a virtual clock."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given
from hypothesis import strategies as st

from controller.access import codes
from controller.access.codes import ScryptParams, hash_code
from controller.access.gate import AccessGate, Authenticator, Decision
from controller.clock import VirtualClock
from controller.config import Keypad, User
from controller.events import Event, EventDraft
from controller.keypad.logic import (
    EntryRefused,
    Feedback,
    KeypadController,
    KeypadOutput,
    KeypadSession,
    Request,
)

T0 = datetime(2026, 2, 17, 18, 20, tzinfo=UTC)
HALL_CFG = Keypad(
    id="keypad.hall",
    zones=["leadership", "finance"],
    rows=[6, 13, 19, 26],
    cols=[12, 16, 20],
    buzzer=21,
)
CODES = ("2468", "1357", "1358", "3690", "97531")


@pytest.fixture(autouse=True)
def fast_scrypt(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(codes, "DEFAULT_PARAMS", ScryptParams(n=2**10))


def press(session: KeypadSession, keys: str, clock: VirtualClock) -> list[KeypadOutput]:
    out: list[KeypadOutput] = []
    for k in keys:
        out += session.key(k, clock.now())
        clock.advance(timedelta(milliseconds=300))
    return out


def requests(out: list[KeypadOutput]) -> list[Request]:
    return [o for o in out if isinstance(o, Request)]


def refusals(out: list[KeypadOutput]) -> list[str]:
    return [o.reason for o in out if isinstance(o, EntryRefused)]


def sounds(out: list[KeypadOutput]) -> list[str]:
    return [o.sound for o in out if isinstance(o, Feedback)]


@pytest.fixture
def clock() -> VirtualClock:
    return VirtualClock(T0)


@pytest.fixture
def session() -> KeypadSession:
    return KeypadSession(HALL_CFG)


# ----------------------------------------------------------------------------- sequences


def test_code_hash_is_a_toggle_request(session: KeypadSession, clock: VirtualClock) -> None:
    out = press(session, "2468#", clock)
    (req,) = requests(out)
    assert (req.keypad, req.action, req.mode, req.code) == ("keypad.hall", "toggle", None, "2468")
    assert sounds(out) == ["key"] * 5
    assert session.phase == "idle" and session.next_due() is None


@pytest.mark.parametrize(("digit", "mode"), [("1", "away"), ("2", "home"), ("3", "night")])
def test_code_star_digit_arms_in_that_mode(
    session: KeypadSession, clock: VirtualClock, digit: str, mode: str
) -> None:
    (req,) = requests(press(session, f"12345678*{digit}", clock))
    assert (req.action, req.mode, req.code) == ("arm", mode, "12345678")


def test_star_alone_clears_and_star_star_clears_an_entry(
    session: KeypadSession, clock: VirtualClock
) -> None:
    out = press(session, "*", clock)
    assert out == [Feedback("key")] and session.phase == "idle"
    out = press(session, "97**", clock)
    assert requests(out) == [] and refusals(out) == [] and session.phase == "idle"
    (req,) = requests(press(session, "2468#", clock))
    assert req.code == "2468"  # nothing of the cleared digits is left


def test_hash_with_nothing_typed_is_ignored(session: KeypadSession, clock: VirtualClock) -> None:
    assert press(session, "##", clock) == [Feedback("key"), Feedback("key")]


@pytest.mark.parametrize("keys", ["2468*0", "2468*4", "2468*9", "2468*#"])
def test_bad_mode_is_refused(session: KeypadSession, clock: VirtualClock, keys: str) -> None:
    out = press(session, keys, clock)
    assert requests(out) == [] and refusals(out) == ["bad_mode"]
    assert sounds(out)[-1] == "refuse" and session.phase == "idle"


@pytest.mark.parametrize("keys", ["1#", "123#", "123*1"])
def test_too_short_is_refused_without_a_request(
    session: KeypadSession, clock: VirtualClock, keys: str
) -> None:
    out = press(session, keys, clock)
    assert requests(out) == [] and refusals(out) == ["too_short"]


def test_too_long_is_dropped_and_the_rest_swallowed(
    session: KeypadSession, clock: VirtualClock
) -> None:
    out = press(session, "123456789", clock)
    assert refusals(out) == ["too_long"] and sounds(out)[-1] == "refuse"
    assert session.phase == "overflow"
    out = press(session, "0123#", clock)  # the tail of the same entry: no request, no refusal
    assert requests(out) == [] and refusals(out) == []
    assert session.phase == "idle"
    (req,) = requests(press(session, "2468#", clock))
    assert req.code == "2468"


def test_too_long_then_star_clears(session: KeypadSession, clock: VirtualClock) -> None:
    press(session, "1234567890", clock)
    press(session, "*", clock)
    assert session.phase == "idle"
    (req,) = requests(press(session, "2468*2", clock))
    assert req.mode == "home"


def test_unfinished_entry_times_out_on_the_virtual_clock(
    session: KeypadSession, clock: VirtualClock
) -> None:
    press(session, "24", clock)
    due = session.next_due()
    assert due == T0 + timedelta(milliseconds=300) + HALL_CFG.entry_timeout
    clock.advance_to(due - timedelta(milliseconds=1))
    assert session.tick(clock.now()) == []
    clock.advance_to(due)
    out = session.tick(clock.now())
    assert refusals(out) == ["timeout"] and sounds(out) == ["refuse"]
    assert session.phase == "idle" and session.next_due() is None
    (req,) = requests(press(session, "2468#", clock))
    assert req.code == "2468"


def test_each_key_restarts_the_entry_timer(session: KeypadSession, clock: VirtualClock) -> None:
    for k in "2468":
        session.key(k, clock.now())
        clock.advance(timedelta(seconds=9))
    (req,) = requests(session.key("#", clock.now()))
    assert req.code == "2468"


def test_key_after_the_timeout_without_tick_starts_afresh(
    session: KeypadSession, clock: VirtualClock
) -> None:
    press(session, "99", clock)
    clock.advance(timedelta(seconds=30))
    out = press(session, "2468#", clock)
    assert refusals(out) == ["timeout"]
    (req,) = requests(out)
    assert req.code == "2468"


def test_mode_wait_also_times_out(session: KeypadSession, clock: VirtualClock) -> None:
    press(session, "2468*", clock)
    clock.advance(timedelta(seconds=10))
    assert refusals(session.tick(clock.now())) == ["timeout"]
    assert requests(press(session, "1", clock)) == []


def test_overflow_times_out_quietly(session: KeypadSession, clock: VirtualClock) -> None:
    press(session, "123456789", clock)
    clock.advance(timedelta(seconds=10))
    assert session.tick(clock.now()) == []  # it was already refused once
    assert session.phase == "idle"


def test_clock_stepped_back_does_not_drop_or_crash(
    session: KeypadSession, clock: VirtualClock
) -> None:
    press(session, "24", clock)
    clock.jump(T0 - timedelta(hours=1))
    assert session.tick(clock.now()) == []
    (req,) = requests(press(session, "68#", clock))
    assert req.code == "2468"


def test_unused_and_garbage_keys_change_nothing(
    session: KeypadSession, clock: VirtualClock
) -> None:
    press(session, "24", clock)
    assert session.key("A", clock.now()) == [Feedback("key")]
    assert session.key("D", clock.now()) == [Feedback("key")]
    for junk in (None, "", "##", 7, b"#", "٣"):
        session.key(junk, clock.now())
    (req,) = requests(press(session, "68#", clock))
    assert req.code == "2468"


def test_result_gives_the_buzzer_answer(session: KeypadSession, clock: VirtualClock) -> None:
    assert session.result(True, clock.now()) == [Feedback("accept")]
    assert session.result(False, clock.now()) == [Feedback("refuse")]


def test_the_typed_code_never_shows(session: KeypadSession, clock: VirtualClock) -> None:
    press(session, "9753", clock)
    assert "9753" not in repr(session) and "4" not in repr(session)
    (req,) = requests(press(session, "1#", clock))
    assert req.code == "97531"
    for text in (repr(req), str(req), f"{req}", f"{req!r}", repr([req]), repr({"r": req})):
        assert "97531" not in text and "<hidden>" in text


# ----------------------------------------------------------------------------- property


KEY_STREAM = st.lists(
    st.tuples(
        st.one_of(
            st.sampled_from(list("0123456789*#")),
            st.sampled_from(list("0123456789*#ABCD")),
            st.text(max_size=3),
            st.none(),
            st.integers(),
        ),
        st.integers(min_value=-2_000, max_value=15_000),  # ms between keys; negative = step back
    ),
    max_size=80,
)


@given(KEY_STREAM)
def test_random_key_streams_never_raise_and_only_request_digit_codes(
    stream: list[tuple[object, int]],
) -> None:
    session = KeypadSession(HALL_CFG)
    now = T0
    for key, gap_ms in stream:
        now += timedelta(milliseconds=gap_ms)
        outputs = session.tick(now) + session.key(key, now)
        for out in outputs:
            assert isinstance(out, Feedback | Request | EntryRefused)
            if isinstance(out, Request):
                assert out.code.isascii() and out.code.isdigit()
                assert 4 <= len(out.code) <= 8
                assert (out.action, out.mode) in {
                    ("toggle", None),
                    ("arm", "away"),
                    ("arm", "home"),
                    ("arm", "night"),
                }
                assert out.code not in repr(out)
        due = session.next_due()
        assert (due is None) == (session.phase == "idle")


# ----------------------------------------------------------------------------- controller


def site_auth() -> Authenticator:
    return Authenticator(
        [
            User(
                name="bao-ve-1",
                code_hash=hash_code("2468"),
                zones=["leadership", "finance", "perimeter"],
            ),
            User(
                name="giam-doc",
                code="1357",
                duress_code_hash=hash_code("1358"),
                zones=["leadership"],
            ),
            User(name="bao-ve-2", code="97531", zones=["perimeter"]),
        ]
    )


class Harness:
    """What the daemon does, with the identification done inline instead of in an executor."""

    def __init__(self, lang: str = "en") -> None:
        self.clock = VirtualClock(T0)
        self.gate = AccessGate(lang=lang, tz=ZoneInfo("Asia/Ho_Chi_Minh"))
        self.auth = site_auth()
        self.ctl = KeypadController(HALL_CFG, self.gate)
        self.states = {"leadership": "disarmed", "finance": "disarmed"}
        self.events: list[EventDraft] = []
        self.sounds: list[str] = []
        self.decisions: list[Decision] = []

    def keys(self, keys: str) -> Decision | None:
        last = None
        for k in keys:
            step = self.ctl.key(k, self.clock.now())
            self.sounds += step.sounds
            self.events += step.events
            self.decisions += step.decisions
            last = step.decisions[-1] if step.decisions else last
            if step.verify is not None:
                match = self.auth.identify(step.verify.code)
                d = self.ctl.complete(step.verify, match, self.clock.now(), self.states)
                self.events += d.events
                self.decisions.append(d)
                if d.ok:  # the engine's part, reduced to the zone state
                    for z in d.zones:
                        self.states[z] = f"armed_{d.mode}" if d.kind == "arm" else "disarmed"
                self.sounds += self.ctl.result(d.ok, self.clock.now())
                last = d
            self.clock.advance(timedelta(milliseconds=250))
        return last


def test_guard_arms_away_then_disarms() -> None:
    h = Harness()
    d = h.keys("2468*1")
    assert d is not None and (d.kind, d.mode, d.zones, d.user) == (
        "arm",
        "away",
        ("leadership", "finance"),
        "bao-ve-1",
    )
    assert h.sounds == ["key"] * 6 + ["accept"]
    d = h.keys("2468#")
    assert d is not None and (d.kind, d.zones) == ("disarm", ("leadership", "finance"))
    assert h.events == []  # arm/disarm events are the engine's


def test_director_disarms_only_leadership_and_duress_sounds_the_same() -> None:
    h = Harness()
    h.states = {"leadership": "armed_away", "finance": "armed_away"}
    d = h.keys("1357#")
    assert d is not None and (d.kind, d.zones, d.duress) == ("disarm", ("leadership",), False)
    normal_sounds = list(h.sounds)
    h.states["leadership"] = "armed_away"
    h.sounds.clear()
    d = h.keys("1358#")
    assert d is not None and (d.kind, d.zones, d.duress) == ("disarm", ("leadership",), True)
    assert h.sounds == normal_sounds == ["key"] * 5 + ["accept"]
    assert h.states["finance"] == "armed_away"
    (ev,) = h.events
    assert (ev.kind, ev.cid, ev.user) == ("duress", "E121", "giam-doc")


def test_five_wrong_codes_lock_the_keypad_for_five_minutes() -> None:
    h = Harness()
    for _ in range(5):
        d = h.keys("0000#")
        assert d is not None and d.reason == "wrong_code"
    assert [e.kind for e in h.events] == ["system"] * 5 + ["keypad_lockout"]
    assert all(e.cid == "E461" for e in h.events[:5])
    verified = h.auth.verifications
    h.sounds.clear()
    d = h.keys("2468#")
    assert d is not None and d.reason == "locked_out"
    assert h.sounds[-1] == "refuse"
    assert h.auth.verifications == verified  # the code was not even checked
    assert h.states == {"leadership": "disarmed", "finance": "disarmed"}
    # 5 minutes on the virtual clock after the lockout began
    h.clock.advance_to(h.gate.next_due() or T0)
    unlocked = h.gate.tick(h.clock.now())
    assert [e.detail["reason"] for e in unlocked] == ["lockout_ended"]
    d = h.keys("2468#")
    assert d is not None and (d.kind, d.mode) == ("arm", "away")


def test_user_without_the_keypads_zones_is_refused() -> None:
    h = Harness()
    d = h.keys("97531#")
    assert d is not None and d.reason == "not_permitted" and d.user == "bao-ve-2"
    assert h.sounds[-1] == "refuse"


def test_timeout_and_too_long_are_logged_at_the_keypad() -> None:
    h = Harness(lang="vi")
    h.keys("24")
    h.clock.advance_to(h.ctl.next_due() or T0)
    step = h.ctl.tick(h.clock.now())
    assert step.sounds == ("refuse",) and step.verify is None
    (ev,) = step.events
    assert ev.detail["reason"] == "timeout" and ev.kind == "system"
    assert ev.text == "Hủy thao tác nhập dở dang tại keypad.hall (quá thời gian)"
    h.keys("123456789")
    assert h.events[-1].detail["reason"] == "too_long"
    assert h.gate.lockout.failures("keypad.hall", h.clock.now()) == 0


def test_no_code_reaches_any_event_decision_or_repr() -> None:
    h = Harness()
    for keys in ("3690#", "2468*1", "1358#", "97531#", "1357*3", "12#", "123456789#", "3690#"):
        h.keys(keys)
    h.keys("24")
    h.clock.advance(timedelta(seconds=11))
    step = h.ctl.tick(h.clock.now())
    objects: list[object] = [*h.events, *h.decisions, *step.events, h.ctl, h.gate, h.auth]
    tz = ZoneInfo("Asia/Ho_Chi_Minh")
    for i, obj in enumerate(objects, start=1):
        text = repr(obj) + str(obj)
        if isinstance(obj, EventDraft):
            # a fixed id: a random one may contain four digits that look like a code
            ev = Event.from_draft(obj, site="office-a", seq=i, tz=tz, event_id="f" * 32)
            text += ev.to_json()
        for c in CODES:
            assert c not in text
