"""The patrol sections of the config: checkpoints, plans, badges (issue 18)."""

from __future__ import annotations

import contextlib

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from controller.access.codes import ScryptParams
from controller.config import ConfigError, parse_config
from controller.patrol.badges import BadgeBook, BadgeFormatError, hash_badge, normalize_badge

BASE = """
site: {id: t, language: en}
zones: [{id: hall}]
sensors:
  - {id: door.hall, type: door, zone: hall, pin: 4}
keypads:
  - {id: kp, zones: [hall], rows: [20, 21, 22, 23], cols: [24, 25, 26], buzzer: 12}
users:
  - {name: an, code: "1234", badge: "188,12345"}
  - {name: binh, code: "5678", badge: "777", disabled: true}
checkpoints:
  - {id: cp.gate, kind: badge, d0: 5, d1: 6, zone: hall, exempt: [door.hall]}
  - {id: cp.safe, kind: button, pin: 13}
"""


def load(patrols: str) -> object:
    return parse_config(BASE + patrols).config


def problems(patrols: str) -> list[str]:
    with pytest.raises(ConfigError) as e:
        parse_config(BASE + patrols)
    return [str(p) for p in e.value.problems]


GOOD = """
patrols:
  - id: night
    checkpoints: [cp.gate, cp.safe]
    buzzer: kp
    runs:
      - {days: workdays, start: "22:00", end: "06:00", every: 2h}
      - {days: holidays, start: "00:00", end: "00:00", every: 1h}
"""


def test_a_plan_with_two_runs_loads_with_its_defaults() -> None:
    cfg = load(GOOD)
    plan = cfg.patrols[0]  # type: ignore[attr-defined]
    assert plan.order == "ordered" and plan.round_time.total_seconds() == 1800
    assert cfg.checkpoints[0].bits == 26  # type: ignore[attr-defined]


def test_a_plan_naming_an_unknown_checkpoint_is_refused_with_its_line() -> None:
    out = problems(GOOD.replace("cp.safe]", "cp.saef]"))
    assert any("unknown checkpoint 'cp.saef'" in p and p.startswith("line ") for p in out)


def test_a_round_that_cannot_fit_between_two_rounds_is_refused() -> None:
    out = problems(GOOD.replace("every: 1h", "every: 30m"))
    assert any("cannot fit in every 30m" in p for p in out)


def test_a_round_that_cannot_fit_its_window_is_refused() -> None:
    out = problems(GOOD.replace('start: "22:00", end: "06:00"', 'start: "22:00", end: "22:20"'))
    assert any("cannot fit in the window 22:00-22:20" in p for p in out)


def test_a_checkpoint_pin_used_twice_is_refused() -> None:
    out = parse_config  # keep the name for the reader
    with pytest.raises(ConfigError) as e:
        out(BASE.replace("pin: 13", "pin: 5") + GOOD)
    assert any("pin 5 already used" in str(p) for p in e.value.problems)


def test_a_badge_reader_without_its_data_pins_is_refused() -> None:
    with pytest.raises(ConfigError) as e:
        parse_config(BASE.replace("d0: 5, d1: 6, ", "") + GOOD)
    assert any("needs d0 and d1" in str(p) for p in e.value.problems)


def test_an_unknown_buzzer_keypad_is_refused() -> None:
    assert any(
        "unknown keypad 'kp2'" in p for p in problems(GOOD.replace("buzzer: kp", "buzzer: kp2"))
    )


def test_a_plain_badge_warns_without_showing_the_number() -> None:
    loaded = parse_config(BASE + GOOD)
    warns = [str(w) for w in loaded.warnings if "badge" in str(w)]
    assert warns and not any("12345" in w or "188" in w for w in warns)


def test_two_users_with_one_badge_are_refused_without_the_number() -> None:
    with pytest.raises(ConfigError) as e:
        parse_config(BASE.replace('badge: "777"', 'badge: "188,12345"') + GOOD)
    text = str(e.value)
    assert "same badge as users[0]" in text and "12345" not in text


def test_badge_numbers_in_both_printed_forms_are_the_same_badge() -> None:
    assert normalize_badge("188,12345") == normalize_badge("0012333113") == "12333113"
    with pytest.raises(BadgeFormatError):
        normalize_badge("300,1")
    with pytest.raises(BadgeFormatError):
        normalize_badge("99999999999")


def test_the_badge_book_knows_hashed_and_plain_badges_and_who_is_disabled() -> None:
    cfg = load(GOOD)
    cheap = ScryptParams(n=2**4, r=1, p=1)
    users = [*cfg.users]  # type: ignore[attr-defined]
    users[0] = users[0].model_copy(
        update={"badge": None, "badge_hash": hash_badge("188,12345", cheap)}
    )
    book = BadgeBook(users)
    an = book.identify("12333113")
    assert an is not None and an.user == "an" and not an.disabled
    assert book.identify("188,12345") == an and book.verifications == 1  # remembered
    binh = book.identify("777")
    assert binh is not None and binh.disabled
    assert book.identify("1") is None
    assert "12345" not in repr(book)


def test_a_disabled_users_code_opens_nothing() -> None:
    from controller.access.gate import Authenticator

    cfg = load(GOOD)
    auth = Authenticator(cfg.users)  # type: ignore[attr-defined]
    assert auth.identify("1234") is not None
    assert auth.identify("5678") is None


def test_the_example_plan_of_the_patrol_page_loads_on_the_demo_site() -> None:
    from pathlib import Path

    root = Path(__file__).resolve().parents[2]
    page = (root / "docs" / "patrol.md").read_text(encoding="utf-8")
    example = page.split("```yaml\n", 1)[1].split("```", 1)[0]
    demo = (root / "config" / "demo.yaml").read_text(encoding="utf-8")
    cfg = parse_config(demo + "\n" + example).config
    assert [p.id for p in cfg.patrols] == ["night"] and len(cfg.checkpoints) == 2


_JUNK = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=8),
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=6), inner, max_size=3)
    ),
    max_leaves=6,
)


@settings(max_examples=150, deadline=None)
@given(
    section=st.sampled_from(["checkpoints", "patrols", "users"]),
    key=st.sampled_from(["id", "kind", "d0", "pin", "exempt", "checkpoints", "runs", "buzzer",
                         "badge", "round_time", "tolerance", "zone", "every"]),
    value=_JUNK,
)  # fmt: skip
def test_any_value_anywhere_in_the_patrol_sections_is_loaded_or_refused_never_a_crash(
    section: str, key: str, value: object
) -> None:
    import yaml

    data = yaml.safe_load(BASE + GOOD)
    data[section][0][key] = value
    with contextlib.suppress(ConfigError):  # refused with its problems listed: fine
        parse_config(yaml.safe_dump(data, allow_unicode=True))
