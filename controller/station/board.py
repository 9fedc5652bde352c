"""The site board's picture of every site at once (`/sites`): zones and their armed state, open
troubles, drones, patrol plans, beside the link, heartbeat and open incidents of
`Store.sites`. Read from what ingest keeps.

- Zones, troubles, drones tracked now and patrol plans: the newest retained-state message of
  each topic (`P/zone/<z>/state`, `P/trouble/state`, `P/drone/<track>`, `P/patrol/<plan>`),
  read by `latest_states` from `site_state`, which ingest keeps beside `site_log`, and into a
  board by `site_board` as a site's own page does.
- Recent drones: the station keeps no track list, so the tracks of the last 24 h are counted
  from the stored `drone` events (their `detail.track`, a track's `detail.update` reports
  counted once; `docs/events.md`), along the (kind, at) index.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

from sqlalchemy import or_, select

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


def latest_states(store: Store) -> dict[str, list[dict[str, Any]]]:
    """site -> [{topic, body}] of its board topics, the newest of each, by topic: read from
    site_state (kept by ingest), a few rows a site whatever the log's length."""
    c = t.site_state.c
    q = (
        select(c.site, c.topic, c.body)
        .where(or_(*(c.topic.like(p) for p in BOARD_TOPICS)))
        .order_by(c.site, c.topic)
    )
    out: dict[str, list[dict[str, Any]]] = {}
    with store.tx() as conn:
        for site, topic, body in conn.execute(q):
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
