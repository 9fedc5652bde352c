"""`officeguard station`: the monitoring station's process and its commands.

    officeguard station serve [--settings station.yaml] [--db URL] [--listen HOST:PORT]
                              [--broker URL | -c SITE.yaml] [--prefix P] [--share GROUP]
                              [--secret-file PATH] [--https]
    officeguard station operator LOGIN [--role ROLE] [--disable]   (password on stdin)
    officeguard station migrate [--db URL]

Settings come from the flags, else the settings file (settings.py), else the defaults. `serve`
runs three things in one process: the MQTT ingest loop (a thread; the console's
`MonitorClient`, events through the MQTT 5 shared subscription `$share/GROUP/<prefix>/+/event`),
a writer that writes to the database every `write_every` (at once for an alarm) and checks
liveness, and the web console
(uvicorn, plain HTTP on 127.0.0.1:8080 by default). It refuses to start while an operator's
password is a well-known default, or while there is no operator at all.
"""

from __future__ import annotations

import argparse
import getpass
import logging
import os
import secrets
import signal
import stat
import sys
import threading
import time
from pathlib import Path
from typing import Any

from controller.config import EXIT_CONFIG, ConfigError
from controller.errors import OfficeGuardError
from controller.reporting.mqtt import MqttConfigError
from controller.station import auth
from controller.station.incidents import Liveness
from controller.station.ingest import Ingest
from controller.station.remote import Commander
from controller.station.settings import StationSettings, load_settings
from controller.station.store import Store, StoreError
from controller.station.web import LANGUAGES, Station

log = logging.getLogger(__name__)

DEFAULT_LISTEN = "127.0.0.1:8080"
FLUSH_S = StationSettings().write_every.total_seconds()  # the settings file's default
EXIT_UNREACHABLE = 1
EXIT_USAGE = 64


class StationError(OfficeGuardError, RuntimeError):
    """The station cannot start (the message says why and what to do)."""


def settings_of(args: argparse.Namespace) -> StationSettings:
    """The settings file named by --settings (ConfigError, with every problem), else defaults."""
    path = getattr(args, "settings", None)
    return load_settings(path) if path else StationSettings()


def db_url(args: argparse.Namespace, settings: StationSettings | None = None) -> str:
    """--db, else $OFFICEGUARD_STATION_DB, else the settings' `database`."""
    s = settings or StationSettings()
    return str(getattr(args, "db", None) or os.environ.get("OFFICEGUARD_STATION_DB") or s.database)


def broker_of(args: argparse.Namespace, s: StationSettings) -> tuple[Any, str]:
    """Broker settings and topic prefix: from -c SITE.yaml as the terminal console takes them,
    else from the settings' `broker:`; --broker and --prefix win over both."""
    from controller.config import Mqtt
    from controller.console.monitor import resolve
    from controller.console.net import BrokerSettings

    if getattr(args, "config", None):
        return resolve(args)
    cfg = s.broker.mqtt()
    if args.broker:
        try:
            cfg = Mqtt.model_validate({**cfg.model_dump(), "url": args.broker})
        except ValueError as e:
            raise MqttConfigError(
                f"bad broker URL {args.broker!r}: use mqtt://host:1883 or mqtts://host:8883"
            ) from e
    prefix = (args.prefix or s.broker.topic_prefix).strip("/")
    if not prefix or any(c in prefix for c in "+#\0"):
        raise MqttConfigError(f"bad topic prefix {prefix!r}: no +, # and not empty")
    return BrokerSettings.from_config(cfg), prefix


def secret_key(path: str | None, url: str) -> str:
    """The key that signs session cookies, from a file only its owner can read. Without
    --secret-file it lives beside a SQLite database (made on first start, mode 0600)."""
    if path is None:
        if "://" in url and not url.startswith("sqlite"):
            raise StationError("--secret-file is needed with a PostgreSQL database")
        db = url.split(":///", 1)[-1]
        path = str(Path(db).with_suffix(".secret"))
        if not os.path.exists(path):
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(fd, "w") as f:
                f.write(secrets.token_urlsafe(48))
    try:
        st = os.stat(path)
        if st.st_mode & (stat.S_IRWXG | stat.S_IRWXO):
            raise StationError(f"{path} is readable by others: chmod 600 {path}")
        with open(path, encoding="utf-8") as f:
            key = f.read().strip()
    except OSError as e:
        raise StationError(f"cannot read the session secret {path}: {e.strerror}") from e
    if len(key) < 32:
        raise StationError(f"the session secret in {path} is shorter than 32 characters")
    return key


