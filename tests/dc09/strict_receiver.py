"""A strict DC-09 receiver for the tests, written apart from controller/dc09: its own regex,
CRC-16/ARC straight from crcmod and its own AES, so a mistake in the sender's frame code is not
repeated here. It checks what pysiaalarm does not (the length field, the line feed and carriage
return around the frame) and refuses the frame (NAK) when either is wrong.

`mode` says how it answers: "ack", "duh", or "silent" (reads and never answers), `script` how
it answers the next frames before that; with `time`
(its own clock) it NAKs, with its time, a message stamped more than 20 s away from it, as a
receiver does. It reads ADM-CID and SIA-DCS (whose DC-03 code must be one it knows) and
listens on TCP and UDP at once.
"""

from __future__ import annotations

import asyncio
import re
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

import crcmod.predefined
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

CRC = crcmod.predefined.mkPredefinedCrcFun("crc-16")
FRAME = re.compile(
    rb'\n(?P<crc>[0-9A-F]{4})0(?P<len>[0-9A-F]{3})(?P<body>"(?P<star>\*?)(?P<id>ADM-CID|SIA-DCS|NULL)"'
    rb"(?P<seq>\d{4})R(?P<rcv>[0-9A-F]{1,6})L(?P<line>[0-9A-F]{1,6})#(?P<acct>[0-9A-F]{3,16})"
    rb"\[(?P<rest>[^\r]*))\r"
)
CONTENT = re.compile(
    r"(?:#(?P<acct>[0-9A-F]{3,16})\|(?P<q>[136])(?P<code>\d{3}) (?P<pp>\d{2}) (?P<zzz>\d{3}))?\]"
    r"_(?P<ts>\d{2}:\d{2}:\d{2},\d{2}-\d{2}-\d{4})"
)
# SIA-DCS: new event N, optional area ri<n>/, a DC-03 code of two letters
# from the codes a receiver knows, the zone or user number
SIA_CONTENT = re.compile(
    r"#(?P<acct>[0-9A-F]{3,16})\|N(?:ri(?P<ri>\d{1,2})/)?(?P<code>[A-Z]{2})(?P<zone>\d{1,4})\]"
    r"_(?P<ts>\d{2}:\d{2}:\d{2},\d{2}-\d{2}-\d{4})"
)
# the DC-03 codes this receiver knows (a centre DUHs or NAKs others)
SIA_CODES = frozenset(
    re.findall(
        r"[A-Z]{2}",
        "BA BR FA FR PA PR HA HR TA TR MA MR QA QR UA UR US UT UJ OP CL OA CA OG CG OC"
        " YX YZ AT AR YT YR YM YA YH IA IR ET ER YS YK FT FJ EE BD BE DD DG CI JP CR BB BU"
        " RX RP LB LX",
    )
)


@dataclass
class Received:
    ident: str
    seq: str
    account: str
    data: str  # "1130 02 001", "" for NULL
    at: datetime


