"""The open queue's counts by site and priority, kept by the store in the same transaction as
the incidents they count (opened +1, closed -1), so the queue page reads a few rows instead of
counting every open incident (bench/station_queue.py, docs/station.md). Filled from the
incidents already there. The open queue's index also holds `state`, so that SQLite reads a
page's ids from the index alone, as PostgreSQL does.

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-07
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


OPEN = sa.text("state <> 'closed'")


def _queue_index(columns: list[str]) -> None:
    op.drop_index("ix_incidents_open_queue", "incidents")
    op.create_index(
        "ix_incidents_open_queue",
        "incidents",
        columns,
        postgresql_where=OPEN,
        sqlite_where=OPEN,
    )


def upgrade() -> None:
    _queue_index(["priority", "opened_at", "id", "state"])
    op.create_table(
        "open_counts",
        sa.Column("site", sa.String(200), nullable=False),
        sa.Column("priority", sa.Integer, nullable=False),
        sa.Column("n", sa.Integer, nullable=False),
        sa.PrimaryKeyConstraint("site", "priority"),
    )
    op.execute(
        "INSERT INTO open_counts (site, priority, n) SELECT site, priority, count(*) "
        "FROM incidents WHERE state <> 'closed' GROUP BY site, priority"
    )


def downgrade() -> None:
    op.drop_table("open_counts")
    _queue_index(["priority", "opened_at", "id"])