def _listen(v: str) -> tuple[str, int]:
    host, _, port = v.rpartition(":")
    try:
        return host.strip("[]") or "127.0.0.1", int(port)
    except ValueError as e:
        raise StationError(f"bad --listen {v!r}: use HOST:PORT") from e


def serve(args: argparse.Namespace) -> int:
    import uvicorn

    from controller.console.net import MonitorClient, MonitorError

    try:
        s = settings_of(args)
        url = db_url(args, s)
        settings, prefix = broker_of(args, s)
        store = Store.open(url)
        key = secret_key(args.secret_file or s.secret_file, url)
        host, port = _listen(args.listen or s.listen)
        if not store.operators():
            raise StationError(
                "no operator yet: add one with "
                "`officeguard station operator LOGIN --role admin` (password on stdin)"
            )
        weak = auth.defaults_in_use(store)
        if weak:
            raise StationError(
                f"refusing to start: operator(s) {', '.join(weak)} have a default password; "
                "set another with `officeguard station operator LOGIN`"
            )
    except ConfigError as e:
        print(e, file=sys.stderr)
        return EXIT_CONFIG
    except (MqttConfigError, StationError, StoreError) as e:
        print(f"officeguard station: {e}", file=sys.stderr)
        return EXIT_USAGE if isinstance(e, MqttConfigError) else EXIT_CONFIG

    ingest = Ingest(
        store,
        prefix,
        liveness=Liveness(margin_s=s.heartbeat_margin.total_seconds()),
        buffer_limit=s.buffer_limit,
    )
    stop = threading.Event()
    client = MonitorClient(
        settings,
        prefix,
        lambda t, p: ingest.accept(t, p, time.time()),
        share=args.share or s.broker.share,
        images=True,
    )
    client.filters.append(f"{prefix}/+/cmd/result")  # the answers to remote commands
    commander = Commander(client.publish, prefix, args.command_keys or s.command_keys)
    ingest.on_command_result = commander.on_result
    try:
        client.connect()
    except MonitorError as e:
        print(f"officeguard station: {e}", file=sys.stderr)
        return EXIT_UNREACHABLE

    def mqtt_loop() -> None:
        try:
            client.run(until=stop.is_set)
        finally:
            client.disconnect()

    def flusher() -> None:
        ingest.run(stop, s.write_every.total_seconds())

    threads = [
        threading.Thread(target=mqtt_loop, name="station-mqtt", daemon=True),
        threading.Thread(target=flusher, name="station-flush", daemon=True),
    ]
    for t in threads:
        t.start()
    station = Station(
        store, ingest, secret_key=key, https=args.https or s.https,
        language=args.language or s.language, commander=commander,
        overdue_s=s.supervisor_limit.total_seconds(),
        pdf_font=Path(s.pdf_font) if s.pdf_font else None,
        ageing=s.ageing_seconds(),
    )  # fmt: skip

    config = uvicorn.Config(
        station.app(),
        host=host,
        port=port,
        log_level="warning",
        proxy_headers=args.https or s.https,
        forwarded_allow_ips="127.0.0.1" if args.https or s.https else None,
        timeout_graceful_shutdown=1,
    )
    server = uvicorn.Server(config)
    # uvicorn shuts down gracefully on SIGTERM/SIGINT, then raises the signal again for the
    # handler that was there before: ours ends the process through the `finally` below, so
    # ingest's last messages are written before it exits
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, _exit_cleanly)
    print(
        f"officeguard station: http://{host}:{port}/ (database {_safe_url(url)}, broker {settings.url})",
        flush=True,
    )
    try:
        server.run()
    finally:
        stop.set()
        for t in threads:
            t.join(timeout=5)
        store.close()
    if client.refused:
        print(f"officeguard station: {client.refused}", file=sys.stderr)
        return EXIT_UNREACHABLE
    return 0


def _exit_cleanly(signum: int, frame: Any) -> None:
    raise SystemExit(0)


def _safe_url(url: str) -> str:
    """The database URL without a password in it."""
    if "@" in url and "://" in url:
        scheme, rest = url.split("://", 1)
        cred, host = rest.rsplit("@", 1)
        return f"{scheme}://{cred.split(':', 1)[0]}@{host}"
    return url


