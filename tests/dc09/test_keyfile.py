"""The DC-09 key file: how the key is written (hex digits or the characters themselves), who
may read it, and that it is never shown."""

from __future__ import annotations

import os

import pytest

from controller.dc09.keyfile import Dc09KeyError, read_key
from controller.preflight import check
from tests.conftest import config_with

HEX_KEY = "00112233445566778899AABBCCDDEEFF"


def key_file(tmp_path, text: str, mode: int = 0o640):
    path = tmp_path / "dc09.key"
    path.write_text(text + "\n")
    os.chmod(path, mode)
    return str(path)


@pytest.mark.parametrize("digits", [32, 48, 64])
def test_a_hex_key_is_its_digits_decoded_to_16_24_or_32_bytes(tmp_path, digits):
    key = read_key(key_file(tmp_path, "AB" * (digits // 2)), "hex")
    assert key == bytes.fromhex("AB" * (digits // 2)) and len(key) == digits // 2


def test_a_text_key_is_its_characters_as_pysiaalarm_takes_them(tmp_path):
    assert read_key(key_file(tmp_path, "AAAAAAAAAAAAAAAA"), "text") == b"A" * 16


@pytest.mark.parametrize(
    "text, fmt, why",
    [
        ("0011", "hex", "wrong length: 32, 48, 64 hex digits"),
        ("not hex at all!", "hex", "not hex digits"),
        ("ABCDEFGHIJKLMNOPQRST", "text", "wrong length: 16, 24, 32 characters"),
    ],
)
def test_a_key_of_the_wrong_shape_is_refused_without_showing_it(tmp_path, text, fmt, why):
    with pytest.raises(Dc09KeyError) as err:
        read_key(key_file(tmp_path, text), fmt)
    assert why in str(err.value) and text not in str(err.value)


def test_a_key_file_readable_by_others_is_refused(tmp_path):
    with pytest.raises(Dc09KeyError, match="0644"):
        read_key(key_file(tmp_path, HEX_KEY, 0o644), "hex")


def test_a_missing_key_file_is_refused_with_its_path(tmp_path):
    with pytest.raises(Dc09KeyError, match="cannot read"):
        read_key(str(tmp_path / "nowhere.key"), "hex")


def test_check_config_reports_a_bad_dc09_key_file_as_an_error(tmp_path):
    path = key_file(tmp_path, HEX_KEY, 0o644)
    cfg = config_with(
        dc09={"account": "1234", "primary": {"host": "127.0.0.1", "port": 1}, "key_file": path}
    )
    found = [f for f in check(cfg, simulate=True) if f.path == "dc09.key_file"]
    assert len(found) == 1 and found[0].error and HEX_KEY not in found[0].message
