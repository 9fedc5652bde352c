"""Remote command parsing and signature checks (pure), plus fuzzing of command payloads."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from controller.remote.commands import (
    MAX_PAYLOAD,
    Command,
    CommandError,
    CommandVerifier,
    parse_cmd,
    parse_zone_set,
    sign,
)

NOW = datetime(2026, 11, 23, 2, 0, tzinfo=UTC)
TOPIC = "officeguard/office-a/cmd"
KEY = b"k" * 32


def cmd(**fields: object) -> bytes:
    return json.dumps(fields).encode()


def signed(topic: str = TOPIC, key: bytes = KEY, **fields: object) -> dict[str, object]:
    obj = {"ts": NOW.timestamp(), "nonce": "n-0000001", **fields}
    obj["sig"] = sign(key, topic, obj)
    return obj


# ----------------------------------------------------------------------------- parsing


def test_arm_with_defaults():
    c, raw = parse_cmd(cmd(id="c1", action="arm", zone="finance", code="2468"))
    assert c == Command("c1", "arm", ("finance",), "away", None, False, "2468")
    assert raw["id"] == "c1"


def test_zones_list_and_zone_are_merged_without_repeats():
    c, _ = parse_cmd(cmd(action="disarm", zones=["a", "b"], zone="a", code="1"))
    assert c.zones == ("a", "b") and c.mode is None and c.id is None


def test_bypass_needs_a_sensor_and_no_zone():
    c, _ = parse_cmd(cmd(id=7, action="BYPASS", sensor="door.director", code="2468"))
    assert (c.id, c.action, c.sensor, c.zones) == ("7", "bypass", "door.director", ())
    with pytest.raises(CommandError, match="sensor"):
        parse_cmd(cmd(action="unbypass", code="2468"))


@pytest.mark.parametrize(
    "payload, message",
    [
        (b"not json", "JSON object"),
        (b"[1, 2]", "JSON object"),
        (b"\xff\xfe", "UTF-8"),
        (cmd(action="explode", zone="a"), "action must be one of"),
        (cmd(action=5, zone="a"), "action must be one of"),
        (cmd(action="arm"), "needs a zone"),
        (cmd(action="arm", zone="a", mode="vacation"), "mode must be"),
        (cmd(action="disarm", zone="a", mode="home"), "mode only goes with arm"),
        (cmd(action="arm", zone="a b"), "zone must be a name"),
        (cmd(action="arm", zone=["a"]), "zone must be a name"),
        (cmd(action="arm", zones=[]), "zones must be"),
        (cmd(action="arm", zone="a", force="yes"), "force must be"),
        (cmd(action="arm", zone="a", code=["1234"]), "code must be"),
        (cmd(id={"x": 1}, action="arm", zone="a"), "id must be"),
        (cmd(id="x" * 65, action="arm", zone="a"), "id must be"),
        (b'{"id": "\\ud800", "action": "arm", "zone": "a"}', "id must be"),
        (cmd(id="tab\there", action="arm", zone="a"), "id must be"),
        (cmd(id="line\u2028sep", action="arm", zone="a"), "id must be"),
        (b"{" * 10_000, "too large"),
        (b"[" * 3000 + b"]" * 3000, "too large"),
    ],
)
def test_malformed_commands_are_refused_with_a_reason(payload, message):
    with pytest.raises(CommandError, match=message):
        parse_cmd(payload)


def test_huge_payload_is_refused_before_parsing():
    with pytest.raises(CommandError, match=f"at most {MAX_PAYLOAD}"):
        parse_cmd(cmd(action="arm", zone="a", pad="x" * MAX_PAYLOAD))


def test_error_keeps_the_correlation_id_when_it_could_be_read():
    with pytest.raises(CommandError) as e:
        parse_cmd(cmd(id="abc", action="fly", zone="a", code="2468"))
    assert e.value.cmd_id == "abc"


def test_a_home_assistant_refusal_keeps_the_id_too():
    with pytest.raises(CommandError) as e:
        parse_zone_set("finance", cmd(id="ha-7", action="ARM_VACATION", code="2468"))
    assert e.value.cmd_id == "ha-7"


def test_home_assistant_set_payloads():
    c, raw = parse_zone_set("finance", cmd(action="ARM_NIGHT", code="2468"))
    assert (c.action, c.zones, c.mode, c.code) == ("arm", ("finance",), "night", "2468")
    c, raw = parse_zone_set("finance", b"DISARM")
    assert (c.action, c.code, raw) == ("disarm", None, None)
    with pytest.raises(CommandError, match="ARM_AWAY"):
        parse_zone_set("finance", cmd(action="ARM_VACATION", code="2468"))
    with pytest.raises(CommandError):
        parse_zone_set("finance", b"123")


def test_repr_never_shows_the_code():
    c, _ = parse_cmd(cmd(action="arm", zone="a", code="97531"))
    assert "97531" not in repr(c) and "97531" not in str(c)


# ----------------------------------------------------------------------------- signatures


def verify(v: CommandVerifier, obj: dict[str, object], topic: str = TOPIC, now=NOW) -> Command:
    c, raw = parse_cmd(json.dumps(obj).encode())
    v.verify(topic, c, raw, now)
    return c


def test_unsigned_commands_pass_unless_a_signature_is_required():
    verify(CommandVerifier(None, required=False), {"action": "disarm", "zone": "a"})
    with pytest.raises(CommandError, match="must be signed"):
        verify(CommandVerifier(KEY, required=True), {"action": "disarm", "zone": "a"})


@pytest.mark.parametrize("action", ["disarm", "silence"])
def test_with_signatures_required_only_commands_that_lower_protection_need_one(action):
    v = CommandVerifier(KEY, required=True)
    verify(v, {"action": "arm", "zone": "a"})
    verify(v, {"action": "unbypass", "sensor": "s"})
    with pytest.raises(CommandError, match="must be signed"):
        verify(v, {"action": action, "zone": "a"})
    with pytest.raises(CommandError, match="must be signed"):
        verify(v, {"action": "bypass", "sensor": "s"})


def test_a_site_without_a_key_refuses_unsigned_disarm_by_default_and_still_takes_arm():
    v = CommandVerifier(None, required=True)
    with pytest.raises(CommandError, match="no command key yet"):
        verify(v, {"id": "x1", "action": "disarm", "zone": "a"})
    verify(v, {"action": "arm", "zone": "a"})


def test_a_signed_command_is_refused_after_a_restart_that_restored_its_nonce():
    v = CommandVerifier(KEY, required=True)
    obj = signed(action="disarm", zone="a", code="2468")
    verify(v, obj)
    saved = json.loads(json.dumps(v.snapshot()))  # as the logbook keeps it
    after = CommandVerifier(KEY, required=True)
    after.restore(saved)
    with pytest.raises(CommandError, match="replayed"):
        verify(after, obj, now=NOW + timedelta(seconds=5))


def test_a_captured_command_is_refused_when_the_clock_comes_up_at_its_time_again():
    v = CommandVerifier(KEY, required=True)
    verify(v, signed(action="arm", zone="a", nonce="nonce-old-1"))
    later = NOW + timedelta(days=1)
    newer = {"ts": later.timestamp(), "nonce": "nonce-new-1", "action": "arm", "zone": "a"}
    newer["sig"] = sign(KEY, TOPIC, newer)
    verify(v, newer, now=later)
    after = CommandVerifier(KEY, required=True)
    after.restore(v.snapshot())
    # the Pi boots with its clock a day behind: the day-old capture is in the window again
    captured = signed(action="disarm", zone="a", nonce="nonce-old-2")
    with pytest.raises(CommandError, match="older than a signed command"):
        verify(after, captured, now=NOW)


def test_restoring_garbage_never_breaks_the_verifier():
    v = CommandVerifier(KEY, required=True)
    for saved in (None, 3, "x", {"nonces": [1]}, {"nonces": {"n": 5}, "last_accepted": "no"}):
        v.restore(saved)
    assert verify(v, signed(action="disarm", zone="a")).signed


def test_a_good_signature_passes_once_and_a_replay_is_refused():
    v = CommandVerifier(KEY, required=True)
    obj = signed(action="disarm", zone="a", code="2468")
    assert verify(v, obj).signed
    with pytest.raises(CommandError, match="replayed"):
        verify(v, obj, now=NOW + timedelta(seconds=5))


def test_a_tampered_command_or_another_topic_or_key_fails():
    v = CommandVerifier(KEY, required=True)
    obj = signed(action="disarm", zone="a", code="2468")
    with pytest.raises(CommandError, match="bad signature"):
        verify(v, {**obj, "zone": "b"})
    with pytest.raises(CommandError, match="bad signature"):
        verify(v, obj, topic="officeguard/office-b/cmd")
    with pytest.raises(CommandError, match="bad signature"):
        verify(v, signed(key=b"other", action="disarm", zone="a"))
    with pytest.raises(CommandError, match="64 lowercase hex"):
        verify(v, {**obj, "sig": "zz"})


def test_time_window_and_nonce_rules():
    v = CommandVerifier(KEY, required=True, window=timedelta(seconds=60))
    with pytest.raises(CommandError, match="window"):
        verify(v, signed(action="disarm", zone="a"), now=NOW + timedelta(seconds=61))
    with pytest.raises(CommandError, match="window"):
        verify(v, signed(action="disarm", zone="a"), now=NOW - timedelta(seconds=61))
    iso = signed(action="disarm", zone="a", nonce="n-iso-0001", ts=NOW.isoformat())
    verify(v, iso)
    with pytest.raises(CommandError, match="needs ts"):
        verify(v, signed(action="disarm", zone="a", nonce="n-naive-01", ts="2026-11-23T02:00:00"))
    with pytest.raises(CommandError, match="nonce"):
        verify(v, signed(action="disarm", zone="a", nonce="short"))


def test_remembered_nonces_are_bounded():
    v = CommandVerifier(KEY, required=True, max_nonces=3)
    for i in range(10):
        verify(v, signed(action="disarm", zone="a", nonce=f"nonce-{i:04d}"))
    assert len(v._seen) == 3


def test_a_verifier_without_a_usable_key_refuses_everything():
    v = CommandVerifier(None, required=False).refusing()
    with pytest.raises(CommandError, match="command key"):
        verify(v, {"action": "disarm", "zone": "a"})


# ----------------------------------------------------------------------------- fuzzing

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=12,
)
command_like = st.fixed_dictionaries(
    {},
    optional={
        "id": json_values | st.text(max_size=70),
        "action": st.sampled_from(["arm", "disarm", "bypass", "unbypass", "silence", "ARM"])
        | json_values,
        "zone": st.sampled_from(["leadership", "finance", "x y", ""]) | json_values,
        "zones": json_values,
        "sensor": json_values,
        "mode": st.sampled_from(["away", "home", "night", "day"]) | json_values,
        "force": json_values,
        "code": st.sampled_from(["2468", "0000", "97531"]) | json_values,
        "ts": json_values,
        "nonce": json_values,
        "sig": json_values,
    },
)


@settings(max_examples=300)
@given(st.binary(max_size=600) | command_like.map(lambda d: json.dumps(d).encode()))
def test_fuzzed_payloads_give_a_command_or_a_clear_error(payload):
    v = CommandVerifier(KEY, required=False)
    for parse in (parse_cmd, lambda p: parse_zone_set("finance", p)):
        try:
            c, raw = parse(payload)
            v.verify(TOPIC, c, raw, NOW)
        except CommandError as e:
            assert e.reason and "97531" not in e.reason and "2468" not in e.reason
            continue
        assert c.action in ("arm", "disarm", "bypass", "unbypass", "silence")
        assert c.code is None or isinstance(c.code, str)
        assert all(isinstance(z, str) and z for z in c.zones)