def operator(args: argparse.Namespace) -> int:
    try:
        store = Store.open(db_url(args, settings_of(args)))
        password: str | None = None
        existing = store.operator(args.login)
        if not args.keep_password:
            if sys.stdin.isatty():
                password = getpass.getpass(f"password for {args.login}: ")
                if getpass.getpass("again: ") != password:
                    raise StationError("the two passwords differ")
            else:
                password = sys.stdin.readline().rstrip("\n")
        role = args.role or (existing["role"] if existing else "operator")
        auth.set_operator(store, args.login, role, password, args.disable)
        store.close()
    except ConfigError as e:
        print(e, file=sys.stderr)
        return EXIT_CONFIG
    except (StationError, StoreError, auth.OperatorError) as e:
        print(f"officeguard station: {e}", file=sys.stderr)
        return EXIT_USAGE
    print(f"operator {args.login}: {role}{', disabled' if args.disable else ''}")
    return 0


def migrate_cmd(args: argparse.Namespace) -> int:
    try:
        url = db_url(args, settings_of(args))
        Store.open(url).close()
    except ConfigError as e:
        print(e, file=sys.stderr)
        return EXIT_CONFIG
    except StoreError as e:
        print(f"officeguard station: {e}", file=sys.stderr)
        return EXIT_CONFIG
    print(f"the database {_safe_url(url)} is at the latest schema")
    return 0


def add_arguments(p: argparse.ArgumentParser, command: Any) -> None:
    """`officeguard station` and its sub-commands (called by controller/cli.py)."""
    sub = p.add_subparsers(dest="station_command", required=True, metavar="SUBCOMMAND")

    def db(sp: argparse.ArgumentParser) -> None:
        sp.add_argument(
            "--settings",
            metavar="FILE",
            help="the station's settings file (YAML, docs/station.md); a flag wins over it",
        )
        sp.add_argument(
            "--db",
            metavar="URL",
            help="sqlite:///path/station.db (default: station.db here) or "
            "postgresql://user@host/db; also $OFFICEGUARD_STATION_DB",
        )

    s = command(
        sub,
        "serve",
        "run the station: ingest from the broker, the web console",
        "officeguard station serve --broker mqtt://127.0.0.1:1883 --share office\n"
        "officeguard station serve --db postgresql://station@127.0.0.1/station "
        "--secret-file /etc/officeguard/station.secret",
    )
    db(s)
    s.add_argument("-c", "--config", help="take broker URL, login and TLS files from this config")
    s.add_argument("--broker", metavar="URL", help="mqtt://host:1883 or mqtts://host:8883")
    s.add_argument("--prefix", help="topic prefix (default: the config's, else officeguard)")
    s.add_argument(
        "--share",
        metavar="GROUP",
        help="MQTT 5 shared-subscription group of the station processes "
        "(default: officeguard-station)",
    )
    s.add_argument("--listen", help=f"HOST:PORT (default: {DEFAULT_LISTEN})")
    s.add_argument(
        "--secret-file", help="the session-signing key, mode 0600 (default: beside a SQLite db)"
    )
    s.add_argument(
        "--https",
        action="store_true",
        default=None,
        help="behind a TLS reverse proxy: Secure cookies, trust its X-Forwarded-* headers",
    )
    s.add_argument(
        "--language",
        choices=LANGUAGES,
        help="the console's language until an operator picks another (default: vi)",
    )
    s.add_argument(
        "--command-keys",
        metavar="DIR",
        help="the sites' command keys, DIR/<site>.key (mode 0600): remote commands are signed "
        "with them (default: unsigned, which a site requiring signatures refuses to disarm)",
    )
    s.set_defaults(func=serve)

    o = command(
        sub,
        "operator",
        "add an operator or change one's role or password (password on stdin)",
        "officeguard station operator lan --role admin",
    )
    db(o)
    o.add_argument("login")
    o.add_argument(
        "--role",
        choices=auth.ROLES,
        help="operator works the queue, supervisor also sees overdue incidents, admin also "
        "manages operators (default: the current role, else operator)",
    )
    o.add_argument("--disable", action="store_true", help="the operator can no longer log in")
    o.add_argument(
        "--keep-password", action="store_true", help="change the role only (no password read)"
    )
    o.set_defaults(func=operator)

    m = command(
        sub,
        "migrate",
        "create or upgrade the database schema",
        "officeguard station migrate --db postgresql://station@127.0.0.1/station",
    )
    db(m)
    m.set_defaults(func=migrate_cmd)
