"""Users, codes and lockout: identification, permissions, duress, lockout, refusal events."""

from __future__ import annotations

import json
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import jsonschema
import pytest

from controller import texts
from controller.access import codes
from controller.access.codes import ScryptParams, hash_code
from controller.access.gate import (
    AccessGate,
    Attempt,
    Authenticator,
    Decision,
    Lockout,
    Match,
    may_operate,
)
from controller.config import User
from controller.events import Event, EventDraft, event_schema

T0 = datetime(2026, 2, 17, 18, 20, tzinfo=UTC)  # 01:20 in Ha Noi, Tết night
FAST = ScryptParams(n=2**10, r=8, p=1)
HALL = ("leadership", "finance")
CODES = ("2468", "1357", "1358", "864209", "55501234")


@pytest.fixture(autouse=True)
def fast_scrypt(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(codes, "DEFAULT_PARAMS", FAST)


def site_users() -> list[User]:
    """The reference site's users: plain codes, as in config/reference-site.yaml."""
    return [
        User(name="bao-ve-1", code="2468", zones=["leadership", "finance", "perimeter"]),
        User(name="giam-doc", code="1357", duress_code="1358", zones=["leadership"]),
    ]


def hashed_users() -> list[User]:
    return [
        User(name="bao-ve-1", code_hash=hash_code("2468"), zones=None),
        User(
            name="giam-doc",
            code_hash=hash_code("1357"),
            duress_code_hash=hash_code("1358"),
            zones=["leadership"],
        ),
        User(name="ke-toan", code_hash=hash_code("864209"), zones=["finance"]),
    ]


def assert_no_code(*objects: object) -> None:
    for obj in objects:
        text = repr(obj) + str(obj)
        if isinstance(obj, EventDraft):
            # a fixed id: a random one may contain four digits that look like a code
            tz = ZoneInfo("Asia/Ho_Chi_Minh")
            ev = Event.from_draft(obj, site="office-a", seq=1, tz=tz, event_id="f" * 32)
            text += ev.to_json()
        for c in CODES:
            assert c not in text, f"a code leaked into {type(obj).__name__}"


def validate(events: tuple[EventDraft, ...] | list[EventDraft]) -> None:
    schema = event_schema()
    for i, draft in enumerate(events, start=1):
        ev = Event.from_draft(draft, site="office-a", seq=i, tz=ZoneInfo("Asia/Ho_Chi_Minh"))
        jsonschema.validate(ev.to_dict(), schema)
        assert ev.text


# ----------------------------------------------------------------------------- Authenticator


def test_plain_codes_identify_users_without_scrypt() -> None:
    auth = Authenticator(site_users())
    assert auth.identify("2468") == Match("bao-ve-1", False, ("leadership", "finance", "perimeter"))
    assert auth.identify("1357") == Match("giam-doc", False, ("leadership",))
    assert auth.identify("1358") == Match("giam-doc", True, ("leadership",))
    assert auth.identify("0000") is None
    assert auth.verifications == 0
    assert auth.problems == []


@pytest.mark.parametrize("bad", [None, 2468, "", "123", "123456789", "24a8", "2468\n", b"2468"])
def test_malformed_input_is_no_match(bad: object) -> None:
    auth = Authenticator(hashed_users())
    assert auth.identify(bad) is None
    assert auth.verifications == 0  # refused before any slow hash


def test_hashed_codes_and_the_verified_code_cache() -> None:
    auth = Authenticator(hashed_users())
    m = auth.identify("864209")
    assert m == Match("ke-toan", False, ("finance",))
    first = auth.verifications
    assert 1 <= first <= 4
    assert auth.identify("864209") == m
    assert auth.verifications == first  # second time: from the cache, no scrypt

    assert auth.identify("1358") == Match("giam-doc", True, ("leadership",))
    assert auth.identify("2468") == Match("bao-ve-1", False, None)
    before = auth.verifications
    assert auth.identify("1357") == Match("giam-doc", False, ("leadership",))
    # every other hashed code is already known, so only the director's hash is tried
    assert auth.verifications == before + 1
    # now a wrong code costs nothing: no hashed code is left unknown
    assert auth.identify("9999") is None
    assert auth.verifications == before + 1


def test_wrong_code_is_tried_against_every_unknown_hash() -> None:
    auth = Authenticator(hashed_users())
    assert auth.identify("0000") is None
    assert auth.verifications == 4
    assert auth.identify("0000") is None  # wrong codes are never cached
    assert auth.verifications == 8


def test_cache_is_per_authenticator() -> None:
    users = hashed_users()
    a, b = Authenticator(users), Authenticator(users)
    a.identify("2468")
    n = b.verifications
    assert b.identify("2468") is not None
    assert b.verifications > n


def test_identify_is_thread_safe() -> None:
    auth = Authenticator(hashed_users())
    tries = ["2468", "1357", "1358", "864209", "0000", "2468", "1357", "4242"] * 4
    with ThreadPoolExecutor(max_workers=4) as pool:
        results = list(pool.map(auth.identify, tries))
    expected = {
        "2468": "bao-ve-1",
        "1357": "giam-doc",
        "1358": "giam-doc",
        "864209": "ke-toan",
    }
    for code, res in zip(tries, results, strict=True):
        if code in expected:
            assert res is not None and res.user == expected[code]
            assert res.duress == (code == "1358")
        else:
            assert res is None


def test_malformed_hash_is_reported_and_never_matches() -> None:
    users = [
        User(name="a", code_hash="scrypt$nonsense"),
        User(name="b", code="2468", duress_code_hash="scrypt$1024$8$1$!!$!!"),
    ]
    auth = Authenticator(users)
    assert len(auth.problems) == 2
    assert "users[0] (a)" in auth.problems[0] and "never be accepted" in auth.problems[0]
    assert auth.identify("2468") == Match("b", False, None)
    assert auth.identify("1358") is None


def test_duplicate_plain_codes_are_refused_without_naming_the_code() -> None:
    users = [User(name="a", code="2468"), User(name="b", code="1111", duress_code="2468")]
    with pytest.raises(ValueError) as info:
        Authenticator(users)
    assert "2468" not in str(info.value)
    assert "users[1]" in str(info.value)


def test_nothing_shows_a_code() -> None:
    auth = Authenticator(site_users() + hashed_users()[2:])
    m = auth.identify("1358")
    assert_no_code(auth, m, site_users()[0])
    assert "1358" not in repr(vars(auth).get("_entries"))


def test_permissions() -> None:
    director = Match("giam-doc", False, ("leadership",))
    guard = Match("bao-ve-1", False, None)
    assert director.permitted(HALL) == ("leadership",)
    assert guard.permitted(HALL) == HALL
    assert may_operate(director, ["leadership"]) and not may_operate(director, HALL)
    assert may_operate(site_users()[0], HALL)
    assert may_operate(User(name="x", code="4321"), ["anything"])


# ----------------------------------------------------------------------------- Lockout


def test_five_wrong_within_five_minutes_lock_for_five_minutes() -> None:
    lo = Lockout()
    starts = [lo.failure("keypad.hall", T0 + timedelta(seconds=50 * i)) for i in range(5)]
    assert starts == [False, False, False, False, True]
    last = T0 + timedelta(seconds=200)
    assert lo.check("keypad.hall", last) == last + timedelta(minutes=5)
    assert lo.check("keypad.hall", last + timedelta(minutes=4, seconds=59)) is not None
    assert lo.check("keypad.hall", last + timedelta(minutes=5)) is None
    assert lo.next_due() == last + timedelta(minutes=5)


def test_five_wrong_spread_over_more_than_five_minutes_do_not_lock() -> None:
    lo = Lockout()
    for i in range(20):  # one every 76 s: never five inside a 5-minute window
        assert lo.failure("keypad.hall", T0 + timedelta(seconds=76 * i)) is False
        assert lo.check("keypad.hall", T0 + timedelta(seconds=76 * i)) is None
    assert lo.failures("keypad.hall", T0 + timedelta(seconds=76 * 19)) == 4


def test_failures_exactly_five_minutes_apart_do_not_count_together() -> None:
    lo = Lockout()
    for i in range(4):
        lo.failure("k", T0 + timedelta(seconds=i))
    assert lo.failure("k", T0 + timedelta(minutes=5)) is False  # the first one has aged out


def test_failure_during_lockout_neither_counts_nor_extends() -> None:
    lo = Lockout()
    for i in range(5):
        lo.failure("k", T0 + timedelta(seconds=i))
    until = lo.check("k", T0 + timedelta(seconds=4))
    assert lo.failure("k", T0 + timedelta(minutes=2)) is False
    assert lo.check("k", T0 + timedelta(minutes=2)) == until
    # after the lockout the count starts from zero
    after = T0 + timedelta(minutes=6)
    assert lo.failure("k", after) is False
    assert lo.failures("k", after) == 1


def test_sources_are_independent() -> None:
    lo = Lockout()
    for i in range(5):
        lo.failure("keypad.hall", T0 + timedelta(seconds=i))
    assert lo.check("keypad.hall", T0 + timedelta(seconds=5)) is not None
    assert lo.check("keypad.gate", T0 + timedelta(seconds=5)) is None
    assert lo.check("mqtt", T0 + timedelta(seconds=5)) is None
    assert lo.failures("mqtt", T0) == 0


def test_success_clears_the_count_but_not_a_lockout() -> None:
    lo = Lockout()
    for i in range(4):
        lo.failure("k", T0 + timedelta(seconds=i))
    lo.success("k", T0 + timedelta(seconds=5))
    assert lo.failures("k", T0 + timedelta(seconds=5)) == 0
    assert lo.failure("k", T0 + timedelta(seconds=6)) is False
    strict = Lockout(reset_on_success=False)
    for i in range(4):
        strict.failure("k", T0 + timedelta(seconds=i))
    strict.success("k", T0 + timedelta(seconds=5))
    assert strict.failure("k", T0 + timedelta(seconds=6)) is True
    strict.success("k", T0 + timedelta(seconds=7))
    assert strict.check("k", T0 + timedelta(seconds=7)) is not None


def test_clock_stepped_back_never_lengthens_a_lockout() -> None:
    lo = Lockout()
    for i in range(5):
        lo.failure("k", T0 + timedelta(seconds=i))
    earlier = T0 - timedelta(hours=1)  # NTP step back by an hour
    assert lo.check("k", earlier) == earlier + timedelta(minutes=5)
    assert lo.check("k", earlier + timedelta(minutes=5)) is None


def test_expire_reports_each_ended_lockout_once() -> None:
    lo = Lockout()
    for i in range(5):
        lo.failure("a", T0 + timedelta(seconds=i))
        lo.failure("b", T0 + timedelta(seconds=60 + i))
    assert lo.expire(T0 + timedelta(minutes=5)) == []
    assert lo.expire(T0 + timedelta(minutes=5, seconds=4)) == ["a"]
    assert lo.next_due() == T0 + timedelta(minutes=6, seconds=4)
    assert lo.locked(T0 + timedelta(minutes=6)) == {"b": T0 + timedelta(minutes=6, seconds=4)}
    assert lo.expire(T0 + timedelta(minutes=7)) == ["b"]
    assert lo.expire(T0 + timedelta(minutes=8)) == []
    assert lo.next_due() is None


def test_many_sources_stay_bounded_and_locks_survive() -> None:
    lo = Lockout(max_sources=8)
    for i in range(5):
        lo.failure("keypad.hall", T0 + timedelta(seconds=i))
    for i in range(100):
        lo.failure(f"mqtt:{i}", T0 + timedelta(seconds=10 + i))
    assert len(vars(lo)["_state"]) <= 8
    assert lo.check("keypad.hall", T0 + timedelta(seconds=120)) is not None


def test_lockout_parameters_are_checked() -> None:
    with pytest.raises(ValueError):
        Lockout(limit=0)
    with pytest.raises(ValueError):
        Lockout(window=timedelta(0))


# ----------------------------------------------------------------------------- AccessGate


def keypad_attempt(action: str = "toggle", mode: str | None = None) -> Attempt:
    return Attempt("keypad.hall", HALL, action, mode, "keypad", partial=True)  # type: ignore[arg-type]


def test_wrong_codes_give_e461_events_and_the_fifth_a_lockout() -> None:
    gate = AccessGate(lang="en", tz=ZoneInfo("Asia/Ho_Chi_Minh"))
    decisions = [
        gate.decide(keypad_attempt(), None, T0 + timedelta(seconds=10 * i)) for i in range(5)
    ]
    assert all(d.kind == "refused" and d.reason == "wrong_code" for d in decisions)
    assert all(d.sound == "refuse" for d in decisions)
    for i, d in enumerate(decisions[:4], start=1):
        (ev,) = d.events
        assert (ev.kind, ev.cid) == ("system", "E461")
        assert ev.detail["failures"] == i and ev.detail["source"] == "keypad.hall"
        assert ev.text == f"Wrong code at keypad.hall ({i} of 5)"
    wrong, lock = decisions[4].events
    assert wrong.cid == "E461" and wrong.detail["failures"] == 5
    assert lock.kind == "keypad_lockout" and lock.cid is None
    assert lock.text == "keypad.hall locked for 5 min after 5 wrong codes"
    assert decisions[4].locked_until == T0 + timedelta(seconds=40 + 300)
    validate([ev for d in decisions for ev in d.events])


def test_right_code_refused_during_lockout_then_accepted_after() -> None:
    gate = AccessGate(lang="vi", tz=ZoneInfo("Asia/Ho_Chi_Minh"))
    for i in range(5):
        gate.decide(keypad_attempt(), None, T0 + timedelta(seconds=i))
    guard = Match("bao-ve-1", False, None)
    t = T0 + timedelta(minutes=4)
    assert gate.precheck("keypad.hall", "keypad", t) is not None
    d = gate.decide(keypad_attempt(), guard, t, {"leadership": "armed_away"})
    assert d.kind == "refused" and d.reason == "locked_out" and d.user is None
    # no event per refusal during a lockout: a flood of attempts would be a flood of events
    assert d.events == ()
    # still refused, and the lockout not extended, by attempts during it
    gate.decide(keypad_attempt(), None, t)
    assert gate.next_due() == T0 + timedelta(minutes=5, seconds=4)
    (unlocked,) = gate.tick(T0 + timedelta(minutes=5, seconds=4))
    assert unlocked.kind == "system" and unlocked.detail["reason"] == "lockout_ended"
    # ... the one event at its end counts them (the precheck and the two decides above)
    assert unlocked.detail["refused"] == 3
    assert unlocked.text == "Hết thời gian khóa keypad.hall (3 lần thử bị từ chối trong lúc khóa)"
    d = gate.decide(
        keypad_attempt(), guard, T0 + timedelta(minutes=5, seconds=4), {"leadership": "armed_away"}
    )
    assert d.kind == "disarm" and d.zones == HALL and d.user == "bao-ve-1"
    assert d.events == () and d.sound == "accept"


@pytest.mark.parametrize(
    ("states", "kind", "mode"),
    [
        ({}, "arm", "away"),
        ({"leadership": "disarmed", "finance": "disarmed"}, "arm", "away"),
        ({"leadership": "disarmed", "finance": "armed_night"}, "disarm", None),
        ({"finance": "arming"}, "disarm", None),
        ({"leadership": "pending"}, "disarm", None),
        ({"leadership": "triggered"}, "disarm", None),
        ({"perimeter": "armed_away"}, "arm", "away"),  # not a zone of this keypad
    ],
)
def test_toggle_follows_the_zone_states(states: dict[str, str], kind: str, mode: str) -> None:
    d = AccessGate().decide(keypad_attempt(), Match("bao-ve-1", False, None), T0, states)
    assert (d.kind, d.mode, d.zones) == (kind, mode, HALL)


@pytest.mark.parametrize(
    ("mode", "expected"), [(None, "away"), ("home", "home"), ("night", "night")]
)
def test_arm_with_mode(mode: str | None, expected: str) -> None:
    d = AccessGate().decide(keypad_attempt("arm", mode), Match("bao-ve-1", False, None), T0)
    assert (d.kind, d.mode) == ("arm", expected)


def test_keypad_operates_only_the_permitted_zones() -> None:
    gate = AccessGate()
    director = Match("giam-doc", False, ("leadership",))
    d = gate.decide(keypad_attempt(), director, T0, {"leadership": "armed_away"})
    assert (d.kind, d.zones) == ("disarm", ("leadership",))
    # toggle looks only at the zones the user may operate
    d = gate.decide(keypad_attempt(), director, T0, {"finance": "armed_away"})
    assert (d.kind, d.zones, d.mode) == ("arm", ("leadership",), "away")


def test_not_permitted_is_refused_and_logged_with_the_user() -> None:
    gate = AccessGate(lang="en")
    perimeter_only = Match("bao-ve-2", False, ("perimeter",))
    d = gate.decide(keypad_attempt(), perimeter_only, T0)
    assert d.kind == "refused" and d.reason == "not_permitted" and d.user == "bao-ve-2"
    (ev,) = d.events
    assert ev.kind == "system" and ev.user == "bao-ve-2" and ev.detail["reason"] == "not_permitted"
    assert ev.text == "bao-ve-2 may not operate leadership, finance (at keypad.hall)"
    assert gate.lockout.failures("keypad.hall", T0) == 0  # a real code: not a guess


def test_remote_command_is_all_or_nothing() -> None:
    gate = AccessGate()
    director = Match("giam-doc", False, ("leadership",))
    both = Attempt("mqtt", HALL, "disarm", channel="mqtt")
    assert gate.decide(both, director, T0).reason == "not_permitted"
    one = Attempt("mqtt", ("leadership",), "disarm", channel="mqtt")
    d = gate.decide(one, director, T0)
    assert (d.kind, d.zones, d.channel) == ("disarm", ("leadership",), "mqtt")


def test_remote_and_keypad_lockouts_are_separate() -> None:
    gate = AccessGate()
    remote = Attempt("mqtt", ("finance",), "disarm", channel="mqtt")
    for i in range(5):
        gate.decide(remote, None, T0 + timedelta(seconds=i))
    assert gate.decide(
        remote, Match("bao-ve-1", False, None), T0 + timedelta(seconds=6)
    ).reason == ("locked_out")
    d = gate.decide(keypad_attempt(), Match("bao-ve-1", False, None), T0 + timedelta(seconds=6))
    assert d.ok


def test_duress_disarms_like_the_normal_code_and_reports_silently() -> None:
    gate = AccessGate(lang="vi")
    states = {"leadership": "armed_away", "finance": "armed_away"}
    normal = gate.decide(keypad_attempt(), Match("giam-doc", False, ("leadership",)), T0, states)
    duress = gate.decide(keypad_attempt(), Match("giam-doc", True, ("leadership",)), T0, states)
    for attr in ("kind", "zones", "mode", "user", "sound", "reason"):
        assert getattr(duress, attr) == getattr(normal, attr)
    assert duress.duress and not normal.duress
    (ev,) = duress.events
    assert (ev.kind, ev.cid, ev.user, ev.zone) == ("duress", "E121", "giam-doc", "leadership")
    assert ev.detail["silent"] is True and ev.detail["zones"] == ["leadership"]
    assert ev.text == "Mã cưỡng ép do giam-doc nhập tại keypad.hall"
    validate(duress.events)


def test_duress_is_reported_even_when_refused() -> None:
    gate = AccessGate()
    d = gate.decide(
        Attempt("mqtt", ("finance",), "disarm", channel="mqtt"),
        Match("giam-doc", True, ("leadership",)),
        T0,
    )
    assert d.kind == "refused" and d.reason == "not_permitted" and d.duress
    assert [e.kind for e in d.events] == ["system", "duress"]
    assert d.events[1].cid == "E121"


@pytest.mark.parametrize("reason", ["timeout", "too_long", "too_short", "bad_mode"])
def test_entry_refusals_are_logged_but_not_counted(reason: str) -> None:
    gate = AccessGate(lang="en")
    d = gate.refuse_entry(reason, "keypad.hall", "keypad", T0, HALL)  # type: ignore[arg-type]
    assert d.kind == "refused" and d.reason == reason and d.sound == "refuse"
    (ev,) = d.events
    assert ev.kind == "system" and ev.cid is None and ev.detail["reason"] == reason
    assert "keypad.hall" in ev.text
    assert gate.lockout.failures("keypad.hall", T0) == 0
    validate(d.events)


def test_bad_attempts_and_reasons_are_clear_errors() -> None:
    with pytest.raises(ValueError, match="unknown action"):
        Attempt("mqtt", ("finance",), "explode")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="mode"):
        Attempt("mqtt", ("finance",), "arm", "vacation")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="zone"):
        Attempt("mqtt", ())
    with pytest.raises(ValueError, match="reason"):
        AccessGate().refuse_entry("bored", "k", "keypad", T0)  # type: ignore[arg-type]


