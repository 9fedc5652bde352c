"""Camera pictures received with the sites' alarms, shown on the incident's page.

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-07
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "snapshots",
        sa.Column("id", sa.String(200), primary_key=True),
        sa.Column("site", sa.String(200), nullable=False),
        sa.Column("event_id", sa.String(32), nullable=False),
        sa.Column("received_at", sa.Double, nullable=False),
        sa.Column("size", sa.Integer, nullable=False),
        sa.Column("image", sa.LargeBinary, nullable=False),
    )
    op.create_index("ix_snapshots_event", "snapshots", ["event_id"])
    op.create_index("ix_snapshots_received", "snapshots", ["received_at"])


def downgrade() -> None:
    op.drop_table("snapshots")
