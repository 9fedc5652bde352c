"""The station's tables (SQLAlchemy Core). The migrations in `migrations/` create them; this
module is what the code reads and writes through, and a test checks the two agree."""

from __future__ import annotations

from sqlalchemy import (
    Boolean,
    Column,
    Double,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Table,
    Text,
    func,
    literal_column,
    text,
)

metadata = MetaData()

# every distinct event of every site (de-duplicated by its id), with its JSON as received
events = Table(
    "events",
    metadata,
    Column("id", String(32), primary_key=True),
    Column("site", String(200), nullable=False),
    Column("seq", Integer, nullable=False),
    Column("at", Double, nullable=False),  # the event's ts, seconds since the epoch
    Column("ts", String(40), nullable=False),
    Column("kind", String(40), nullable=False),
    Column("zone", String(200)),
    Column("sensor", String(200)),
    Column("user", String(200)),
    Column("cid", String(4)),
    Column("text", Text, nullable=False),
    Column("received_at", Double, nullable=False),
    Column("body", Text, nullable=False),
    Index("ix_events_site_at", "site", "at"),
    Index("ix_events_kind_at", "kind", "at"),
)

# state changes, heartbeats, drone tracks, patrols: every retained-state message as received
site_log = Table(
    "site_log",
    metadata,
    Column("n", Integer, primary_key=True, autoincrement=True),
    Column("site", String(200), nullable=False),
    Column("topic", String(400), nullable=False),  # the topic under <prefix>/<site>/
    Column("received_at", Double, nullable=False),
    Column("body", Text, nullable=False),  # "" for a cleared retained message
    Index("ix_site_log_site_at", "site", "received_at"),
)

# the newest message of each retained topic of each site (everything in site_log but the
# station's own `station/...` notes), kept by ingest in the transaction that logs it, the newer
# by `n` winning (migrations/versions/0006_site_state.py): the site board and a site's page read
# it in constant time, where the log grows with every heartbeat
site_state = Table(
    "site_state",
    metadata,
    Column("site", String(200), primary_key=True),
    Column("topic", String(400), primary_key=True),
    Column("n", Integer, nullable=False),  # its site_log row
    Column("received_at", Double, nullable=False),
    Column("body", Text, nullable=False),  # "" for a cleared retained topic
)

# what failed the event schema (or was not JSON): kept with the reason, never dropped
quarantine = Table(
    "quarantine",
    metadata,
    Column("n", Integer, primary_key=True, autoincrement=True),
    Column("received_at", Double, nullable=False),
    Column("topic", String(400), nullable=False),
    Column("reason", Text, nullable=False),
    Column("payload", Text, nullable=False),  # decoded with errors replaced, at most 64 KiB
)

sites = Table(
    "sites",
    metadata,
    Column("site", String(200), primary_key=True),
    Column("online", Boolean),
    Column("last_seen", Double),
    Column("heartbeat_s", Double),
    Column("reason", Text),
    Column("comm_lost_since", Double),
    Column("version", String(100)),
)

incidents = Table(
    "incidents",
    metadata,
    Column("id", String(32), primary_key=True),  # the opening event's id
    Column("site", String(200), nullable=False),
    Column("priority", Integer, nullable=False),
    Column("what", String(40), nullable=False),
    Column("zone", String(200)),
    Column("title", Text, nullable=False),
    Column("opened_at", Double, nullable=False),
    Column("state", String(20), nullable=False),
    Column("acknowledged_at", Double),
    Column("acknowledged_by", String(100)),
    Column("closed_at", Double),
    Column("closed_by", String(100)),
    Column("resolution", String(40)),
    Index("ix_incidents_state", "state", "priority", "opened_at"),
    # the open queue in its order (migrations/versions/0002_open_queue_index.py; `state` since
    # 0003, so that SQLite too reads a page's ids from the index alone)
    Index(
        "ix_incidents_open_queue",
        "priority",
        "opened_at",
        "id",
        "state",
        postgresql_where=text("state <> 'closed'"),
        sqlite_where=text("state <> 'closed'"),
    ),
)

# at most one open incident per site, priority, alarm class and zone (the key `store.py` joins
# alarms on; a zone-less incident's zone is ''), so that two station processes taking alarms of
# the same zone at once open one incident (migrations/versions/0005_one_open_incident_per_key.py)
OPEN_KEY = (
    incidents.c.site,
    incidents.c.priority,
    incidents.c.what,
    func.coalesce(incidents.c.zone, literal_column("''")),
)
Index(
    "ux_incidents_open_key",
    *OPEN_KEY,
    unique=True,
    postgresql_where=text("state <> 'closed'"),
    sqlite_where=text("state <> 'closed'"),
)

# the open incidents counted by site and priority, kept by the store in the transactions that
# open and close incidents (migrations/versions/0003_open_queue_counts.py)
open_counts = Table(
    "open_counts",
    metadata,
    Column("site", String(200), primary_key=True),
    Column("priority", Integer, primary_key=True),
    Column("n", Integer, nullable=False),
)

incident_events = Table(
    "incident_events",
    metadata,
    Column("event_id", String(32), primary_key=True),
    Column("incident_id", String(32), ForeignKey("incidents.id"), nullable=False),
)

# the audit trail: triggers refuse UPDATE and DELETE (migrations/versions/0001_initial.py)
incident_steps = Table(
    "incident_steps",
    metadata,
    Column("n", Integer, primary_key=True, autoincrement=True),
    Column("incident_id", String(32), ForeignKey("incidents.id"), nullable=False),
    Column("at", Double, nullable=False),
    Column("who", String(100), nullable=False),
    Column("action", String(20), nullable=False),
    Column("text", Text, nullable=False),
    Index("ix_incident_steps_incident", "incident_id", "n"),
)

operators = Table(
    "operators",
    metadata,
    Column("login", String(100), primary_key=True),
    Column("password_hash", Text, nullable=False),
    Column("role", String(20), nullable=False),
    Column("created_at", Double, nullable=False),
    Column("disabled", Boolean, nullable=False, default=False),
)

# camera pictures sent by the sites with their alarms (docs/cameras.md), size-capped, the
# oldest pruned past the station's total (migrations/versions/0003_snapshots.py)
snapshots = Table(
    "snapshots",
    metadata,
    Column("id", String(200), primary_key=True),  # <event id>-<camera>-<n>, as on the site
    Column("site", String(200), nullable=False),
    Column("event_id", String(32), nullable=False),
    Column("received_at", Double, nullable=False),
    Column("size", Integer, nullable=False),
    Column("image", LargeBinary, nullable=False),
    Index("ix_snapshots_event", "event_id"),
    Index("ix_snapshots_received", "received_at"),
)
