"""Patrol checkpoint drivers on gpiozero's mock pins: the Wiegand decoder from edge
timestamps (lengths, parity), the reader driver and the key switch, with their twins."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta

from hypothesis import given
from hypothesis import strategies as st

from controller.clock import VirtualClock
from hardware.backend import pin_factory_for
from hardware.checkpoints import KeySwitch, SimKeySwitch, SimWiegandReader, WiegandReader
from hardware.sim import let_loop_run
from hardware.wiegand import Badge, Garbled, WiegandDecoder, encode

T0 = datetime(2026, 2, 17, 19, 0, tzinfo=UTC)
FACILITY_CARD = 188 * 65536 + 12345


def feed(dec: WiegandDecoder, frame: list[int], t0: float = 0.0, step: float = 0.002) -> list:
    out: list = []
    for i, b in enumerate(frame):
        out += dec.feed(b, t0 + i * step)
    return out


# ----------------------------------------------------------------------------- the decoder


def test_a_26_bit_read_is_decoded_at_its_last_bit_without_waiting() -> None:
    dec = WiegandDecoder(26)
    assert feed(dec, encode(FACILITY_CARD)) == [Badge(FACILITY_CARD, 26)]
    assert dec.reads == 1 and dec.garbled == 0


def test_a_34_bit_read_carries_32_bits() -> None:
    dec = WiegandDecoder(34)
    assert feed(dec, encode(4_000_000_000, 34)) == [Badge(4_000_000_000, 34)]


def test_a_flipped_bit_fails_the_parity_check_and_is_counted() -> None:
    frame = encode(FACILITY_CARD)
    frame[5] ^= 1
    dec = WiegandDecoder(26)
    assert feed(dec, frame) == [Garbled("parity", 26)]
    assert dec.garbled == 1 and dec.reads == 0


def test_a_short_read_ends_with_the_silence_and_is_counted() -> None:
    dec = WiegandDecoder(26)
    assert feed(dec, encode(FACILITY_CARD)[:20]) == []
    assert dec.expire(0.039 + 0.001) == []  # 20 bits end at 0.038; 2 ms of silence is not enough
    assert dec.expire(0.038 + 0.015) == [Garbled("length", 20)]
    assert dec.garbled == 1


def test_a_34_bit_card_on_a_26_bit_reader_is_counted_garbled() -> None:
    dec = WiegandDecoder(26)
    out = feed(dec, encode(4_000_000_000, 34))
    out += dec.expire(1.0)
    assert Garbled("length", 34) in out and dec.garbled >= 1


def test_two_reads_in_a_row_are_two_badges() -> None:
    dec = WiegandDecoder(26)
    out = feed(dec, encode(1)) + feed(dec, encode(2), t0=0.5)
    assert out == [Badge(1, 26), Badge(2, 26)]


@given(number=st.integers(min_value=0, max_value=2**24 - 1), flip=st.integers(0, 25))
def test_every_26_bit_number_survives_a_round_trip_and_any_single_flip_is_caught(
    number: int, flip: int
) -> None:
    dec = WiegandDecoder(26)
    assert feed(dec, encode(number)) == [Badge(number, 26)]
    frame = encode(number)
    frame[flip] ^= 1
    assert feed(dec, frame, t0=1.0) == [Garbled("parity", 26)]


# ----------------------------------------------------------------------------- on mock pins


def run(body: Callable[[asyncio.AbstractEventLoop, object], Awaitable[None]]) -> None:
    async def main() -> None:
        factory = pin_factory_for("simulated")
        try:
            await body(asyncio.get_running_loop(), factory)
        finally:
            factory.close()

    asyncio.run(main())


def test_a_badge_presented_to_the_simulated_reader_reaches_the_driver_as_its_number() -> None:
    async def body(loop: asyncio.AbstractEventLoop, factory: object) -> None:
        reads: list[tuple[str, int | None, str | None]] = []
        reader = WiegandReader("cp.gate", 5, 6, factory, loop, lambda *a: reads.append(a))
        twin = SimWiegandReader(5, 6, factory)
        twin.present(FACILITY_CARD)
        await let_loop_run()
        assert reads == [("cp.gate", FACILITY_CARD, None)]
        await asyncio.sleep(0.03)  # the line falls silent between two reads
        frame = encode(7)
        frame[0] ^= 1
        twin.send(frame)
        await asyncio.sleep(0.03)
        twin.send(encode(7)[:10])
        await asyncio.sleep(0.05)  # the short frame ends with the silence
        assert reads[1:] == [("cp.gate", None, "parity"), ("cp.gate", None, "length")]
        assert reader.garbled == 2 and reader.reads == 1
        reader.close()

    run(body)


def test_a_key_switch_turned_is_one_visit_and_its_release_none() -> None:
    async def body(loop: asyncio.AbstractEventLoop, factory: object) -> None:
        clock = VirtualClock(T0)
        presses: list[tuple[str, datetime]] = []
        key = KeySwitch("cp.safe", 13, factory, clock, loop, lambda i, at: presses.append((i, at)))
        twin = SimKeySwitch(13, factory)
        twin.press()
        await let_loop_run()
        clock.advance(timedelta(milliseconds=50))
        twin.release()
        await let_loop_run()
        clock.advance(timedelta(milliseconds=50))
        await let_loop_run()
        assert presses == [("cp.safe", T0)]
        assert key.presses == 1
        key.close()

    run(body)
