"""The station's first schema: events, site log, quarantine, sites, incidents, their events and
append-only steps, operators.

Revision ID: 0001
Revises:
Create Date: 2026-12-07
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

_PG_APPEND_ONLY = """
CREATE FUNCTION incident_steps_append_only() RETURNS trigger AS $$
BEGIN
  RAISE EXCEPTION 'the incident trail is append-only';
END;
$$ LANGUAGE plpgsql;
CREATE TRIGGER incident_steps_no_update BEFORE UPDATE OR DELETE ON incident_steps
  FOR EACH ROW EXECUTE FUNCTION incident_steps_append_only();
"""


def upgrade() -> None:
    op.create_table(
        "events",
        sa.Column("id", sa.String(32), primary_key=True),
        sa.Column("site", sa.String(200), nullable=False),
        sa.Column("seq", sa.Integer, nullable=False),
        sa.Column("at", sa.Double, nullable=False),
        sa.Column("ts", sa.String(40), nullable=False),
        sa.Column("kind", sa.String(40), nullable=False),
        sa.Column("zone", sa.String(200)),
        sa.Column("sensor", sa.String(200)),
        sa.Column("user", sa.String(200)),
        sa.Column("cid", sa.String(4)),
        sa.Column("text", sa.Text, nullable=False),
        sa.Column("received_at", sa.Double, nullable=False),
        sa.Column("body", sa.Text, nullable=False),
    )
    op.create_index("ix_events_site_at", "events", ["site", "at"])
    op.create_index("ix_events_kind_at", "events", ["kind", "at"])
    op.create_table(
        "site_log",
        sa.Column("n", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("site", sa.String(200), nullable=False),
        sa.Column("topic", sa.String(400), nullable=False),
        sa.Column("received_at", sa.Double, nullable=False),
        sa.Column("body", sa.Text, nullable=False),
    )
    op.create_index("ix_site_log_site_at", "site_log", ["site", "received_at"])
    op.create_table(
        "quarantine",
        sa.Column("n", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("received_at", sa.Double, nullable=False),
        sa.Column("topic", sa.String(400), nullable=False),
        sa.Column("reason", sa.Text, nullable=False),
        sa.Column("payload", sa.Text, nullable=False),
    )
    op.create_table(
        "sites",
        sa.Column("site", sa.String(200), primary_key=True),
        sa.Column("online", sa.Boolean),
        sa.Column("last_seen", sa.Double),
        sa.Column("heartbeat_s", sa.Double),
        sa.Column("reason", sa.Text),
        sa.Column("comm_lost_since", sa.Double),
        sa.Column("version", sa.String(100)),
    )
    op.create_table(
        "incidents",
        sa.Column("id", sa.String(32), primary_key=True),
        sa.Column("site", sa.String(200), nullable=False),
        sa.Column("priority", sa.Integer, nullable=False),
        sa.Column("what", sa.String(40), nullable=False),
        sa.Column("zone", sa.String(200)),
        sa.Column("title", sa.Text, nullable=False),
        sa.Column("opened_at", sa.Double, nullable=False),
        sa.Column("state", sa.String(20), nullable=False),
        sa.Column("acknowledged_at", sa.Double),
        sa.Column("acknowledged_by", sa.String(100)),
        sa.Column("closed_at", sa.Double),
        sa.Column("closed_by", sa.String(100)),
        sa.Column("resolution", sa.String(40)),
    )
    op.create_index("ix_incidents_state", "incidents", ["state", "priority", "opened_at"])
    op.create_table(
        "incident_events",
        sa.Column("event_id", sa.String(32), primary_key=True),
        sa.Column("incident_id", sa.String(32), sa.ForeignKey("incidents.id"), nullable=False),
    )
    op.create_table(
        "incident_steps",
        sa.Column("n", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("incident_id", sa.String(32), sa.ForeignKey("incidents.id"), nullable=False),
        sa.Column("at", sa.Double, nullable=False),
        sa.Column("who", sa.String(100), nullable=False),
        sa.Column("action", sa.String(20), nullable=False),
        sa.Column("text", sa.Text, nullable=False),
    )
    op.create_index("ix_incident_steps_incident", "incident_steps", ["incident_id", "n"])
    op.create_table(
        "operators",
        sa.Column("login", sa.String(100), primary_key=True),
        sa.Column("password_hash", sa.Text, nullable=False),
        sa.Column("role", sa.String(20), nullable=False),
        sa.Column("created_at", sa.Double, nullable=False),
        sa.Column("disabled", sa.Boolean, nullable=False),
    )
    # the audit trail can never be edited away, whoever holds the database's password
    if op.get_bind().dialect.name == "postgresql":
        op.execute(_PG_APPEND_ONLY)
    else:
        for what in ("UPDATE", "DELETE"):
            op.execute(
                f"CREATE TRIGGER incident_steps_no_{what.lower()} BEFORE {what} ON incident_steps "
                "BEGIN SELECT RAISE(ABORT, 'the incident trail is append-only'); END"
            )


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute("DROP TRIGGER incident_steps_no_update ON incident_steps")
        op.execute("DROP FUNCTION incident_steps_append_only()")
    for t in (
        "operators",
        "incident_steps",
        "incident_events",
        "incidents",
        "sites",
        "quarantine",
        "site_log",
        "events",
    ):
        op.drop_table(t)
