"""The newest message of each retained topic of each site, `site_state`, kept by ingest in the
transaction that appends it to `site_log` (the newer by its log number wins, store.py), so the
site board and a site's page read a few rows instead of the whole log, which grows with every
heartbeat (2-3 s for a million rows on SQLite). Filled here from the log already there: the
newest row of each (site, topic), the station's own `station/...` notes left out.

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-07
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "site_state",
        sa.Column("site", sa.String(200), nullable=False),
        sa.Column("topic", sa.String(400), nullable=False),
        sa.Column("n", sa.Integer, nullable=False),
        sa.Column("received_at", sa.Double, nullable=False),
        sa.Column("body", sa.Text, nullable=False),
        sa.PrimaryKeyConstraint("site", "topic"),
    )
    op.execute(
        "INSERT INTO site_state (site, topic, n, received_at, body) "
        "SELECT site, topic, n, received_at, body FROM site_log WHERE n IN "
        "(SELECT max(n) FROM site_log WHERE topic NOT LIKE 'station/%' GROUP BY site, topic)"
    )


def downgrade() -> None:
    op.drop_table("site_state")
