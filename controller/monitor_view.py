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
            t.append("\n")
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


def severity(b: SiteBoard, now: float) -> int:
    """What needs the office's eyes first: alarms, offline, stale, troubles or drones, the rest."""
    if b.alarms():
        return 0
    if b.online is False:
        return 1
    if b.stale(now):
        return 2
    if b.troubles or b.drones:
        return 3
    return 4


def sites_table(console: Console, now: float, max_rows: int | None = None) -> Table:
    """Every site, the ones needing attention first; with `max_rows`, the rest are summed up."""
    boards = sorted(console.sites.values(), key=lambda b: (severity(b, now), b.site))
    shown = boards if max_rows is None else boards[:max_rows]
    hidden = boards[len(shown) :]
    title = "Sites"
    if hidden:
        quiet = sum(1 for b in hidden if severity(b, now) == 4)
        title += f" ({len(shown)} shown, {len(hidden)} more, {quiet} of them quiet)"
    t = Table(title=title, expand=True)
    t.add_column("site", no_wrap=True)
    t.add_column("status", no_wrap=True)
    t.add_column("zones", overflow="fold", ratio=3, min_width=20)
    for col in ("alarms", "troubles", "drones"):
        t.add_column(col, overflow="fold", ratio=1, min_width=len(col))
    t.add_column("events", justify="right", no_wrap=True)
    for b in shown:
        site = b.site
        alarms = b.alarms()
        t.add_row(
            Text(site, style="bold"),
            _status(b, now).append(f"\n{b.version}" if b.version else "", style="dim"),
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
    console: Console,
    now: float,
    link: str,
    feed_rows: int = 15,
    shared: bool = False,
    max_sites: int | None = None,
) -> RenderableType:
    return Group(
        sites_table(console, now, max_sites),
        feed_table(console, feed_rows),
        footer(console, link, shared),
    )
