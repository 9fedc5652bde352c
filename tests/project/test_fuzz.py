"""Fuzzing (hypothesis, bounded) of what comes from outside: detector serial lines and site
configuration files. Never a crash, never a state change from an invalid input, always a clear
error. (MQTT command payloads are fuzzed with the command handling, by its owner.)

Serial lines: random bytes and mutated valid lines through the real parser and the detector
monitor, and a smaller sample through the real SerialLineReader on a pty. Configs: the
reference config mutated (keys dropped, types changed, values swapped, ids duplicated, bad
durations, random YAML) through the real loader, and `officeguard check-config` as a process.
Control socket: random and malformed requests to a running daemon answer with a plain error
and never stop it.
"""

from __future__ import annotations

import asyncio
import copy
import json
import os
import subprocess
import sys
import traceback
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import HealthCheck, Phase, example, given, settings
from hypothesis import strategies as st

from controller.clock import VirtualClock
from controller.config import ConfigError, Loaded, parse_config, parse_duration
from controller.drone import geo, odid
from controller.drone.detector import DetectorMonitor
from controller.drone.protocol import MAX_LINE, ProtocolError, encode_line, frame, parse_line
from hardware import SerialLineReader
from hardware.sim import SimSerial
from tests.conftest import ROOT, reference_text
from tests.e2e import DEMO_CONFIG, shows_code

DEMO = parse_config(DEMO_CONFIG.read_text(encoding="utf-8"), "demo.yaml").config
DETECTOR = DEMO.drone_detectors[0]
T0 = datetime(2026, 3, 4, 5, 0, tzinfo=UTC)
# bounded: a few hundred examples each, no deadline (the machine is shared), no "explain"
# phase (its tracing is slow on Python 3.11); the "ci" profile in conftest derandomizes
PHASES = [Phase.explicit, Phase.reuse, Phase.generate, Phase.target, Phase.shrink]
SCALE = 10 if os.environ.get("OFFICEGUARD_SLOW") == "1" else 1  # longer runs behind the flag
pytestmark = pytest.mark.timeout(120 * SCALE)
FUZZ = settings(
    max_examples=200 * SCALE,
    deadline=None,
    phases=PHASES,
    suppress_health_check=[HealthCheck.too_slow],
)

# ----------------------------------------------------------------------------- serial lines


def _rid_hex() -> str:
    lat, lon = geo.destination(DEMO.site.location.lat, DEMO.site.location.lon, 45.0, 200.0)  # type: ignore[union-attr]
    return odid.encode_message_pack(
        [
            odid.encode_basic_id("1596F350457000000001"),
            odid.encode_location(lat, lon, alt_geo=120.0, height=80.0),
            odid.encode_operator_id("VNM-OP-0042"),
        ]
    ).hex()


VALID_LINES = [
    encode_line({"v": 1, "t": "hello", "seq": 0, "fw": "1.2.0", "caps": ["ble4", "rf24"]}),
    encode_line({"v": 1, "t": "hb", "seq": 1, "up": 5, "adv": 3, "drop": 0}),
    encode_line(
        {
            "v": 1,
            "t": "rid",
            "seq": 2,
            "tr": "ble4",
            "mac": "aa:bb:cc:dd:ee:ff",
            "rssi": -70,
            "hex": _rid_hex(),
        }
    ),
    encode_line(
        {
            "v": 1,
            "t": "rf",
            "seq": 3,
            "band": "2g4",
            "ev": "start",
            "id": 7,
            "peak_dbm": -40,
            "floor_dbm": -90,
            "dur_ms": 0,
        }
    ),
    encode_line({"v": 1, "t": "err", "seq": 4, "msg": "radio init failed"}),
]


def monitor_with_history() -> DetectorMonitor:
    """A monitor that has seen a hello, heartbeats, a drone and an RF event at T0."""
    m = DetectorMonitor(DETECTOR, DEMO.site)
    for line in VALID_LINES[:4]:
        m.feed_line(line, T0)
    assert m.lines_ok == 4 and m.tracks.tracks, m.status()
    return m


def state_of(m: DetectorMonitor) -> dict[str, Any]:
    """Everything a line may change, except the counters of bad lines."""
    st_ = m.status()
    for key in ("lines_bad", "bad", "last_bad_line"):
        st_.pop(key)
    return {"status": st_, "tracks": m.retained_tracks(), "troubles": m.troubles()}


