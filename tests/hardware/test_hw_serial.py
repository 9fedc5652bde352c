"""The serial line reader through a real pseudo-terminal (the simulated detector port)."""

from __future__ import annotations

import asyncio
import os
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from controller.clock import VirtualClock
from hardware.serial_line import BACKOFF_FIRST, BACKOFF_MAX, SerialLineReader
from hardware.sim import SimSerial

T0 = datetime(2026, 2, 16, 19, 0, tzinfo=UTC)
S = timedelta(seconds=1)
MS = timedelta(milliseconds=1)


class Rig:
    def __init__(self, tmp: Path, max_line: int = 1024, port: str | None = None) -> None:
        self.clock = VirtualClock(T0)
        self.loop = asyncio.get_running_loop()
        self.sim = SimSerial(tmp / "rf.tty")
        self.lines: list[tuple[bytes, datetime, bool]] = []
        self.ports: list[tuple[bool, datetime, str | None]] = []
        self.reader = SerialLineReader(
            port or self.sim.port,
            115200,
            self.clock,
            self.loop,
            self.on_line,
            self.on_port,
            max_line=max_line,
        )

    def on_line(self, line: bytes, at: datetime, too_long: bool) -> None:
        self.lines.append((line, at, too_long))

    def on_port(self, is_open: bool, at: datetime, error: str | None) -> None:
        self.ports.append((is_open, at, error))

    def got(self) -> list[bytes]:
        return [line for line, _, _ in self.lines]

    async def until(self, predicate, timeout: float = 3.0) -> None:
        """Wait (really: the bytes go through the kernel's pty) until predicate() holds."""
        deadline = time.monotonic() + timeout
        while not predicate():
            if time.monotonic() > deadline:
                raise AssertionError("timed out waiting for the serial reader")
            await asyncio.sleep(0.001)

    async def read_all(self, total: int) -> None:
        """Wait until the reader has read `total` bytes since it started."""
        await self.until(lambda: self.reader.bytes_in >= total)

    def close(self) -> None:
        self.reader.stop()
        self.sim.close()


def run(tmp_path: Path, coro_fn, **kw):
    async def main():
        rig = Rig(tmp_path, **kw)
        try:
            await coro_fn(rig)
        finally:
            rig.close()

    asyncio.run(main())


def test_lines_through_a_real_pty(tmp_path):
    async def body(rig: Rig):
        assert os.path.islink(rig.sim.port) and rig.sim.tty.startswith("/dev/")
        rig.reader.start()
        assert rig.reader.is_open and rig.ports == [(True, T0, None)]
        rig.sim.write(b'{"v":1,"t":"hb"}*0badc0de\nsecond\r\nthird\n')
        await rig.until(lambda: len(rig.lines) == 3)
        assert rig.got() == [b'{"v":1,"t":"hb"}*0badc0de', b"second", b"third"]
        assert all(at == T0 and not too_long for _, at, too_long in rig.lines)

    run(tmp_path, body)


def test_partial_line_waits_for_its_end(tmp_path):
    async def body(rig: Rig):
        rig.reader.start()
        rig.sim.write(b"hal")
        await rig.read_all(3)
        assert rig.lines == []
        rig.clock.advance(2 * S)
        rig.sim.write(b"f a line\nnext")
        await rig.until(lambda: len(rig.lines) == 1)
        assert rig.lines == [(b"half a line", T0 + 2 * S, False)]
        rig.sim.write_line("next done")  # adds the newline
        await rig.until(lambda: len(rig.lines) == 2)
        assert rig.got()[1] == b"nextnext done"

    run(tmp_path, body)


def test_over_long_line_is_handed_over_truncated_and_flagged(tmp_path):
    async def body(rig: Rig):
        rig.reader.start()
        ok = b"x" * 1024
        rig.sim.write(ok + b"\n")
        rig.sim.write(b"y" * 5000 + b"\n")
        rig.sim.write(b"after\n")
        await rig.until(lambda: len(rig.lines) == 3)
        assert rig.lines[0] == (ok, T0, False)  # exactly max_line is fine
        assert rig.lines[1] == (b"y" * 1024, T0, True)
        assert rig.lines[2] == (b"after", T0, False)
        assert rig.reader.too_long == 1 and rig.reader.lines == 3
        assert len(rig.reader._buf) == 0

    run(tmp_path, body)


