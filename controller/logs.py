"""Logging set-up for the daemon and the command line: structured lines for journald under
systemd, a human format on a terminal, and never a secret in either.

Under systemd (INVOCATION_ID or JOURNAL_STREAM set) every record is one line on stderr that
journald stores with the right priority: a `<N>` syslog prefix (journald reads it from the
stream, SyslogLevelPrefix= is on by default), then `key=value` pairs (logfmt) or, with
OFFICEGUARD_LOG_FORMAT=json, one JSON object. Fields: level, logger, msg, plus any `extra={...}`
the caller gave and the exception text. `journalctl -u officeguard -o cat` shows them as they
were written. Elsewhere the format is `time level logger: message`.

Secrets: `RedactFilter` (installed on the handler, and applied again by the formatters to the
final line, tracebacks included) replaces the value that follows a secret-looking key, such as
`code=1234`, `"code": "1234"`, `duress_code: 1358`, `keys='2468#'`, `password=...`,
`signature=...`, with `***`. Log calls should never pass a code in the first place; this is the
net under them.

Libraries (paho, asyncio, gpiozero...) log for their developers, not for the operator: their
records below WARNING are dropped unless `-v` is given, and in the human format their lines
say `library <logger>:` so nobody takes them for the controller's own words. Under systemd the
`logger=` field already names them.

Use: `setup_logging(verbose=args.verbose)` once, before anything logs.
"""

from __future__ import annotations

import json
import logging
import os
import re
import sys
from collections.abc import Mapping
from typing import IO, Any

REDACTED = "***"

# keys whose value is a secret: a user's code (and the keys typed at a keypad, which contain
# it), passwords, keys and signatures of remote commands
_SECRET_WORDS = [
    "code",
    "codes",
    "pin_code",
    "password",  # noqa: S105 - the name of a field, not a password
    "passwd",
    "pass",
    "secret",
    "token",
    "keys",
    "key",
    "hmac",
    "signature",
    "hash",
]
_SECRET_KEY = r"(?:[A-Za-z]+_)*(?:" + "|".join(_SECRET_WORDS) + ")"
_SECRET_RE = re.compile(
    r"(?P<key>(?<![A-Za-z0-9])['\"]?" + _SECRET_KEY + r"['\"]?)"
    r"(?P<sep>\s*[:=]\s*)"
    r"(?P<value>\"(?:[^\"\\]|\\.)*\"|'(?:[^'\\]|\\.)*'|[^\s,;)}\]\\\"']+)",
    re.IGNORECASE,
)
# keys that look like a secret key but hold none (file names of secrets, the code's kind...)
_NOT_SECRET = re.compile(r"(?:_file|_path)['\"]?$", re.IGNORECASE)


def redact(text: str) -> str:
    """`text` with every value after a secret-looking key replaced by ***."""

    def sub(m: re.Match[str]) -> str:
        key = m.group("key")
        if _NOT_SECRET.search(key):
            return m.group(0)
        value = m.group("value")
        quote = value[0] if value[:1] in ("'", '"') else ""
        return f"{key}{m.group('sep')}{quote}{REDACTED}{quote}"

    return _SECRET_RE.sub(sub, text)


def _is_secret_key(key: str) -> bool:
    return bool(re.fullmatch(_SECRET_KEY, key, re.IGNORECASE)) and not _NOT_SECRET.search(key)


def _scrub(value: Any) -> Any:
    """A structured value with the secrets in it redacted (keys of dicts looked at too)."""
    if isinstance(value, str):
        return redact(value)
    if isinstance(value, Mapping):
        return {
            k: REDACTED if isinstance(k, str) and _is_secret_key(k) else _scrub(v)
            for k, v in value.items()
        }
    if isinstance(value, list | tuple | set | frozenset):
        return [_scrub(v) for v in value]
    return value


class RedactFilter(logging.Filter):
    """Rewrites each record's message (arguments merged in) with the secrets redacted."""

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except Exception:  # a bad format string: keep the raw parts, redacted
            message = f"{record.msg} {record.args}"
        cleaned = redact(message)
        if cleaned != message or record.args:
            record.msg, record.args = cleaned, None
        for key, value in list(record.__dict__.items()):
            if key in _STANDARD:
                continue
            record.__dict__[key] = REDACTED if _is_secret_key(key) else _scrub(value)
        return True


# attributes every LogRecord has; anything else came from `extra=`
_STANDARD = frozenset(vars(logging.LogRecord("x", logging.INFO, "x", 0, "x", None, None))) | {
    "message",
    "asctime",
    "taskName",
}

# syslog priorities journald understands as a `<N>` prefix
_PRIORITY = {
    logging.CRITICAL: 2,
    logging.ERROR: 3,
    logging.WARNING: 4,
    logging.INFO: 6,
    logging.DEBUG: 7,
}