@st.composite
def mutated_lines(draw: st.DrawFn) -> bytes:
    """A valid line with bytes flipped, inserted or deleted; sometimes re-framed with a correct
    CRC so the mutation reaches the JSON and field checks instead of stopping at the CRC."""
    line = bytearray(draw(st.sampled_from(VALID_LINES)).rstrip(b"\n"))
    for _ in range(draw(st.integers(1, 4))):
        op = draw(st.sampled_from(["flip", "insert", "delete", "replace"]))
        i = draw(st.integers(0, max(0, len(line) - 1)))
        if op == "flip" and line:
            line[i] ^= 1 << draw(st.integers(0, 7))
        elif op == "insert":
            line[i:i] = draw(st.binary(min_size=1, max_size=8))
        elif op == "delete" and line:
            del line[i : i + draw(st.integers(1, 8))]
        elif line:
            line[i] = draw(st.integers(0, 255))
    if draw(st.booleans()):
        star = line.rfind(b"*")
        body = bytes(line[:star]) if star >= 0 else bytes(line)
        return frame(body).rstrip(b"\n")
    return bytes(line)


JSON_VALUES = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-(2**70), 2**70)
    | st.floats(allow_nan=False)
    | st.text(max_size=20),
    lambda kids: (
        st.lists(kids, max_size=4) | st.dictionaries(st.text(max_size=6), kids, max_size=4)
    ),
    max_leaves=10,
)


@st.composite
def retyped_lines(draw: st.DrawFn) -> bytes:
    """A valid message with one field given a value of any JSON type (correct CRC)."""
    body = json.loads(draw(st.sampled_from(VALID_LINES)).rsplit(b"*", 1)[0])
    key = draw(st.sampled_from(sorted(body)))
    if draw(st.booleans()):
        body[key] = draw(JSON_VALUES)
    else:
        del body[key]
    return frame(json.dumps(body).encode()).rstrip(b"\n")


def check_line(raw: bytes) -> None:
    """The parser returns a message or raises ProtocolError; the monitor never raises, counts
    every invalid line, and an invalid line changes nothing else."""
    try:
        parse_line(raw)
        valid = True
    except ProtocolError as e:
        valid = False
        reason = e.reason
    m = monitor_with_history()
    before = state_of(m)
    bad_before = sum(m.bad.values())
    events = m.feed_line(raw, T0)
    assert m.internal_errors == 0
    if not valid:
        assert events == []
        assert sum(m.bad.values()) == bad_before + 1 and m.bad[reason] >= 1
        assert state_of(m) == before


@FUZZ
@given(st.binary(max_size=MAX_LINE + 40))
def test_random_bytes_as_a_serial_line(raw: bytes) -> None:
    check_line(raw)


@FUZZ
@given(mutated_lines())
def test_mutated_valid_lines(raw: bytes) -> None:
    check_line(raw)


@FUZZ
@given(retyped_lines())
def test_valid_frames_with_wrong_fields(raw: bytes) -> None:
    check_line(raw)


@settings(FUZZ, max_examples=100 * SCALE)
@given(st.binary(min_size=25, max_size=25 * 9).map(bytes.hex), st.sampled_from(["ble4", "wb"]))
def test_random_remote_id_payloads_are_counted_never_a_crash(payload: str, tr: str) -> None:
    m = DetectorMonitor(DETECTOR, DEMO.site)
    line = encode_line(
        {
            "v": 1,
            "t": "rid",
            "seq": 1,
            "tr": tr,
            "mac": "aa:bb:cc:dd:ee:ff",
            "rssi": -60,
            "hex": payload,
        }
    )
    m.feed_line(line, T0)
    assert m.internal_errors == 0
    assert m.lines_ok + sum(m.bad.values()) == 1


def test_flipping_any_single_bit_of_a_valid_line_is_caught() -> None:
    """Exhaustive for one line of each type: CRC-32 catches every single-bit error."""
    for line in VALID_LINES:
        body = line.rstrip(b"\n")
        for i in range(len(body)):
            for bit in range(8):
                raw = bytearray(body)
                raw[i] ^= 1 << bit
                with pytest.raises(ProtocolError):
                    parse_line(bytes(raw))


# -- through the real reader on a pty


