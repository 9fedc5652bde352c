"""controller/logs.py: journald-friendly structured lines, a human format elsewhere, and no
secret in either; end to end, a keypad and CLI session through the real daemon (debug logging
on) leaves no code in what the daemon writes to stderr."""

from __future__ import annotations

import io
import json
import logging
import re
from collections.abc import Iterator
from pathlib import Path

import pytest

from controller.logs import (
    REDACTED,
    HumanFormatter,
    JournalFormatter,
    RedactFilter,
    make_formatter,
    redact,
    setup_logging,
)
from tests.e2e import Site


@pytest.mark.parametrize(
    ("text", "secret"),
    [
        ("code=2468", "2468"),
        ("arm refused: code = 2468 for leadership", "2468"),
        ('request {"cmd": "arm", "code": "2468", "zones": ["a"]}', "2468"),
        ("{'code': '1357', 'zone': 'x'}", "1357"),
        ("duress_code: 1358", "1358"),
        ('"duress_code":"1358"', "1358"),
        ("sim keys keys='2468*1' keypad=keypad.hall", "2468*1"),
        ("mqtt password=hunter2 user=office-a", "hunter2"),
        ('{"signature": "9f8a77c0", "id": "c1"}', "9f8a77c0"),
        ("code_hash=scrypt$4096$8$1$abc$def", "scrypt$4096$8$1$abc$def"),
        ('Code: "24 68"', "24 68"),
    ],
)
def test_redact_hides_the_value_after_a_secret_key(text: str, secret: str) -> None:
    out = redact(text)
    assert secret not in out
    assert REDACTED in out


@pytest.mark.parametrize(
    "text",
    [
        "event 12 alarm E134 Báo động cửa phòng Giám đốc",
        "wrong code at keypad.hall (3 of 5)",
        "cid=E461 zone=leadership",
        "password_file=/etc/officeguard/mqtt.pass",
        "bypass=door.director",
        "keypad keypad.hall: 2 keys at once, ignored",
    ],
)
def test_redact_leaves_ordinary_lines_alone(text: str) -> None:
    assert redact(text) == text


def _record(msg: str, *args: object, exc: bool = False, **extra: object) -> logging.LogRecord:
    exc_info = None
    if exc:
        try:
            raise ValueError("bad request code=2468")
        except ValueError:
            import sys

            exc_info = sys.exc_info()
    rec = logging.LogRecord("controller.test", logging.WARNING, __file__, 1, msg, args, exc_info)
    rec.__dict__.update(extra)
    return rec


def test_filter_redacts_arguments_extras_and_tracebacks() -> None:
    rec = _record("control request %s", {"cmd": "disarm", "code": "2468"}, exc=True, code=2468)
    assert RedactFilter().filter(rec)
    kv = JournalFormatter("kv").format(rec)
    human = HumanFormatter().format(rec)
    js = JournalFormatter("json").format(rec)
    for line in (kv, human, js):
        assert "2468" not in line, line
    assert kv.startswith("<4>level=warning logger=controller.test msg=")
    assert "\n" not in kv and "\n" not in js  # one record, one journal entry
    obj = json.loads(js[len("<4>") :])
    assert obj["level"] == "warning" and obj["logger"] == "controller.test"
    assert obj["code"] == REDACTED
    assert "ValueError" in obj["exc"]


def test_structured_extras_are_scrubbed_too() -> None:
    rec = _record(
        "remote command", req={"action": "DISARM", "code": "2468", "sub": [{"pin_code": 1}]}
    )
    RedactFilter().filter(rec)
    js = JournalFormatter("json").format(rec)
    obj = json.loads(js[3:])
    assert obj["req"] == {"action": "DISARM", "code": REDACTED, "sub": [{"pin_code": REDACTED}]}


def test_priorities_follow_the_level() -> None:
    f = JournalFormatter("kv")
    for level, prio in (
        (logging.DEBUG, 7),
        (logging.INFO, 6),
        (logging.WARNING, 4),
        (logging.ERROR, 3),
        (logging.CRITICAL, 2),
    ):
        rec = logging.LogRecord("x", level, __file__, 1, "m", None, None)
        assert f.format(rec).startswith(f"<{prio}>")


