"""The site board's picture of every site at once (`/sites`): zones and their armed state, open
troubles, drones, patrol plans, beside the link, heartbeat and open incidents of
`Store.sites`. Read from what ingest already keeps; nothing new is stored.

- Zones, troubles, drones tracked now and patrol plans: the latest retained-state message of
  each topic in `site_log` (`P/zone/<z>/state`, `P/trouble/state`, `P/drone/<track>`,
  `P/patrol/<plan>`), read into a board by `site_board` as a site's own page does. The newest
  row of each (site, topic), heartbeats and commands left out, kept by `LatestStates`: one
  grouped query over the log at the first read, then only the rows added since.
- Recent drones: the station keeps no track list, so the tracks of the last 24 h are counted
  from the stored `drone` events (their `detail.track`, a track's `detail.update` reports
  counted once; `docs/events.md`), along the (kind, at) index.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

from sqlalchemy import func, or_, select

from controller.station import schema as t

if TYPE_CHECKING:
    from controller.station.store import Store

RECENT_DRONES_S = 24 * 3600.0
# the retained topics the board shows (site_log's topic, under <prefix>/<site>/)
BOARD_TOPICS = ("zone/%/state", "trouble/state", "drone/%", "patrol/%")
ARMED = ("armed_away", "armed_home", "armed_night")


def site_board(state: Iterable[dict[str, Any]]) -> dict[str, Any]:
    """A site's latest retained messages (one per topic) read into its board: zones with their
    state and alarm, troubles, drones tracked now, patrols, heartbeat and status; what does not
    parse is listed raw under `other`."""
    board: dict[str, Any] = {
        "zones": {}, "troubles": [], "drones": {}, "patrols": {}, "status": None,
        "heartbeat": None, "other": [],
    }  # fmt: skip
    for row in state:
        topic, body = str(row["topic"]), str(row["body"])
        parts = topic.split("/")
        try:
            d = json.loads(body) if body else None
        except ValueError:
            d = None
        if d is None or not isinstance(d, dict):
            if body:
                board["other"].append(row)
            continue  # a cleared retained topic: the zone, drone or trouble is gone
        if len(parts) == 3 and parts[0] == "zone" and parts[2] == "state":
            board["zones"][parts[1]] = d
        elif topic == "trouble/state" and isinstance(d.get("troubles"), list):
            board["troubles"] = [t for t in d["troubles"] if isinstance(t, dict)]
        elif len(parts) == 2 and parts[0] == "drone":
            board["drones"][parts[1]] = d
        elif len(parts) == 2 and parts[0] == "patrol":
            board["patrols"][parts[1]] = d
        elif topic in ("status", "heartbeat"):
            board[topic] = d
        else:
            board["other"].append(row)
    return board


class LatestStates:
    """The newest message of each board topic (zones, troubles, drones, patrols) of every
    site, kept up to date from `site_log` a little at a time.

    The first `read` finds them with one grouped query over the whole log (which grows with
    every heartbeat: ~2 s for a million rows on SQLite); later reads fetch only the rows past
    the newest seen, along the primary key, minus `margin` rows read again: on PostgreSQL a
    row numbered earlier can commit after a later one (two station processes writing), and
    a row is only taken when it is newer than the one kept for its topic."""

    def __init__(self, margin: int = 5000) -> None:
        self.margin = margin
        self._top: int | None = None
        self._rows: dict[tuple[str, str], tuple[int, str]] = {}
        self._lock = threading.Lock()

    def read(self, store: Store) -> dict[str, list[dict[str, Any]]]:
        """site -> [{topic, body}] of its board topics, newest of each, by topic."""
        c = t.site_log.c
        shown = or_(*(c.topic.like(p) for p in BOARD_TOPICS))
        with self._lock:
            if self._top is None:
                newest = select(func.max(c.n)).where(shown).group_by(c.site, c.topic)
                q = select(c.n, c.site, c.topic, c.body).where(c.n.in_(newest))
            else:
                q = select(c.n, c.site, c.topic, c.body).where(
                    c.n > self._top - self.margin, shown
                )
            with store.tx() as conn:
                for n, site, topic, body in conn.execute(q):
                    kept = self._rows.get((site, topic))
                    if kept is None or n > kept[0]:
                        self._rows[(site, topic)] = (n, body)
                    self._top = max(self._top or 0, n)
            self._top = self._top or 0
            out: dict[str, list[dict[str, Any]]] = {}
            for (site, topic), (_n, body) in sorted(self._rows.items()):
                out.setdefault(site, []).append({"topic": topic, "body": body})
        return out


def recent_drones(store: Store, now: float, window_s: float = RECENT_DRONES_S) -> dict[str, dict[str, Any]]:
    """site -> {"tracks": drone tracks seen since now - window_s, "last": the last report's
    time}, from the stored drone events (a track's reports counted once)."""
    c = t.events.c
    q = select(c.site, c.at, c.body).where(c.kind == "drone", c.at >= now - window_s)
    tracks: dict[str, set[str]] = {}
    last: dict[str, float] = {}
    with store.tx() as conn:
        for site, at, body in conn.execute(q):
            try:
                detail = json.loads(body).get("detail") or {}
                key = f"{detail.get('detector', '')}/{detail['track']}"
            except (ValueError, AttributeError, KeyError, TypeError):
                key = f"report {at}"  # no track named: the report counts alone
            tracks.setdefault(site, set()).add(key)
            last[site] = max(last.get(site, at), at)
    return {s: {"tracks": len(k), "last": last[s]} for s, k in tracks.items()}


def _zone_colour(d: dict[str, Any]) -> str:
    """red in alarm, green armed, amber arming or waiting for a code, grey disarmed."""
    if d.get("alarm") or d.get("state") == "triggered":
        return "red"
    if d.get("state") in ARMED:
        return "green"
    if d.get("state") in ("arming", "pending"):
        return "amber"
    return "grey"


def summary(board: dict[str, Any]) -> dict[str, Any]:
    """What the site board shows of one site's board: each zone with its state and whether it
    is armed or in alarm, the open troubles, the drones tracked now, each patrol plan's state
    and its last round's outcome."""
    zones = [
        {"zone": z, "state": str(d.get("state") or "?"), "cls": _zone_colour(d)}
        for z, d in sorted(board["zones"].items())
    ]
    patrols = []
    for plan, d in sorted(board["patrols"].items()):
        last = d.get("last_round") if isinstance(d.get("last_round"), dict) else None
        state = str(d.get("state") or "?")
        outcome = str(last.get("outcome")) if last and last.get("outcome") else None
        bad = state in ("late", "silent", "no_sign_of_life") or outcome in ("missed", "incomplete")
        patrols.append(
            {"plan": plan, "state": state, "last": outcome, "next_due": d.get("next_due"), "bad": bad}
        )
    return {
        "zones": zones,
        "troubles": board["troubles"],
        "drones_now": len(board["drones"]),
        "patrols": patrols,
    }
