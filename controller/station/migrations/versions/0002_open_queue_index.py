"""The open queue in its order as a partial index: the queue page reads its first rows and the
count of open incidents without scanning the closed ones (bench/station_queue.py).

Revision ID: 0002
Revises: 0001
Create Date: 2026-12-07
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

OPEN = sa.text("state <> 'closed'")


def upgrade() -> None:
    op.create_index(
        "ix_incidents_open_queue",
        "incidents",
        ["priority", "opened_at", "id"],
        postgresql_where=OPEN,
        sqlite_where=OPEN,
    )


def downgrade() -> None:
    op.drop_index("ix_incidents_open_queue", "incidents")