@dataclass
class StrictReceiver:
    account: str = "1234"
    key: bytes | None = None
    mode: str = "ack"
    time: Callable[[], datetime] | None = None
    script: list[str] = field(default_factory=list)  # modes for the next frames, then `mode`
    received: list[Received] = field(default_factory=list)
    refused: list[str] = field(default_factory=list)  # why each refused frame was refused
    swallowed: int = 0  # frames read and left unanswered ("silent")
    tcp_port: int = 0
    udp_port: int = 0

    async def start(self) -> StrictReceiver:
        self._server = await asyncio.start_server(self._tcp, "127.0.0.1", 0)
        self.tcp_port = self._server.sockets[0].getsockname()[1]
        loop = asyncio.get_running_loop()
        self._udp, _ = await loop.create_datagram_endpoint(
            lambda: _Udp(self), local_addr=("127.0.0.1", 0)
        )
        self.udp_port = self._udp.get_extra_info("sockname")[1]
        return self

    async def stop(self) -> None:
        self._server.close()
        self._udp.close()

    def messages(self) -> list[Received]:
        return [r for r in self.received if r.ident != "NULL"]

    # ------------------------------------------------------------------ the checks

    def answer(self, raw: bytes) -> bytes | None:
        m = FRAME.fullmatch(raw)
        if m is None:
            self.refused.append(f"shape: {raw!r}")
            return self._frame('"NAK"0000R0L0A0[]' + self._now())
        body = m.group("body")
        if int(m.group("len"), 16) != len(body):
            self.refused.append("length")
            return self._frame('"NAK"0000R0L0A0[]' + self._now())
        if int(m.group("crc"), 16) != CRC(body):
            self.refused.append("crc")
            return self._frame('"NAK"0000R0L0A0[]' + self._now())
        rest = m.group("rest").decode()
        if m.group("star"):
            assert self.key is not None, "an encrypted frame and no key"
            dec = Cipher(algorithms.AES(self.key), modes.CBC(bytes(16))).decryptor()
            plain = dec.update(bytes.fromhex(rest)) + dec.finalize()
            assert len(bytes.fromhex(rest)) % 16 == 0
            rest = plain.decode().split("|", 1)[1]
        sia = m.group("id") == b"SIA-DCS"
        c = (SIA_CONTENT if sia else CONTENT).fullmatch(rest)
        if sia and c is not None and c.group("code") not in SIA_CODES:
            c = None
        if c is None or (c.group("acct") not in (None, m.group("acct").decode())):
            self.refused.append(f"content: {rest!r}")
            return self._frame('"NAK"0000R0L0A0[]' + self._now())
        at = datetime.strptime(c.group("ts"), "%H:%M:%S,%m-%d-%Y").replace(tzinfo=UTC)
        ident, seq = m.group("id").decode(), m.group("seq").decode()
        data = "" if ident == "NULL" else rest.split("|", 1)[1].split("]")[0]
        mode = self.script.pop(0) if self.script else self.mode
        if mode == "silent":
            self.swallowed += 1
            return None
        if self.time is not None and abs(at - self.time()) > timedelta(seconds=20):
            self.refused.append("timestamp")
            return self._frame('"NAK"0000R0L0A0[]' + self._now(self.time()))
        self.received.append(Received(ident, seq, m.group("acct").decode(), data, at))
        ident_out = "DUH" if mode == "duh" and ident != "NULL" else "ACK"
        return self._frame(f'"{ident_out}"{seq}R{m.group("rcv").decode()}L0#{self.account}[]')

    def _now(self, at: datetime | None = None) -> str:
        return (at or datetime.now(UTC)).strftime("_%H:%M:%S,%m-%d-%Y")

    @staticmethod
    def _frame(body: str) -> bytes:
        b = body.encode()
        return b"\n" + f"{CRC(b):04X}{len(b):04X}".encode() + b + b"\r"

    async def _tcp(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while True:
                raw = await reader.readuntil(b"\r")
                reply = self.answer(raw)
                if reply is not None:
                    writer.write(reply)
                    await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            writer.close()


class _Udp(asyncio.DatagramProtocol):
    def __init__(self, receiver: StrictReceiver) -> None:
        self.receiver = receiver

    def connection_made(self, transport):  # type: ignore[no-untyped-def]
        self.transport = transport

    def datagram_received(self, data, addr):  # type: ignore[no-untyped-def]
        reply = self.receiver.answer(data)
        if reply is not None:
            self.transport.sendto(reply, addr)


class ThreadedReceiver:
    """The strict receiver on a loop of its own, beside the test's processes."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self.rx = StrictReceiver()
        threading.Thread(target=self.loop.run_forever, daemon=True).start()
        asyncio.run_coroutine_threadsafe(self.rx.start(), self.loop).result(10)

    def stop(self) -> None:
        asyncio.run_coroutine_threadsafe(self.rx.stop(), self.loop).result(10)
        self.loop.call_soon_threadsafe(self.loop.stop)
