"""How the console shows the board: a rich table of sites and the event feed.

Both fit an 80-column terminal without splitting a word: no vertical rules, few columns (alarms,
troubles and drones share one "attention" column), the event time as HH:MM:SS, and each column at
least as wide as its longest word, so rich wraps lines between words only.
"""

from __future__ import annotations

from typing import Any

from rich import box
from rich.console import Group, RenderableType
from rich.style import Style
from rich.table import Table
from rich.text import Text

from controller.console.model import Console, SiteBoard

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
    "patrol": "blue",
    "snapshot": "blue",
}

# a patrol plan's states that need the office's eyes (controller/patrol/supervisor.py)
PATROL_ATTENTION = {"late", "silent", "no_sign_of_life"}


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
        t.append(f"{z} ", style="dim")
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


def _patrols(b: SiteBoard) -> list[tuple[str, str]]:
    """The patrol plans that need the office's eyes: late, a silent guard, a round missed."""
    out = []
    for plan, st in sorted(b.patrols.items()):
        last = st.get("last_round") or {}
        state = str(st.get("state"))
        if state in PATROL_ATTENTION:
            out.append((plan, state))
        elif last.get("outcome") in ("missed", "incomplete"):
            out.append((plan, f"last round {last.get('outcome')}"))
    return out


def severity(b: SiteBoard, now: float) -> int:
    """What needs the office's eyes first: alarms, offline, stale, troubles or drones, the rest."""
    if b.alarms():
        return 0
    if b.online is False:
        return 1
    if b.stale(now):
        return 2
    if b.troubles or b.drones or _patrols(b):
        return 3
    return 4


def _attention(b: SiteBoard) -> Text:
    """Alarms, troubles and drones of a site, one kind per line; "-" when there is none."""
    alarms = b.alarms()
    lines = []
    if alarms:
        lines.append(Text("ALARM " + ", ".join(alarms), style="bold white on red"))
    if b.troubles:
        lines.append(_troubles(b))
    if b.drones:
        lines.append(Text("drone ").append_text(_drones(b)))
    lines += [Text(f"patrol {plan}: {what}", style="bold yellow") for plan, what in _patrols(b)]
    return Text("\n").join(lines) if lines else Text("-", style="dim")


def _table(title: str, headers: list[str], rows: list[list[Text]], wide: tuple[str, ...]) -> Table:
    """A borderless table whose columns are each at least as wide as their longest word (so
    wrapping never splits one); the `wide` columns share the room left in proportion to their
    longest words (rich's ratios do not heed min_width, proportional shares do)."""
    t = Table(title=title, expand=True, box=box.SIMPLE_HEAD, pad_edge=False, padding=(0, 1))
    for i, head in enumerate(headers):
        words = [w for row in rows for w in row[i].plain.split()] + [head]
        longest = min(max(len(w) for w in words), 24)
        t.add_column(
            head,
            min_width=longest,
            ratio=longest if head in wide else None,
            overflow="fold",
            justify="right" if head in ("events", "seq") else "left",
        )
    for row in rows:
        t.add_row(*row)
    return t


def sites_table(console: Console, now: float, max_rows: int | None = None) -> Table:
    """Every site, the ones needing attention first; with `max_rows`, the rest are summed up."""
    boards = sorted(console.sites.values(), key=lambda b: (severity(b, now), b.site))
    shown = boards if max_rows is None else boards[:max_rows]
    hidden = boards[len(shown) :]
    title = "Sites"
    if hidden:
        quiet = sum(1 for b in hidden if severity(b, now) == 4)
        title += f" ({len(shown)} shown, {len(hidden)} more, {quiet} of them quiet)"
    rows = [
        [
            Text(b.site, style="bold"),
            _status(b, now).append(f"\n{b.version}" if b.version else "", style="dim"),
            _zones(b),
            _attention(b),
            Text(str(b.events)),
        ]
        for b in shown
    ]
    return _table(title, ["site", "status", "zones", "attention", "events"], rows, ("zones", "attention"))


def _event_row(e: dict[str, Any], station: str | None = None) -> list[Text]:
    kind = str(e.get("kind", "?"))
    what = Text(kind, style=KIND_STYLE.get(kind, ""))
    if e.get("cid"):
        what.append(f" {e['cid']}")
    where = str(e.get("zone") or e.get("sensor") or "")
    if where:
        what.append(f"\n{where}", style="dim")
    text = Text(str(e.get("text") or ""))  # plain Text: a site's text is never parsed as markup
    if kind == "snapshot":
        link = snapshot_link(e, station)
        url = link.rsplit(" ", 1)[-1]
        web = url.startswith(("http://", "https://"))
        text.append("\n" + link if link else "", style=Style(color="blue", underline=True, link=url if web else None))
    return [
        Text(str(e.get("ts", ""))[11:19]),
        Text(f"{e.get('site', '')} #{e.get('seq', '')}"),
        what,
        text,
    ]


def snapshot_link(e: dict[str, Any], station: str | None = None) -> str:
    """Where a `snapshot` event's images are (docs/cameras.md): the station's page of its first
    picture when the station's address is known, else their topic, by the alarm's id."""
    d = e.get("detail")
    if not isinstance(d, dict):
        return ""
    images = d.get("images")
    count = len(images) if isinstance(images, list) else 0
    head = f"{count} image(s) of #{d.get('event_seq', '?')}:"
    first = images[0].get("id") if count and isinstance(images, list) and isinstance(images[0], dict) else None
    if station and isinstance(first, str) and first.isprintable() and " " not in first:
        return f"{head} {station.rstrip('/')}/snapshot/{first}"
    return f"{head} snapshot/{d.get('event', '?')}/"


def feed_table(console: Console, rows: int = 15, station: str | None = None) -> Table:
    body = [_event_row(e, station) for e in list(console.feed)[-rows:]]
    return _table("Events", ["time", "site", "event", "text"], body, ("text",))


def footer(console: Console, link: str, shared: bool = False) -> Text:
    return Text(
        f"broker: {link}\nevents: {console.events}   duplicates dropped: {console.duplicates}"
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
    station: str | None = None,
) -> RenderableType:
    return Group(
        sites_table(console, now, max_sites),
        feed_table(console, feed_rows, station),
        footer(console, link, shared),
    )
