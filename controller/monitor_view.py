"""How the console shows the board: a rich table of sites and the event feed."""

from __future__ import annotations

from typing import Any

from rich.console import Group, RenderableType
from rich.table import Table
from rich.text import Text

from controller.monitor_model import Console, SiteBoard

STATE_STYLE = {
    "disarmed": "green",
    "arming": "yellow",
    "pending": "bold yellow",
    "triggered": "bold white on red",
    "armed_away": "cyan",
    "armed_home": "cyan",
    "armed_night": "cyan",
}
KIND_STYLE = {
    "alarm": "bold red",
    "duress": "bold red",
    "tamper": "red",
    "drone": "magenta",
    "trouble": "yellow",
    "cancel": "yellow",
    "arm": "cyan",
    "disarm": "green",
}


def _status(b: SiteBoard, now: float) -> Text:
    if b.online is None:
        return Text("unknown", style="dim")
    if not b.online:
        return Text("OFFLINE", style="bold red")
    if b.stale(now):
        return Text("stale", style="bold yellow")
    return Text("online", style="green")


def _zones(b: SiteBoard) -> Text:
    t = Text()
    for i, (z, s) in enumerate(sorted(b.zones.items())):
        if i:
            t.append(" ")
        state = str(s.get("state", "?"))
        t.append(f"{z}:", style="dim")
        t.append(state, style=STATE_STYLE.get(state, ""))
    return t


def _troubles(b: SiteBoard) -> Text:
    if not b.troubles:
        return Text("-", style="dim")
    whats = [str(t.get("what") or t.get("source") or "?") for t in b.troubles]
    return Text(f"{len(whats)}: " + ", ".join(whats[:3]) + (" ..." if len(whats) > 3 else ""), style="yellow")


def _drones(b: SiteBoard) -> Text:
    if not b.drones:
        return Text("-", style="dim")
    parts = []
    for track, d in sorted(b.drones.items()):
        label = str(d.get("uas_id") or track)
        dist = d.get("distance_m")
        if isinstance(dist, int | float):
            label += f" {dist:.0f} m"
        parts.append(label)
    return Text(", ".join(parts), style="bold magenta")


def sites_table(console: Console, now: float) -> Table:
    t = Table(title="Sites", expand=True)
    for col in ("site", "status", "version", "zones", "alarms", "troubles", "drones", "events"):
        t.add_column(col, overflow="fold")
    for site, b in sorted(console.sites.items()):
        alarms = b.alarms()
        t.add_row(
            Text(site, style="bold"),
            _status(b, now),
            Text(b.version or "-", style="dim"),
            _zones(b),
            Text(", ".join(alarms), style="bold white on red") if alarms else Text("-", style="dim"),
            _troubles(b),
            _drones(b),
            Text(str(b.events)),
        )
    return t


def _event_row(e: dict[str, Any]) -> list[Text]:
    kind = str(e.get("kind", "?"))
    return [
        Text(str(e.get("ts", ""))[:19].replace("T", " ")),
        Text(str(e.get("site", ""))),
        Text(str(e.get("seq", ""))),
        Text(kind, style=KIND_STYLE.get(kind, "")),
        Text(str(e.get("cid") or "")),
        Text(str(e.get("zone") or e.get("sensor") or "")),
        Text(str(e.get("text") or "")),  # plain Text: a site's text is never parsed as markup
    ]


def feed_table(console: Console, rows: int = 15) -> Table:
    t = Table(title="Events", expand=True)
    for col in ("time", "site", "seq", "kind", "cid", "where", "text"):
        t.add_column(col, overflow="fold")
    for e in list(console.feed)[-rows:]:
        t.add_row(*_event_row(e))
    return t


def footer(console: Console, link: str, shared: bool = False) -> Text:
    return Text(
        f"broker: {link}   events: {console.events}   duplicates dropped: {console.duplicates}"
        f"   malformed: {console.malformed}   missed (seq gaps): {console.seq_gaps}",
        style="bold red" if console.seq_gaps and not shared else "dim",
    )


def render(
    console: Console, now: float, link: str, feed_rows: int = 15, shared: bool = False
) -> RenderableType:
    return Group(
        sites_table(console, now), feed_table(console, feed_rows), footer(console, link, shared)
    )
