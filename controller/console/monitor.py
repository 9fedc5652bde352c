"""`officeguard monitor`: the security office's console of every site under a topic prefix.

    officeguard monitor [--broker URL | -c SITE.yaml] [--prefix P] [--share GROUP]
                        [--once [--json] [--wait S]] [--duration S]

- live (default): a terminal view (rich) of every site, online/offline (retained status and last
  will) or stale (no heartbeat for three intervals), zone states, alarms in red, troubles, drones,
  and the event feed; `--duration` ends it by itself.
- `--once`: gather the retained state for `--wait` seconds and print it once, as a table or with
  `--json` as one JSON object `{"sites": {site: {...}}, "counters": {...}}`; exit 0, or 1 with a
  clear message when the broker cannot be reached.
- `--share GROUP`: receive events through the MQTT 5 shared subscription
  `$share/GROUP/<prefix>/+/event`, so several consoles split the event load (each still sees
  all retained state).

The picture is `controller.console.model.Console` (pure); the network side is
`controller.console.net.MonitorClient`; the drawing is `controller.console.view`.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from typing import Any

from controller.config import EXIT_CONFIG, ConfigError, Mqtt, load_config
from controller.console.model import Console, SiteBoard
from controller.console.net import BrokerSettings, MonitorClient, MonitorError
from controller.reporting.mqtt import MqttConfigError

__all__ = ["Console", "SiteBoard", "MonitorClient", "run_monitor", "resolve"]

EXIT_UNREACHABLE = 1
EXIT_USAGE = 64
DEFAULT_PREFIX = "officeguard"
FEED_ROWS = 12


def resolve(args: argparse.Namespace) -> tuple[BrokerSettings, str]:
    """Broker settings and topic prefix from --broker/--prefix and the optional -c site config.

    `--broker` wins over the config's URL (keeping its credentials and TLS files); the config's
    topic prefix is used unless --prefix names another one.
    """
    cfg = Mqtt()
    prefix = getattr(args, "prefix", None)
    if getattr(args, "config", None):
        cfg = load_config(args.config).config.mqtt
        prefix = prefix or cfg.topic_prefix
    prefix = prefix or DEFAULT_PREFIX
    if getattr(args, "broker", None):
        try:
            cfg = Mqtt.model_validate({**cfg.model_dump(), "url": args.broker})
        except ValueError as e:
            raise MqttConfigError(
                f"bad broker URL {args.broker!r}: use mqtt://host:1883 or mqtts://host:8883"
            ) from e
    prefix = prefix.strip("/")
    if not prefix or any(c in prefix for c in "+#\0"):
        raise MqttConfigError(f"bad topic prefix {prefix!r}: no +, # and not empty")
    return BrokerSettings.from_config(cfg), prefix


def run_monitor(args: argparse.Namespace) -> int:
    try:
        settings, prefix = resolve(args)
    except ConfigError as e:
        print(e, file=sys.stderr)
        return EXIT_CONFIG
    except MqttConfigError as e:
        print(f"officeguard monitor: {e}", file=sys.stderr)
        return EXIT_USAGE

    board = Console(prefix)
    clock = time.monotonic

    def on_message(topic: str, payload: bytes) -> None:
        board.ingest(topic, payload, clock())

    try:
        client = MonitorClient(settings, prefix, on_message, share=getattr(args, "share", None))
        client.connect()
    except MqttConfigError as e:
        print(f"officeguard monitor: {e}", file=sys.stderr)
        return EXIT_USAGE
    except MonitorError as e:
        print(f"officeguard monitor: {e}", file=sys.stderr)
        return EXIT_UNREACHABLE

    try:
        if getattr(args, "once", False):
            return _once(args, client, board, settings)
        return _live(args, client, board, settings)
    finally:
        client.disconnect()


def _once(
    args: argparse.Namespace, client: MonitorClient, board: Console, settings: BrokerSettings
) -> int:
    wait = max(0.0, float(getattr(args, "wait", 2.0) or 0.0))
    end = time.monotonic() + wait
    # retained messages follow the SUBACK at once; keep listening for the rest of --wait
    client.run(until=lambda: time.monotonic() >= end)
    if client.refused is not None or client.connects == 0:
        why = client.refused or client.last_error or f"no answer within {wait:g} s"
        print(f"officeguard monitor: broker at {settings.url}: {why}", file=sys.stderr)
        return EXIT_UNREACHABLE
    now = time.monotonic()
    if getattr(args, "json", False):
        snap: dict[str, Any] = board.snapshot(now)
        snap["broker"] = {"url": settings.url, "connected": client.connected}
        snap["prefix"] = board.prefix
        print(json.dumps(snap, ensure_ascii=False, sort_keys=True))
    else:
        from rich.console import Console as RichConsole

        from controller.console.view import render

        shared = bool(getattr(args, "share", None))
        station = getattr(args, "station", None)
        RichConsole().print(
            render(board, now, _link_text(client, settings), shared=shared, station=station)
        )
    return 0


def _live(
    args: argparse.Namespace, client: MonitorClient, board: Console, settings: BrokerSettings
) -> int:
    from rich.console import Console as RichConsole
    from rich.live import Live

    from controller.console.view import render

    duration = getattr(args, "duration", None)
    shared = bool(getattr(args, "share", None))
    end = time.monotonic() + duration if duration is not None else None
    out = RichConsole()

    def view() -> Any:
        # the sites needing attention first, as many as fit beside the event feed
        rows = max(5, out.size.height - FEED_ROWS - 14)
        return render(
            board,
            time.monotonic(),
            _link_text(client, settings),
            feed_rows=FEED_ROWS,
            shared=shared,
            max_sites=rows,
            station=station,
        )

    station = getattr(args, "station", None)
    if not out.is_terminal:
        return _log_lines(client, board, settings, end, out, shared, station)
    with Live(view(), console=out, auto_refresh=False) as live:
        # one thread: messages are ingested and the view redrawn between batches, so the
        # drawing never competes with the network for the interpreter
        client.run(
            until=lambda: end is not None and time.monotonic() >= end,
            tick=lambda: live.update(view(), refresh=True),
            tick_every=0.5,
        )
        live.update(view(), refresh=True)
    if client.refused is not None:
        print(f"officeguard monitor: broker at {settings.url}: {client.refused}", file=sys.stderr)
        return EXIT_UNREACHABLE
    return 0


def _log_lines(
    client: MonitorClient,
    board: Console,
    settings: BrokerSettings,
    end: float | None,
    out: Any,
    shared: bool,
    station: str | None = None,
) -> int:
    """Not on a terminal (a log file, a pipe, `make demo`): one line per event as it arrives,
    and the whole picture once at the end."""
    from controller.console.view import render, snapshot_link

    def line(e: dict[str, Any]) -> None:
        where = " ".join(str(e[k]) for k in ("zone", "sensor") if e.get(k))
        ts = str(e.get("ts", ""))[11:19]
        link = snapshot_link(e, station) if e.get("kind") == "snapshot" else ""
        print(
            f"{ts} {e['site']} #{e['seq']} {e['kind']} {e.get('cid') or '-'} {where}: "
            f"{e.get('text', '')}" + (f" ({link})" if link else ""),
            flush=True,
        )

    board.event_listeners.append(line)
    client.run(until=lambda: end is not None and time.monotonic() >= end)
    out.print(
        render(board, time.monotonic(), _link_text(client, settings), shared=shared, station=station)
    )
    if client.refused is not None:
        print(f"officeguard monitor: broker at {settings.url}: {client.refused}", file=sys.stderr)
        return EXIT_UNREACHABLE
    return 0


def _link_text(client: MonitorClient, settings: BrokerSettings) -> str:
    if client.connected:
        return f"{settings.url} connected"
    return f"{settings.url} DISCONNECTED" + (f" ({client.last_error})" if client.last_error else "")