async def _through_reader(chunks: list[bytes]) -> tuple[DetectorMonitor, SerialLineReader]:
    clock = VirtualClock(T0)
    loop = asyncio.get_running_loop()
    sim = SimSerial()
    m = monitor_with_history()
    ports: list[bool] = []

    def on_line(line: bytes, at: datetime, too_long: bool) -> None:
        m.feed_line(line, clock.now(), too_long)

    reader = SerialLineReader(
        sim.port, 115200, clock, loop, on_line, lambda ok, at, err: ports.append(ok)
    )
    try:
        reader.start()
        assert ports == [True]
        total = 0
        for c in chunks:
            sim.write(c)
            total += len(c)
        end = encode_line({"v": 1, "t": "hb", "seq": 9, "up": 50, "adv": 3, "drop": 0})
        sim.write(b"\n" + end)  # whatever came before, this line must be parsed
        total += len(end) + 1
        for _ in range(2000):
            if reader.bytes_in >= total:
                break
            await asyncio.sleep(0.002)
        assert reader.bytes_in == total
        assert ports == [True]  # garbage never closes the port
        return m, reader
    finally:
        reader.stop()
        sim.close()


@settings(FUZZ, max_examples=25 * SCALE)  # each example opens a real pty
@given(st.lists(st.binary(max_size=600) | mutated_lines().map(lambda b: b + b"\n"), max_size=6))
def test_garbage_through_the_real_reader_on_a_pty(chunks: list[bytes]) -> None:
    m, reader = asyncio.run(_through_reader(chunks))
    assert m.internal_errors == 0
    assert m.heartbeat is not None and m.heartbeat.seq == 9  # the last good line got through
    # every line the reader handed over was either parsed or counted as bad
    assert m.lines_ok + sum(m.bad.values()) == 4 + reader.lines


# ----------------------------------------------------------------------------- configs

REF_DATA = yaml.safe_load(reference_text())
CODES = [str(u[k]) for u in REF_DATA.get("users", []) for k in ("code", "duress_code") if k in u]


