"""Test helper: drive a running daemon's control socket fast, straight from the test process.

The CLI starts a Python process per command (~150 ms each); a storm of thousands of sensor
changes needs the socket itself. The control server answers one request per connection, so
`Storm` connects once per request (a unix socket connect costs microseconds) and keeps no state
between them. Every request is the same JSON line the CLI would send.

Also here: reading a daemon's journal straight from SQLite (read-only, like `officeguard log`
does) and the checks the fault tests make after each fault.
"""

from __future__ import annotations

import json
import random
import sqlite3
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from controller.control import exchange, socket_path
from controller.events import Event
from controller.journal import read_events


class StormError(Exception):
    """The daemon refused a request (the message is its error text)."""


class Storm:
    """Requests to one daemon's control socket. `send` raises ConnectionError when no daemon
    listens (killed, not yet started) and StormError when it refuses the request."""

    def __init__(self, state_dir: str | Path, timeout: float = 30.0) -> None:
        self.path = str(socket_path(state_dir))
        self.timeout = timeout
        self.sent = 0

    def send(self, cmd: str, **args: Any) -> dict[str, Any]:
        try:
            buf = exchange(self.path, json.dumps({"cmd": cmd, **args}).encode() + b"\n", self.timeout)
        except (FileNotFoundError, ConnectionRefusedError) as e:
            raise ConnectionError(f"no daemon at {self.path}: {e}") from None
        if not buf:
            raise ConnectionError("the daemon closed the connection without a reply")
        self.sent += 1
        reply: dict[str, Any] = json.loads(buf)
        if not reply.get("ok"):
            raise StormError(str(reply.get("error", "refused")))
        return reply

    def set(self, sensor: str, active: bool) -> dict[str, Any]:
        return self.send("sim.set", sensor=sensor, state="active" if active else "inactive")

    def status(self) -> dict[str, Any]:
        status: dict[str, Any] = self.send("status")["status"]
        return status

    def arm(self, zones: Sequence[str], code: str, mode: str = "away") -> dict[str, Any]:
        return self.send("arm", zones=list(zones), code=code, mode=mode)


@dataclass
class Changes:
    """A reproducible stream of sensor changes: each step flips one sensor chosen at random."""

    sensors: Sequence[str]
    seed: int
    state: dict[str, bool] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.rng = random.Random(self.seed)
        for s in self.sensors:
            self.state.setdefault(s, False)

    def __iter__(self) -> Iterator[tuple[str, bool]]:
        while True:
            s = self.rng.choice(list(self.sensors))
            self.state[s] = not self.state[s]
            yield s, self.state[s]


# ------------------------------------------------------------------ reading the journal


def journal_events(state_dir: str | Path) -> list[Event]:
    """Every event in the daemon's logbook, oldest first (read-only; the daemon may run)."""
    return list(read_events(Path(state_dir) / "journal.db"))


def integrity(state_dir: str | Path) -> str:
    """`PRAGMA integrity_check` of the logbook: "ok" when it is sound."""
    conn = sqlite3.connect(f"file:{Path(state_dir) / 'journal.db'}?mode=ro", uri=True)
    try:
        row = conn.execute("PRAGMA integrity_check").fetchone()
        return str(row[0])
    finally:
        conn.close()


def seq_gaps(events: Sequence[Event]) -> list[int]:
    """Sequence numbers missing between the first and the last event (empty: no gap)."""
    seqs = sorted(e.seq for e in events)
    have = set(seqs)
    return [n for n in range(seqs[0], seqs[-1] + 1) if n not in have] if seqs else []


def delivery_problems(journal: Sequence[Event], received: Sequence[dict[str, Any]]) -> list[str]:
    """What is wrong between the logbook and what a subscriber received on P/event: a journal
    id never received, a duplicate whose content differs from the first copy, or an event
    received that is not in the journal. Empty: every event delivered, duplicates harmless."""
    problems: list[str] = []
    first: dict[str, dict[str, Any]] = {}
    for msg in received:
        eid = msg.get("id")
        if not isinstance(eid, str):
            problems.append(f"received an event without an id: {msg}")
            continue
        if eid in first and first[eid] != msg:
            problems.append(f"duplicate {eid} differs: {first[eid]} != {msg}")
        first.setdefault(eid, msg)
    ids = {e.id for e in journal}
    missing = [e for e in journal if e.id not in first]
    problems += [f"journal seq {e.seq} ({e.kind}, id {e.id}) never received" for e in missing]
    problems += [f"received id {i} that the journal does not have" for i in first if i not in ids]
    for e in journal:
        got = first.get(e.id)
        if got is not None and got.get("seq") != e.seq:
            problems.append(f"id {e.id}: journal seq {e.seq}, received seq {got.get('seq')}")
    return problems