def test_every_message_has_vi_and_en() -> None:
    keys = [k for k in texts.known() if k.startswith("access.")]
    assert len(keys) >= 10
    for key in keys:
        assert set(texts.known()[key]) >= {"vi", "en"}


def test_no_decision_or_event_carries_a_code() -> None:
    gate = AccessGate(lang="en")
    auth = Authenticator(site_users())
    seen: list[Decision] = []
    for i, code in enumerate(
        ["0000", "2468", "1358", "1357", "9999", "9998", "9997", "9996", "9995", "2468"]
    ):
        t = T0 + timedelta(seconds=i)
        seen.append(gate.decide(keypad_attempt(), auth.identify(code), t, {}))
    seen.append(gate.refuse_entry("timeout", "keypad.hall", "keypad", T0))
    events = [ev for d in seen for ev in d.events]
    assert {e.kind for e in events} >= {"system", "duress", "keypad_lockout"}
    assert {d.reason for d in seen} >= {"wrong_code", "locked_out", "timeout"}
    assert_no_code(*seen, *events)
    for ev in events:
        assert not any(c in json.dumps(ev.detail) for c in CODES)
    validate(events)


def test_lockout_snapshot_survives_a_restart_and_ignores_garbage():
    t0 = datetime(2026, 11, 23, 2, 0, tzinfo=UTC)
    lo = Lockout()
    for i in range(5):
        lo.failure("mqtt", t0 + timedelta(seconds=i))
    lo.failure("kp.main", t0)
    saved = json.loads(json.dumps(lo.snapshot()))  # as the journal keeps it
    back = Lockout()
    back.restore(saved, t0 + timedelta(minutes=1))
    assert back.check("mqtt", t0 + timedelta(minutes=1)) == t0 + timedelta(minutes=5, seconds=4)
    assert back.failures("kp.main", t0 + timedelta(minutes=1)) == 1
    assert back.snapshot() == lo.snapshot()
    # after the window nothing is restored; garbage never locks anyone out
    late = Lockout()
    late.restore(saved, t0 + timedelta(minutes=30))
    assert late.snapshot() == {}
    junk = Lockout()
    for bad in (
        None,
        [],
        {"x": 1},
        {"x": {"failures": ["nope"]}},
        {"x": {"locked_until": "2026-01-01T00:00"}},
    ):
        junk.restore(bad, t0)
    assert junk.locked(t0) == {} and junk.snapshot() == {}


@pytest.mark.parametrize("step", [timedelta(hours=2), timedelta(hours=-2)])
def test_a_clock_step_neither_ends_nor_stretches_a_lockout(step):
    t0 = datetime(2026, 11, 23, 2, 0, tzinfo=UTC)
    lo = Lockout()
    for i in range(5):
        lo.failure("kp.main", t0 + timedelta(seconds=i))
    lo.failure("mqtt", t0)
    now = t0 + timedelta(minutes=1)
    lo.clock_stepped(step)  # NTP: the wall clock jumps, no real time passes
    now += step
    assert lo.check("kp.main", now) == t0 + step + timedelta(minutes=5, seconds=4)
    assert lo.failures("mqtt", now) == 1
    assert lo.check("kp.main", now + timedelta(minutes=4, seconds=5)) is None