def paths(node: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    out = [prefix] if prefix else []
    if isinstance(node, dict):
        for k, v in node.items():
            out += paths(v, (*prefix, k))
    elif isinstance(node, list):
        for i, v in enumerate(node):
            out += paths(v, (*prefix, i))
    return out


def get(data: Any, path: tuple[Any, ...]) -> Any:
    for p in path:
        data = data[p]
    return data


def put(data: Any, path: tuple[Any, ...], value: Any) -> None:
    get(data, path[:-1])[path[-1]] = value


ALL_PATHS = paths(REF_DATA)
DURATION_PATHS = [
    p
    for p in ALL_PATHS
    if isinstance(p[-1], str)
    and (
        p[-1].endswith(("_delay", "_time", "_timeout", "window", "heartbeat", "debounce"))
        or p[-1] in ("postpone", "prearm_warning")
    )
]
BAD_DURATIONS = st.one_of(
    st.sampled_from(
        [
            "30",
            "-5s",
            "5 minutes",
            "1.5.3s",
            "s",
            "",
            "10x",
            "1e99h",
            "99999999d",
            "3ss",
            "PT30S",
            "∞s",
        ]
    ),
    st.text(max_size=8),
    st.integers(-(10**6), 10**6),
    st.floats(allow_nan=True),
)


@st.composite
def mutated_configs(draw: st.DrawFn) -> str:
    data = copy.deepcopy(REF_DATA)
    for _ in range(draw(st.integers(1, 3))):
        candidates = paths(data)
        if not candidates:
            break
        op = draw(st.sampled_from(["drop", "retype", "swap", "duplicate", "duration"]))
        path = draw(st.sampled_from(candidates))
        parent = get(data, path[:-1])
        if op == "drop":
            del parent[path[-1]]
        elif op == "retype":
            put(data, path, draw(JSON_VALUES))
        elif op == "swap":
            other = draw(st.sampled_from(candidates))
            if other[: len(path)] == path or path[: len(other)] == other:
                continue  # one inside the other
            a, b = copy.deepcopy(get(data, path)), copy.deepcopy(get(data, other))
            put(data, path, b)
            put(data, other, a)
        elif op == "duplicate":
            lists = [p for p in candidates if isinstance(get(data, p), list) and get(data, p)]
            if lists:
                lst = get(data, draw(st.sampled_from(lists)))
                lst.append(copy.deepcopy(draw(st.sampled_from(lst))))
        else:
            live = [p for p in DURATION_PATHS if _exists(data, p)]
            if live:
                put(data, draw(st.sampled_from(live)), draw(BAD_DURATIONS))
    return yaml.safe_dump(data, allow_unicode=True, sort_keys=False)


def _exists(data: Any, path: tuple[Any, ...]) -> bool:
    try:
        get(data, path)
        return True
    except (KeyError, IndexError, TypeError):
        return False


@st.composite
def mangled_text(draw: st.DrawFn) -> str:
    """The reference file's text with characters deleted, inserted or lines shuffled."""
    lines = reference_text().splitlines(keepends=True)
    for _ in range(draw(st.integers(1, 4))):
        i = draw(st.integers(0, len(lines) - 1))
        op = draw(st.sampled_from(["del_line", "dup_line", "indent", "insert", "cut"]))
        if op == "del_line":
            del lines[i]
        elif op == "dup_line":
            lines.insert(i, lines[i])
        elif op == "indent":
            lines[i] = draw(st.sampled_from([" ", "\t", "  - "])) + lines[i]
        elif op == "insert":
            j = draw(st.integers(0, len(lines[i])))
            lines[i] = lines[i][:j] + draw(st.text(max_size=5)) + lines[i][j:]
        else:
            lines[i] = lines[i][: draw(st.integers(0, len(lines[i])))] + "\n"
    return "".join(lines)


def _overflow_bug() -> bool:
    """Known bug (controller/config.py, not this file's owner): parse_duration lets
    OverflowError out for a huge or infinite duration (`heartbeat: 1e300`, `99999999999d`,
    `inf`), so the loader crashes instead of listing the problem. Tolerated below only while
    it is there; test_huge_durations_are_a_config_error holds it."""
    try:
        parse_duration(1e300)
    except OverflowError:
        return True
    except ValueError:
        return False
    return False


def _unplaced_reader_error_bug() -> bool:
    """Known bug (controller/config.py): a control character the YAML reader refuses
    (yaml.reader.ReaderError, not a MarkedYAMLError) gives a problem with neither a path nor a
    line. Tolerated below only while it is there; test_control_character_problem_has_a_line
    holds it."""
    try:
        parse_config("site:\n  id: a\x00b\n")
    except ConfigError as e:
        return any(not p.path and p.line is None for p in e.problems)
    return False


OVERFLOW_BUG = _overflow_bug()
READER_BUG = _unplaced_reader_error_bug()


def check_config(text: str) -> Loaded | ConfigError | None:
    """The loader accepts the text or refuses it with ConfigError, never anything else, and
    every problem says where (a path, or a line for what is not even YAML) and what.
    None: the input hit a known bug (see above) that a strict xfail test holds."""
    try:
        return parse_config(text, "fuzz.yaml")
    except ConfigError as e:
        assert e.problems, "a refusal with no problem listed"
        for p in e.problems:
            assert p.message.strip(), p
            if (
                READER_BUG
                and not p.path
                and p.line is None
                and "unacceptable character" in p.message
            ):
                continue
            assert p.path or p.line is not None, f"problem without a place: {p}"
            assert str(p) in str(e)
        return e
    except OverflowError as e:
        if (
            OVERFLOW_BUG
            and e.__traceback__ is not None
            and any(f.name == "parse_duration" for f in traceback.extract_tb(e.__traceback__))
        ):
            return None
        raise


@FUZZ
@given(mutated_configs())
def test_mutated_reference_config(text: str) -> None:
    check_config(text)


@FUZZ
@given(mangled_text())
def test_mangled_reference_text(text: str) -> None:
    check_config(text)


@FUZZ
@given(st.text(max_size=300) | st.binary(max_size=300).map(lambda b: b.decode("latin-1")))
def test_random_text_as_a_config(text: str) -> None:
    result = check_config(text)
    assert result is None or isinstance(result, ConfigError)


@FUZZ
@given(
    st.sampled_from(
        [(i, k) for i, u in enumerate(REF_DATA["users"]) for k in ("code", "duress_code") if k in u]
    ),
    st.sampled_from(["int", "float", "spaced", "list", "letters", "long"]),
)
def test_a_bad_code_is_refused_without_echoing_it(where: tuple[int, str], how: str) -> None:
    data = copy.deepcopy(REF_DATA)
    i, key = where
    code = str(data["users"][i][key])
    data["users"][i][key] = {
        "int": int(code),
        "float": float(code) + 0.5,
        "spaced": f" {code[:2]} {code[2:]}",
        "list": [code],
        "letters": code + "ab",
        "long": code * 5,
    }[how]
    result = check_config(yaml.safe_dump(data, allow_unicode=True))
    assert isinstance(result, ConfigError)
    assert code not in str(result)


@pytest.mark.parametrize("value", [1e300, 10**30, "inf", "99999999999d", "1e400"])
def test_huge_durations_are_a_config_error(value: object) -> None:
    data = copy.deepcopy(REF_DATA)
    data["zones"][0]["entry_delay"] = value
    with pytest.raises(ConfigError) as e:
        parse_config(yaml.safe_dump(data, allow_unicode=True), "huge.yaml")
    assert any(p.path == "zones[0].entry_delay" for p in e.value.problems)


def test_control_character_problem_has_a_line() -> None:
    text = reference_text().replace("Khu nhà A", "Khu nhà\x07A", 1)
    with pytest.raises(ConfigError) as e:
        parse_config(text, "ctrl.yaml")
    assert all(p.line is not None for p in e.value.problems), [str(p) for p in e.value.problems]


def test_the_reference_config_loads_unchanged() -> None:
    assert isinstance(check_config(reference_text()), Loaded)


CLI_SAMPLES = {
    "no-site-id": lambda d: d["site"].pop("id"),
    "duplicate-sensor": lambda d: d["sensors"].append(copy.deepcopy(d["sensors"][0])),
    "bad-duration": lambda d: d["zones"][0].__setitem__("entry_delay", "30 seconds"),
    "sensors-not-a-list": lambda d: d.__setitem__("sensors", "door"),
}


@pytest.mark.parametrize("name", [*CLI_SAMPLES, "not-yaml"])
def test_check_config_exits_78_with_every_problem(tmp_path: Path, name: str) -> None:
    if name == "not-yaml":
        text = reference_text().replace("zones:", "zones: [", 1)
    else:
        data = copy.deepcopy(REF_DATA)
        CLI_SAMPLES[name](data)
        text = yaml.safe_dump(data, allow_unicode=True, sort_keys=False)
    cfg = tmp_path / "site.yaml"
    cfg.write_text(text, encoding="utf-8")
    expected = check_config(text)
    assert isinstance(expected, ConfigError)
    r = subprocess.run(
        [sys.executable, "-m", "controller", "check-config", "-c", str(cfg)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert r.returncode == 78, (r.stdout, r.stderr)
    out = r.stdout + r.stderr
    assert "Traceback" not in out
    for p in expected.problems:
        assert p.message in out and p.path in out
    for code in CODES:
        assert code not in out


# ----------------------------------------------------------------------------- control socket

CONTROL_CMDS = [
    "status",
    "arm",
    "disarm",
    "bypass",
    "silence",
    "sim.set",
    "sim.pulse",
    "sim.advance",
    "sim.keys",
    "sim.serial",
    "sim.outputs",
]
PLAUSIBLE: dict[str, st.SearchStrategy[Any]] = {
    "zones": st.lists(
        st.sampled_from(["leadership", "finance", "perimeter", "nowhere"]), max_size=3
    ),
    "sensor": st.sampled_from(["door.director", "gate.main", "vib.safe1", "nope"]),
    "state": st.sampled_from(["active", "inactive", "open"]),
    "code": st.sampled_from(["1357", "1358", "0000", ""]),  # not 2468: help text shows it
    "mode": st.sampled_from(["away", "home", "night", "party"]),
    "keypad": st.sampled_from(["keypad.hall", "keypad.nope"]),
    "keys": st.text(alphabet="0123456789*#AB ", max_size=70),
    "detector": st.sampled_from(["rf.roof", "rf.none"]),
    "line": st.text(max_size=200) | mutated_lines().map(lambda b: b.decode("latin-1")),
    "duration": st.sampled_from(["1s", "30s", "5m", "-1s", "1e400", "401d", "x"]),
    "count": st.integers(-5, 20),
    "interval": st.floats(allow_nan=True, allow_infinity=True) | st.sampled_from([0.01, 0.3]),
    "force": st.booleans(),
    "bypass": st.booleans(),
}


@st.composite
def control_requests(draw: st.DrawFn) -> bytes:
    kind = draw(st.sampled_from(["plausible", "anything", "raw"]))
    if kind == "raw":
        return draw(st.binary(max_size=300)).replace(b"\n", b" ") + b"\n"
    req: dict[str, Any] = {"cmd": draw(st.sampled_from(CONTROL_CMDS) | st.text(max_size=10))}
    for key in draw(st.lists(st.sampled_from(sorted(PLAUSIBLE)), max_size=4, unique=True)):
        req[key] = draw(PLAUSIBLE[key] if kind == "plausible" else JSON_VALUES)
    if draw(st.integers(0, 9)) == 0:
        del req["cmd"]
    return json.dumps(req).encode() + b"\n"


def _ask(path: str, data: bytes) -> dict[str, Any]:
    from controller.control import exchange

    reply: dict[str, Any] = json.loads(exchange(path, data))
    return reply


def _known_advance_overflow(sent: Any, error: str) -> bool:
    """`sim advance` with a duration parse_duration overflows on (the OverflowError bug
    above) is answered as an internal error: tolerated only while the bug is there."""
    if not isinstance(sent, dict) or sent.get("cmd") != "sim.advance":
        return False
    if error != "internal error in sim.advance (see the daemon's log)":
        return False
    try:
        parse_duration(sent.get("duration"))
    except OverflowError:
        return True
    except ValueError:
        return False
    return False


@pytest.mark.integration
def test_sim_advance_with_a_huge_duration_is_refused_plainly(tmp_path: Path) -> None:
    from tests.e2e import Site

    site = Site(tmp_path / "state")
    site.start("2026-03-04T12:00:00+07:00")
    try:
        r = site.og("sim", "advance", "1e400", check=False)
        assert r.returncode != 0
        assert "internal error" not in r.stdout + r.stderr, r.stderr
    finally:
        site.stop()


@pytest.mark.integration
def test_control_socket_requests_never_hurt_the_daemon(tmp_path: Path) -> None:
    """Whatever a local client sends: a JSON reply, a plain error for a refusal (never an
    internal error, never a code), and the daemon keeps running."""
    from controller.control import socket_path
    from tests.e2e import Site

    site = Site(tmp_path / "state")
    site.start("2026-03-04T12:00:00+07:00")
    path = str(socket_path(site.state_dir))
    seen: dict[str, int] = {"ok": 0, "refused": 0}
    try:

        @settings(FUZZ, max_examples=150 * SCALE)
        @given(control_requests())
        @example(b'{"cmd": "sim.advance", "duration": "1e400"}\n')
        @example(b'{"cmd": "sim.keys", "keypad": "keypad.hall", "keys": "1357#", "code": "1357"}\n')
        def one(data: bytes) -> None:
            reply = _ask(path, data)
            assert isinstance(reply.get("ok"), bool), reply
            try:
                sent = json.loads(data)
            except ValueError:
                sent = None
            if reply["ok"]:
                seen["ok"] += 1
            else:
                seen["refused"] += 1
                error = reply.get("error")
                assert isinstance(error, str) and error, reply
                if OVERFLOW_BUG and _known_advance_overflow(sent, error):
                    seen["known_bug"] = seen.get("known_bug", 0) + 1
                else:
                    assert not error.startswith("internal error"), (data, reply)
            code = sent.get("code") if isinstance(sent, dict) else None
            if isinstance(code, str) and len(code) >= 4:
                assert not shows_code(code, json.dumps(reply)), "a reply echoes the code it was sent"

        one()
        huge = _ask(path, b'{"cmd": "status", "pad": "' + b"x" * 70_000 + b'"}\n')
        assert huge == {"ok": False, "error": "request too large"}
        assert site.proc is not None and site.proc.poll() is None, site.log()[-3000:]
        assert site.status()["site"] == "office-a"
        for trace in site.log().split("Traceback")[1:]:  # only the known bug's, if any
            assert seen.get("known_bug") and "OverflowError" in trace, site.log()[-3000:]
        assert seen["ok"] > 0 and seen["refused"] > 0, seen
    finally:
        site.stop()