def test_runaway_line_without_newline_never_buffers_more_than_max_line(tmp_path):
    async def body(rig: Rig):
        rig.reader.start()
        for n in range(1, 21):
            rig.sim.write(b"z" * 1000)
            await rig.read_all(n * 1000)
            assert len(rig.reader._buf) <= 1025
        await rig.until(lambda: rig.lines)
        assert rig.lines == [(b"z" * 1024, T0, True)]  # handed over once, as soon as it is known
        rig.sim.write(b"zzz\nfine\n")
        await rig.until(lambda: len(rig.lines) == 2)
        assert rig.got()[1] == b"fine"

    run(tmp_path, body)


def test_unplug_closes_then_reopens_with_backoff(tmp_path):
    async def body(rig: Rig):
        rig.reader.start()
        rig.sim.write(b"before\n")
        await rig.until(lambda: rig.lines)
        rig.clock.advance(10 * S)
        rig.sim.write(b"cut off mid-li")
        await rig.read_all(len(b"before\ncut off mid-li"))
        rig.sim.unplug()
        await rig.until(lambda: len(rig.ports) == 2)
        unplugged_at = T0 + 10 * S
        is_open, at, error = rig.ports[1]
        assert (is_open, at) == (False, unplugged_at) and "lost" in error
        assert not rig.reader.is_open
        assert rig.reader.next_retry == unplugged_at + 1 * S

        rig.clock.advance(1 * S)  # first retry: still unplugged
        assert rig.reader.attempts == 2 and not rig.reader.is_open
        assert rig.reader.next_retry == unplugged_at + 3 * S
        assert len(rig.ports) == 2  # a failed retry is not reported again
        assert "No such file" in rig.reader.last_error

        rig.sim.replug()
        rig.clock.advance(1500 * MS)  # not yet: the second retry is 2 s after the first
        assert not rig.reader.is_open
        rig.clock.advance(500 * MS)
        assert rig.reader.is_open and rig.reader.attempts == 3
        assert rig.ports[2] == (True, unplugged_at + 3 * S, None)

        rig.sim.write(b"again\n")
        await rig.until(lambda: len(rig.lines) == 2)
        assert rig.got() == [b"before", b"again"]  # the cut-off line was dropped

    run(tmp_path, body)


def test_missing_port_backs_off_to_30s_and_never_gives_up(tmp_path):
    async def body(rig: Rig):
        rig.reader.start()
        assert rig.ports[0][0] is False and "cannot open" in rig.ports[0][2]
        assert str(tmp_path / "missing.tty") in rig.ports[0][2]
        gaps = []
        last = T0
        for _ in range(8):
            nxt = rig.reader.next_retry
            gaps.append((nxt - last).total_seconds())
            last = nxt
            rig.clock.advance_to(nxt)
        assert gaps == [1, 2, 4, 8, 16, 30, 30, 30]
        assert rig.reader.attempts == 9 and len(rig.ports) == 1
        rig.reader.stop()
        assert rig.reader.next_retry is None and rig.clock.next_due() is None

    run(tmp_path, body, port=str(tmp_path / "missing.tty"))


def test_backoff_starts_again_after_a_good_line(tmp_path):
    async def body(rig: Rig):
        rig.reader.start()
        for _ in range(3):  # three unplugs without a line in between: 1 s, 2 s, 4 s
            rig.sim.unplug()
            await rig.until(lambda: not rig.reader.is_open)
            rig.sim.replug()
            rig.clock.advance_to(rig.reader.next_retry)
            assert rig.reader.is_open
        assert rig.reader._backoff == 8 * S
        rig.sim.write(b"ok\n")
        await rig.until(lambda: rig.lines)
        assert rig.reader._backoff == BACKOFF_FIRST
        rig.sim.unplug()
        await rig.until(lambda: not rig.reader.is_open)
        assert rig.reader.next_retry - rig.clock.now() == BACKOFF_FIRST

    run(tmp_path, body)


def test_stop_closes_the_port_and_reports_nothing_more(tmp_path):
    async def body(rig: Rig):
        rig.reader.start()
        rig.reader.stop()
        assert not rig.reader.is_open and rig.ports == [(True, T0, None)]
        assert rig.clock.next_due() is None
        rig.sim.write(b"while closed\n")  # nobody reads it; it is stale at the next open
        rig.reader.start()  # and it can start again
        rig.sim.write(b"read\n")
        await rig.until(lambda: rig.lines)
        assert rig.got() == [b"read"]

    run(tmp_path, body)


