"""DC-09 frames: checked against frames written out by hand from real panels' traffic and the
standard's rules (never produced by our own builder), and round trips for any content."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from hypothesis import given
from hypothesis import strategies as st

from controller.dc09 import frame
from controller.dc09.frame import FrameError, Header

# Written out by hand: CRC-16/ARC and length as a panel sent them (the standard's layout).
PANEL_ADM = b'\nF92F0043"ADM-CID"0020R7896L7896#3456[#3456|1407 00 001]_17:01:14,07-26-2024\r'
PANEL_NULL = b'\nD730002F"NULL"0000R7896L7896#3456[]_17:01:26,07-26-2024\r'
PANEL_NO_RECEIVER = b'\n9EC40027"ADM-CID"0001L0#1002[#1002|1602 00 001]\r'
# pysiaalarm's own test frame: its CRC is right but its length says 0x47 for 0x2F bytes
WRONG_LENGTH = b'\n57150047"ADM-CID"0247R4F39L4F39#4F39[#4F39|3401 01 057]\r'

# Written out by hand from the standard's SIA-DCS layout (`#acct|Nri<area>/<code><zone>`): a
# burglary alarm (BA) in area 1, zone 11. Its CRC and length were worked out with ref_crc16()
# below, not with the sender's code or crcmod.
HAND_SIA = b'\n21B0003C"SIA-DCS"0002R1L1#1234[#1234|Nri1/BA011]_17:01:14,07-26-2024\r'

T = datetime(2024, 7, 26, 17, 1, 14, tzinfo=UTC)


def ref_crc16(data: bytes) -> int:
    """CRC-16/ARC bit by bit (reflected poly 0xA001, init 0), a reference of the tests' own."""
    crc = 0
    for byte in data:
        crc ^= byte
        for _ in range(8):
            crc = (crc >> 1) ^ 0xA001 if crc & 1 else crc >> 1
    return crc


def test_the_crc_is_crc16_arc_with_its_published_check_value():
    assert frame.crc16(b"123456789") == 0xBB3D


def test_a_panels_adm_cid_frame_is_read_with_its_crc_and_length_checked():
    f = frame.parse(PANEL_ADM)
    assert (f.ident, f.seq, f.receiver, f.line, f.account) == (
        "ADM-CID",
        20,
        "7896",
        "7896",
        "3456",
    )
    assert f.data == "#3456|1407 00 001"
    assert f.at == T


def test_a_panels_null_poll_and_a_frame_without_receiver_are_read():
    assert frame.parse(PANEL_NULL).ident == "NULL"
    f = frame.parse(PANEL_NO_RECEIVER)
    assert f.receiver is None and f.at is None


def test_our_builder_writes_the_panels_frame_byte_for_byte():
    built = frame.build("ADM-CID", 20, Header("3456", "7896", "7896"), "1407 00 001", T)
    assert built == PANEL_ADM


def test_our_builder_writes_the_panels_null_poll_byte_for_byte():
    at = datetime(2024, 7, 26, 17, 1, 26, tzinfo=UTC)
    assert frame.build("NULL", 0, Header("3456", "7896", "7896"), "", at) == PANEL_NULL


def test_a_wrong_length_field_is_refused_even_with_a_good_crc():
    with pytest.raises(FrameError, match="length"):
        frame.parse(WRONG_LENGTH)


def test_a_changed_byte_is_refused_by_the_crc():
    with pytest.raises(FrameError, match="CRC"):
        frame.parse(PANEL_ADM.replace(b"1407", b"1408"))


def test_the_contact_id_of_an_event_becomes_adm_cid_data():
    assert frame.adm_cid_data("E130", 1, 15) == "1130 01 015"
    assert frame.adm_cid_data("R401", 2, 3) == "3401 02 003"
    with pytest.raises(FrameError):
        frame.adm_cid_data("X130", 1, 1)


def test_the_timestamp_is_utc_in_the_standards_layout():
    from zoneinfo import ZoneInfo

    local = datetime(2024, 7, 27, 0, 1, 14, tzinfo=ZoneInfo("Asia/Ho_Chi_Minh"))
    assert frame.timestamp(local) == "_17:01:14,07-26-2024"
    assert frame.parse_timestamp("_17:01:14,07-26-2024") == T


def test_the_sequence_runs_from_0001_to_9999_and_never_uses_0000():
    assert frame.next_seq(9998) == 9999
    assert frame.next_seq(9999) == 1


def test_a_key_of_another_length_than_aes_allows_is_refused():
    with pytest.raises(FrameError, match="16, 24 or 32"):
        frame.encrypt(b"short", "x")


