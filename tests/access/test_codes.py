"""Code hashing: the stored format, verification, malformed hashes and the hash-code helper."""

from __future__ import annotations

import base64
import hmac
import io
import re

import pytest

from controller.access import codes
from controller.access.codes import (
    CodeFormatError,
    ScryptParams,
    hash_code,
    hash_code_interactive,
    is_hash,
    parse_hash,
    verify_code,
)

SHIPPED_PARAMS = codes.DEFAULT_PARAMS
FAST = ScryptParams(n=2**10, r=8, p=1)


@pytest.fixture(autouse=True)
def fast_scrypt(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(codes, "DEFAULT_PARAMS", FAST)


def test_shipped_parameters_are_the_documented_ones() -> None:
    assert (SHIPPED_PARAMS.n, SHIPPED_PARAMS.r, SHIPPED_PARAMS.p) == (2**12, 8, 1)
    assert SHIPPED_PARAMS.maxmem > 128 * 8 * 2**12


def test_round_trip_and_wrong_code() -> None:
    stored = hash_code("2468")
    assert verify_code("2468", stored)
    assert not verify_code("2469", stored)
    assert not verify_code("24680", stored)
    assert not verify_code("", stored)


def test_hash_format_is_self_describing() -> None:
    stored = hash_code("12345678")
    m = re.fullmatch(r"scrypt\$(\d+)\$(\d+)\$(\d+)\$([A-Za-z0-9+/]+)\$([A-Za-z0-9+/]+)", stored)
    assert m is not None
    assert (int(m[1]), int(m[2]), int(m[3])) == (FAST.n, FAST.r, FAST.p)
    salt = base64.b64decode(m[4] + "=" * (-len(m[4]) % 4))
    digest = base64.b64decode(m[5] + "=" * (-len(m[5]) % 4))
    assert (len(salt), len(digest)) == (codes.SALT_BYTES, codes.HASH_BYTES)
    assert "12345678" not in stored


def test_salted_same_code_gives_different_hashes() -> None:
    a, b = hash_code("2468"), hash_code("2468")
    assert a != b
    assert verify_code("2468", a) and verify_code("2468", b)


def test_fixed_salt_is_reproducible_and_matches_raw_scrypt() -> None:
    import hashlib

    salt = bytes(range(16))
    stored = hash_code("2468", FAST, salt=salt)
    assert stored == hash_code("2468", FAST, salt=salt)
    raw = hashlib.scrypt(b"2468", salt=salt, n=FAST.n, r=FAST.r, p=FAST.p, dklen=32)
    assert stored.endswith("$" + base64.b64encode(raw).decode().rstrip("="))


def test_verification_uses_the_parameters_written_in_the_hash() -> None:
    stored = hash_code("2468", ScryptParams(n=2**11, r=4, p=2))
    assert parse_hash(stored) is not None
    assert verify_code("2468", stored)  # while DEFAULT_PARAMS is n=2**10, r=8
    # padded base64 (as other tools write it) is accepted too
    parts = stored.split("$")
    parts[4] += "=" * (-len(parts[4]) % 4)
    parts[5] += "=" * (-len(parts[5]) % 4)
    assert verify_code("2468", "$".join(parts))


@pytest.mark.parametrize(
    "stored",
    [
        "",
        "scrypt$",
        "scrypt$1024$8$1$c2FsdHNhbHQ",
        "bcrypt$1024$8$1$c2FsdHNhbHRzYWx0$aGFzaGhhc2hoYXNoaGFzaA",
        "scrypt$1000$8$1$c2FsdHNhbHRzYWx0$aGFzaGhhc2hoYXNoaGFzaA",  # N not a power of two
        "scrypt$1073741824$8$1$c2FsdHNhbHRzYWx0$aGFzaGhhc2hoYXNoaGFzaA",  # N far too big
        "scrypt$1024$800$1$c2FsdHNhbHRzYWx0$aGFzaGhhc2hoYXNoaGFzaA",  # r far too big
        "scrypt$1024$8$0$c2FsdHNhbHRzYWx0$aGFzaGhhc2hoYXNoaGFzaA",
        "scrypt$-1024$8$1$c2FsdHNhbHRzYWx0$aGFzaGhhc2hoYXNoaGFzaA",
        "scrypt$1024$8$1$not base64!$aGFzaGhhc2hoYXNoaGFzaA",
        "scrypt$1024$8$1$c2FsdHNhbHRzYWx0$***",
        "scrypt$1024$8$1$YQ$aGFzaGhhc2hoYXNoaGFzaA",  # salt too short
        "scrypt$1024$8$1$c2FsdHNhbHRzYWx0$aGFzaGhhc2hoYXNoaGFzaA$extra",
        "scrypt$0x400$8$1$c2FsdHNhbHRzYWx0$aGFzaGhhc2hoYXNoaGFzaA",
        "scrypt$1024$8$1$c2FsdHNhbHRzYWx0$" + "A" * 600,
        None,
        1234,
        b"scrypt$1024$8$1$c2FsdHNhbHRzYWx0$aGFzaGhhc2hoYXNoaGFzaA",
    ],
)
def test_malformed_hash_is_false_never_an_exception(stored: object) -> None:
    assert verify_code("2468", stored) is False
    assert not is_hash(stored)


def test_non_string_code_is_false() -> None:
    stored = hash_code("2468")
    for bad in (None, 2468, b"2468", ["2468"], "2468" * 100):
        assert verify_code(bad, stored) is False


def test_constant_time_comparison_is_used(monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[tuple[bytes, bytes]] = []
    real = hmac.compare_digest

    def spy(a: bytes, b: bytes) -> bool:
        calls.append((a, b))
        return real(a, b)

    monkeypatch.setattr(hmac, "compare_digest", spy)
    stored = hash_code("2468")
    assert verify_code("2468", stored) is True
    assert verify_code("1111", stored) is False
    assert len(calls) == 2
    assert all(isinstance(a, bytes) and len(a) == codes.HASH_BYTES for a, _ in calls)


@pytest.mark.parametrize("bad", ["123", "123456789", "12a4", " 2468", "٢٤٦٨", "", "2468\n"])
def test_hash_code_refuses_bad_codes_without_echoing_them(bad: str) -> None:
    with pytest.raises(CodeFormatError) as info:
        hash_code(bad)
    if bad.strip():
        assert bad.strip() not in str(info.value)


def test_scrypt_params_are_validated() -> None:
    for n, r, p in ((1000, 8, 1), (2**10, 0, 1), (2**10, 8, 0), (2**30, 8, 1), (1, 8, 1)):
        with pytest.raises(ValueError):
            ScryptParams(n=n, r=r, p=p)


def test_parsed_hash_repr_hides_salt_and_digest() -> None:
    stored = hash_code("2468")
    parsed = parse_hash(stored)
    assert parsed is not None
    text = repr(parsed)
    assert stored.split("$")[4] not in text and stored.split("$")[5] not in text


# ----------------------------------------------------------------------------- hash-code CLI


def _run(
    *, tty: bool, answers: list[str] | None = None, stdin: str = ""
) -> tuple[int, str, str, list[str]]:
    out, err = io.StringIO(), io.StringIO()
    prompts: list[str] = []
    feed = iter(answers or [])

    def prompt(text: str) -> str:
        prompts.append(text)
        try:
            return next(feed)
        except StopIteration:
            raise EOFError from None

    status = hash_code_interactive(io.StringIO(stdin), tty, out=out, err=err, prompt=prompt)
    return status, out.getvalue(), err.getvalue(), prompts


def test_interactive_asks_twice_and_prints_only_the_hash() -> None:
    status, out, err, prompts = _run(tty=True, answers=["246813", "246813"])
    assert status == 0 and err == ""
    assert len(prompts) == 2
    line = out.strip()
    assert out.count("\n") == 1 and "246813" not in out
    assert verify_code("246813", line)


def test_interactive_mismatch_prints_nothing_on_stdout() -> None:
    status, out, err, _ = _run(tty=True, answers=["246813", "246814"])
    assert status == codes.EXIT_BAD_INPUT and out == ""
    assert "differ" in err and "246813" not in err and "246814" not in err


def test_interactive_refuses_a_bad_code_before_asking_again() -> None:
    status, out, err, prompts = _run(tty=True, answers=["12ab"])
    assert status == codes.EXIT_BAD_INPUT and out == "" and len(prompts) == 1
    assert "4 to 8 digits" in err and "12ab" not in err


def test_interactive_eof_is_a_clean_error() -> None:
    status, out, err, _ = _run(tty=True, answers=[])
    assert status == codes.EXIT_BAD_INPUT and out == "" and "no code" in err


def test_piped_stdin_reads_one_line() -> None:
    status, out, err, prompts = _run(tty=False, stdin="97531\nignored\n")
    assert status == 0 and prompts == [] and err == ""
    assert verify_code("97531", out.strip())


@pytest.mark.parametrize("stdin", ["", "abc\n", "123\n", "1234567890\n", "2468 \n"])
def test_piped_stdin_bad_input(stdin: str) -> None:
    status, out, err, _ = _run(tty=False, stdin=stdin)
    assert status == codes.EXIT_BAD_INPUT and out == ""
    if stdin.strip():
        assert stdin.strip() not in err


def test_second_argument_may_be_the_output_stream() -> None:
    out, err = io.StringIO(), io.StringIO()
    status = hash_code_interactive(io.StringIO("86420\n"), out, err=err)  # type: ignore[arg-type]
    assert status == 0 and err.getvalue() == ""
    assert verify_code("86420", out.getvalue().strip())