def test_format_follows_the_environment() -> None:
    assert isinstance(make_formatter({}), HumanFormatter)
    kv = make_formatter({"INVOCATION_ID": "abc"})
    assert isinstance(kv, JournalFormatter) and kv.style == "kv"
    js = make_formatter({"JOURNAL_STREAM": "8:123", "OFFICEGUARD_LOG_FORMAT": "json"})
    assert isinstance(js, JournalFormatter) and js.style == "json"
    assert isinstance(
        make_formatter({"INVOCATION_ID": "a", "OFFICEGUARD_LOG_FORMAT": "human"}), HumanFormatter
    )


@pytest.fixture
def restore_root() -> Iterator[None]:
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    yield
    root.handlers[:] = handlers
    root.setLevel(level)


def test_setup_logging_installs_one_handler_and_replaces_it(restore_root: None) -> None:
    buf = io.StringIO()
    setup_logging(verbose=True, stream=buf, env={"INVOCATION_ID": "x"})
    setup_logging(verbose=True, stream=buf, env={"INVOCATION_ID": "x"})
    ours = [h for h in logging.getLogger().handlers if getattr(h, "_officeguard_handler", False)]
    assert len(ours) == 1
    logging.getLogger("controller.keypad.component").debug("keys=%s at %s", "1358#", "keypad.hall")
    logging.getLogger("controller.daemon").info("event %s %s", 7, "arm", extra={"seq": 7})
    out = buf.getvalue().splitlines()
    assert "1358" not in buf.getvalue()
    assert out[0].startswith("<7>level=debug logger=controller.keypad.component")
    assert out[1] == '<6>level=info logger=controller.daemon msg="event 7 arm" seq=7'


# ------------------------------------------------------------------ through the real daemon

CODES = ("2468", "1357", "1358", "0000", "9999")


@pytest.mark.integration
def test_no_code_in_the_daemons_stderr_after_a_keypad_and_cli_session(tmp_path: Path) -> None:
    site = Site(
        tmp_path / "state",
        extra_env={"INVOCATION_ID": "test", "OFFICEGUARD_LOG_FORMAT": "kv"},
    )
    site.start("2026-03-04T12:00:00+07:00", "--verbose")
    try:
        site.og("sim", "keys", "keypad.hall", "2468*3")  # arm night at the keypad
        site.advance("61s")
        site.og("sim", "keys", "keypad.hall", "0000#")  # a wrong code
        site.og("sim", "keys", "keypad.hall", "1358#")  # duress
        site.og("arm", "perimeter", input="2468\n")  # CLI with a code
        r = site.og("disarm", "perimeter", input="9999\n", check=False)  # a wrong one
        assert r.returncode == 1
        site.og("disarm", "perimeter", input="1357\n", check=False)  # not the director's zone
        site.og("sim", "set", "gate.main", "active")
    finally:
        assert site.stop() == 0
    log = site.log()
    lines = [ln for ln in log.splitlines() if ln.strip()]
    # structured: every line the daemon wrote is a journald entry with its priority
    assert lines and all(re.match(r"<[0-7]>level=\w+ logger=\S+ msg=", ln) for ln in lines), [
        ln for ln in lines if not re.match(r"<[0-7]>level=", ln)
    ][:5]
    assert any("level=debug" in ln for ln in lines) or any("level=info" in ln for ln in lines)
    assert any("duress" in ln.lower() or "E121" in ln for ln in lines)  # the session was logged
    for code in CODES:  # a code standing alone, not digits inside a timestamp or an event id
        assert not re.search(rf"(?<![0-9A-Za-z.:+-]){code}(?![0-9A-Za-z])", log), code


def test_library_chatter_stays_out_of_the_operators_view_unless_verbose(
    restore_root: None,
) -> None:
    buf = io.StringIO()
    setup_logging(verbose=False, stream=buf, env={})
    logging.getLogger("asyncio").info("using selector: EpollSelector")
    logging.getLogger("gpiozero").info("pin factory chosen")
    logging.getLogger("controller.daemon").info("event 1 system started")
    logging.getLogger("paho.mqtt.client").warning("socket error")
    lines = buf.getvalue().splitlines()
    assert len(lines) == 2, lines
    assert lines[0].endswith("INFO controller.daemon: event 1 system started")
    assert lines[1].endswith("WARNING library paho.mqtt.client: socket error")
    setup_logging(verbose=True, stream=buf, env={})
    logging.getLogger("asyncio").info("using selector: EpollSelector")
    assert buf.getvalue().splitlines()[-1].endswith(
        "INFO library asyncio: using selector: EpollSelector"
    )