def test_an_encrypted_frame_decrypts_with_the_key_and_not_without():
    key = b"0123456789ABCDEF"
    raw = frame.build("ADM-CID", 7, Header("1234"), "1130 01 015", T, key=key)
    assert raw.startswith(b"\n") and b'"*ADM-CID"0007R0L0#1234[' in raw
    body = raw[9:-1]
    assert len(body) == int(raw[5:9], 16) and frame.crc16(body) == int(raw[1:5], 16)
    assert frame.parse(raw, key).data == "#1234|1130 01 015"
    with pytest.raises(FrameError):
        frame.parse(raw)


def test_a_receivers_zero_padded_encrypted_ack_is_read():
    # pysiaalarm pads its answers with "0" and no "|": `000...0]_HH:MM:SS,MM-DD-YYYY`
    from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

    key = b"0123456789ABCDEF"
    plain = "]_17:01:14,07-26-2024".zfill(32).encode()
    enc = Cipher(algorithms.AES(key), modes.CBC(bytes(16))).encryptor()
    hex_ = (enc.update(plain) + enc.finalize()).hex().upper()
    body = f'"*ACK"0007R0L0#1234[{hex_}'
    raw = b"\n" + f"{frame.crc16(body.encode()):04X}{len(body):04X}{body}\r".encode()
    f = frame.parse(raw, key)
    assert (f.ident, f.seq, f.data, f.at) == ("ACK", 7, "", T)


hexid = st.text("0123456789ABCDEF", min_size=1, max_size=6)
cids = st.builds(lambda q, c: f"{q}{c:03d}", st.sampled_from("ER"), st.integers(100, 999))


@given(
    account=st.text("0123456789ABCDEF", min_size=3, max_size=16),
    receiver=hexid,
    line=hexid,
    seq=st.integers(0, 9999),
    cid=cids,
    partition=st.integers(0, 99),
    number=st.integers(0, 999),
    at=st.datetimes(
        min_value=datetime(2000, 1, 1), max_value=datetime(2099, 12, 31), timezones=st.just(UTC)
    ),
    key=st.none() | st.sampled_from([b"K" * 16, b"K" * 24, b"K" * 32]),
)
def test_any_message_reads_back_as_it_was_built(
    account, receiver, line, seq, cid, partition, number, at, key
):
    data = frame.adm_cid_data(cid, partition, number)
    raw = frame.build("ADM-CID", seq, Header(account, receiver, line), data, at, key=key)
    f = frame.parse(raw, key)
    assert (f.seq, f.receiver, f.line, f.account) == (seq, receiver, line, account)
    assert f.data == f"#{account}|{data}" and f.encrypted == (key is not None)
    assert f.at == at.replace(microsecond=0)


def test_the_hand_written_sia_dcs_frame_checks_with_the_reference_crc():
    body = HAND_SIA[9:-1]
    assert ref_crc16(b"123456789") == 0xBB3D  # the published check value
    assert HAND_SIA[1:9] == f"{ref_crc16(body):04X}0{len(body):03X}".encode()


def test_a_hand_written_sia_dcs_frame_is_read_and_our_builder_writes_it_byte_for_byte():
    f = frame.parse(HAND_SIA)
    assert (f.ident, f.seq, f.account, f.data, f.at) == (
        "SIA-DCS",
        2,
        "1234",
        "#1234|Nri1/BA011",
        T,
    )
    data = frame.sia_dcs_data("E130", 1, 11)
    assert frame.build("SIA-DCS", 2, Header("1234", "1", "1"), data, T) == HAND_SIA


def test_the_sia_code_of_an_event_comes_from_its_contact_id_row():
    assert frame.sia_dcs_data("E130", 1, 11) == "Nri1/BA011"
    assert frame.sia_dcs_data("R130", 1, 11) == "Nri1/BR011"
    assert frame.sia_dcs_data("E401", 2, 3) == "Nri2/OP003"
    assert frame.sia_dcs_data("R401", 0, 3) == "NCL003"  # area 0, the whole site: no ri
    assert frame.sia_dcs_data("E350", 0, 0) == "NYS000"
    with pytest.raises(FrameError):
        frame.sia_dcs_data("E999", 1, 1)


@given(
    cid=st.sampled_from(["E130", "R130", "E110", "E121", "E137", "R401", "E602"]),
    partition=st.integers(0, 99),
    number=st.integers(0, 999),
    key_size=st.sampled_from([None, 16, 24, 32]),
)
def test_any_sia_dcs_message_reads_back_as_it_was_built(cid, partition, number, key_size):
    key = bytes(range(key_size)) if key_size else None
    data = frame.sia_dcs_data(cid, partition, number)
    raw = frame.build("SIA-DCS", 7, Header("ABC123", "2", "3"), data, T, key=key)
    f = frame.parse(raw, key)
    assert (f.ident, f.encrypted, f.data, f.at) == (
        "SIA-DCS",
        key is not None,
        f"#ABC123|{data}",
        T,
    )
