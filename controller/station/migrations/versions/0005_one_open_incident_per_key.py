"""At most one open incident per site, priority, alarm class and zone, as a unique partial
index: two station processes that take alarms of the same zone at the same moment then open one
incident between them (the loser's insert does nothing and joins the winner, store.py), where
the look-up's row lock could only serialize them on incidents that already existed.

Open duplicates left by that race before this revision are closed by the station, the oldest of
each key kept open: a step says which incident each was a duplicate of (the trail is
append-only, so nothing is moved or removed), and the open queue's counts follow.

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-07
"""

from __future__ import annotations

import time

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None

OPEN = sa.text("state <> 'closed'")
# the key of "the same" incident (store.py: OPEN_KEY); a zone-less incident has the key ''
KEY: list[str | sa.TextClause] = ["site", "priority", "what", sa.text("coalesce(zone, '')")]


def upgrade() -> None:
    _close_duplicates()
    op.create_index(
        "ux_incidents_open_key",
        "incidents",
        KEY,
        unique=True,
        postgresql_where=OPEN,
        sqlite_where=OPEN,
    )


def _close_duplicates() -> None:
    conn = op.get_bind()
    rows = conn.execute(
        sa.text(
            "SELECT id, site, priority, what, coalesce(zone, '') FROM incidents "
            "WHERE state <> 'closed' ORDER BY opened_at, id"
        )
    ).all()
    kept: dict[tuple[str, int, str, str], str] = {}
    now = time.time()
    for iid, site, prio, what, zone in rows:
        first = kept.setdefault((site, prio, what, zone), iid)
        if first == iid:
            continue
        conn.execute(
            sa.text(
                "INSERT INTO incident_steps (incident_id, at, who, action, text) "
                "VALUES (:i, :at, 'station', 'closed', :text)"
            ),
            {"i": iid, "at": now, "text": f"other: a duplicate of incident {first}"},
        )
        conn.execute(
            sa.text(
                "UPDATE incidents SET state = 'closed', closed_at = :at, closed_by = 'station', "
                "resolution = 'other', acknowledged_at = coalesce(acknowledged_at, :at), "
                "acknowledged_by = coalesce(acknowledged_by, 'station') WHERE id = :i"
            ),
            {"i": iid, "at": now},
        )
        conn.execute(
            sa.text("UPDATE open_counts SET n = n - 1 WHERE site = :s AND priority = :p"),
            {"s": site, "p": prio},
        )


def downgrade() -> None:
    op.drop_index("ux_incidents_open_key", "incidents")