def _priority(levelno: int) -> int:
    for level in (logging.CRITICAL, logging.ERROR, logging.WARNING, logging.INFO):
        if levelno >= level:
            return _PRIORITY[level]
    return _PRIORITY[logging.DEBUG]


def _extras(record: logging.LogRecord) -> dict[str, Any]:
    return {
        k: v for k, v in record.__dict__.items() if k not in _STANDARD and not k.startswith("_")
    }


def _fields(record: logging.LogRecord, formatter: logging.Formatter) -> dict[str, Any]:
    fields: dict[str, Any] = {
        "level": record.levelname.lower(),
        "logger": record.name,
        "msg": record.getMessage(),
    }
    for k, v in _extras(record).items():
        fields.setdefault(k, v)
    if record.exc_info:
        fields["exc"] = formatter.formatException(record.exc_info)
    if record.stack_info:
        fields["stack"] = record.stack_info
    return fields


def _logfmt_value(v: Any) -> str:
    s = v if isinstance(v, str) else json.dumps(v, ensure_ascii=False, default=str)
    if s and not re.search(r"[\s\"=\\]", s):
        return s
    return json.dumps(s, ensure_ascii=False)


class JournalFormatter(logging.Formatter):
    """`<N>key=value ...` (logfmt) or `<N>{json}` lines for journald, one record per line."""

    def __init__(self, style: str = "kv") -> None:
        super().__init__()
        self.style = style

    def format(self, record: logging.LogRecord) -> str:
        # redacted field by field, before quoting, so escaping cannot hide a secret
        fields = {k: _scrub(v) for k, v in _fields(record, self).items()}
        if self.style == "json":
            body = json.dumps(fields, ensure_ascii=False, default=lambda o: redact(str(o)))
        else:
            body = " ".join(f"{k}={redact(_logfmt_value(v))}" for k, v in fields.items())
        # one record is one journal entry: newlines inside are escaped by both styles
        return f"<{_priority(record.levelno)}>" + body


OUR_LOGGERS = ("controller", "hardware", "officeguard", "bench", "tests", "__main__")


def is_library(record: logging.LogRecord) -> bool:
    """A record from a library's logger rather than the project's own."""
    return record.name.split(".", 1)[0] not in OUR_LOGGERS


class LibraryFilter(logging.Filter):
    """Keeps the libraries' chatter out of the operator's view: below WARNING only with -v."""

    def __init__(self, verbose: bool) -> None:
        super().__init__()
        self.verbose = verbose

    def filter(self, record: logging.LogRecord) -> bool:
        return self.verbose or record.levelno >= logging.WARNING or not is_library(record)


class HumanFormatter(logging.Formatter):
    def __init__(self) -> None:
        super().__init__("%(asctime)s %(levelname)s %(name)s: %(message)s")

    def format(self, record: logging.LogRecord) -> str:
        line = super().format(record)
        if is_library(record):
            head = f" {record.levelname} {record.name}: "
            line = line.replace(head, f" {record.levelname} library {record.name}: ", 1)
        extras = _extras(record)
        if extras:
            line += " " + " ".join(f"{k}={_logfmt_value(v)}" for k, v in extras.items())
        return redact(line)


def under_systemd(env: Mapping[str, str] | None = None) -> bool:
    env = os.environ if env is None else env
    return bool(env.get("INVOCATION_ID") or env.get("JOURNAL_STREAM"))


def make_formatter(env: Mapping[str, str] | None = None) -> logging.Formatter:
    """The formatter for this environment: OFFICEGUARD_LOG_FORMAT=json|kv|human wins, else
    kv under systemd and human elsewhere."""
    env = os.environ if env is None else env
    choice = (env.get("OFFICEGUARD_LOG_FORMAT") or "").strip().lower()
    if choice not in ("json", "kv", "human"):
        choice = "kv" if under_systemd(env) else "human"
    if choice == "human":
        return HumanFormatter()
    return JournalFormatter(choice)


_HANDLER_MARK = "_officeguard_handler"


def setup_logging(
    verbose: bool = False,
    stream: IO[str] | None = None,
    env: Mapping[str, str] | None = None,
) -> logging.Handler:
    """Configure the root logger once: one stderr handler with the redact filter and the
    formatter for this environment (calling it again replaces our handler, not others').
    Returns the handler."""
    root = logging.getLogger()
    for h in list(root.handlers):
        if getattr(h, _HANDLER_MARK, False):
            root.removeHandler(h)
    handler = logging.StreamHandler(stream if stream is not None else sys.stderr)
    setattr(handler, _HANDLER_MARK, True)
    handler.addFilter(RedactFilter())
    handler.addFilter(LibraryFilter(verbose))
    handler.setFormatter(make_formatter(env))
    root.addHandler(handler)
    root.setLevel(logging.DEBUG if verbose else logging.INFO)
    # libraries that chatter at DEBUG (and could echo a payload) stay at INFO
    for noisy in ("asyncio", "paho", "paho.mqtt"):
        logging.getLogger(noisy).setLevel(logging.INFO)
    return handler