def test_second_reader_on_the_same_port_is_refused(tmp_path):
    async def body(rig: Rig):
        rig.reader.start()
        other_ports: list = []
        other = SerialLineReader(
            rig.sim.port,
            115200,
            rig.clock,
            rig.loop,
            lambda *a: None,
            lambda *a: other_ports.append(a),
        )
        other.start()
        try:
            assert other_ports and other_ports[0][0] is False and not other.is_open
        finally:
            other.stop()

    run(tmp_path, body)


def test_callback_errors_do_not_stop_the_reader(tmp_path):
    async def body(rig: Rig):
        seen = []

        def bad(line, at, too_long):
            seen.append(line)
            raise ValueError("parser bug")

        rig.reader._on_line = bad
        rig.reader.start()
        rig.sim.write(b"one\ntwo\n")
        await rig.until(lambda: len(seen) == 2)
        assert rig.reader.is_open

    run(tmp_path, body)


def test_bad_arguments_and_unplugged_writes(tmp_path):
    async def body(rig: Rig):
        with pytest.raises(ValueError, match="max_line"):
            SerialLineReader("x", 9600, rig.clock, rig.loop, print, print, max_line=0)
        with pytest.raises(ValueError, match="baud"):
            SerialLineReader("x", 0, rig.clock, rig.loop, print, print)
        with pytest.raises(TypeError, match="bytes"):
            rig.sim.write("text")
        rig.sim.unplug()
        with pytest.raises(OSError, match="unplugged"):
            rig.sim.write(b"x\n")
        assert not os.path.lexists(rig.sim.port)

    run(tmp_path, body)


def test_sim_serial_in_a_temporary_directory_cleans_up():
    s = SimSerial()
    port = s.port
    assert os.path.islink(port)
    s.close()
    assert not os.path.lexists(port) and not os.path.exists(os.path.dirname(port))


# ----------------------------------------------------------------------------- framing


def _feed_reader(max_line: int) -> tuple[SerialLineReader, list]:
    out: list = []
    loop = asyncio.new_event_loop()
    reader = SerialLineReader(
        "unused",
        115200,
        VirtualClock(T0),
        loop,
        lambda line, at, too_long: out.append((line, too_long)),
        lambda *a: None,
        max_line=max_line,
    )
    loop.close()
    return reader, out


def _expected(stream: bytes, max_line: int) -> list[tuple[bytes, bool]]:
    """Every complete line (one "\r" before the "\n" dropped), cut to max_line and flagged;
    an unfinished last line is handed over already if it is certainly too long."""
    out = []
    *complete, rest = stream.split(b"\n")
    for raw in complete:
        line = raw[:-1] if raw.endswith(b"\r") else raw
        out.append((line[:max_line], len(line) > max_line))
    if len(rest) > max_line + 1 or (len(rest) == max_line + 1 and not rest.endswith(b"\r")):
        out.append((rest[:max_line], True))
    return out


@given(
    st.lists(st.sampled_from([b"a", b"bc", b"\r", b"\n", b"\r\n", b"0123456789"]), max_size=60),
    st.lists(st.integers(min_value=1, max_value=40), min_size=1, max_size=20),
    st.integers(min_value=1, max_value=12),
)
def test_framing_is_the_same_however_the_bytes_are_chunked(parts, cuts, max_line):
    stream = b"".join(parts)
    reader, out = _feed_reader(max_line)
    pos = 0
    i = 0
    while pos < len(stream):
        n = cuts[i % len(cuts)]
        reader._feed(stream[pos : pos + n])
        assert len(reader._buf) <= max_line + 1
        pos += n
        i += 1
    assert out == _expected(stream, max_line)


def test_framing_edge_cases():
    reader, out = _feed_reader(4)
    reader._feed(b"abcd\r")  # 4 bytes and a \r: may still be a good line
    assert out == []
    reader._feed(b"\n")
    reader._feed(b"abcd\rX\n")  # the \r was not the end: too long
    reader._feed(b"\n")  # an empty line is handed over too (the parser counts it)
    reader._feed(b"abcde")  # certainly too long: handed over at once
    assert out == [(b"abcd", False), (b"abcd", True), (b"", False), (b"abcd", True)]
    reader._feed(b"fgh\nok\n")
    assert out[-1] == (b"ok", False) and len(out) == 5
    assert BACKOFF_MAX == 30 * S
