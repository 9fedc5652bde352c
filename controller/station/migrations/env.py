"""Alembic's environment for the station's database: run by `controller.station.store.migrate`
with the connection in `config.attributes["connection"]` (no alembic.ini, no URL in a file)."""

from __future__ import annotations

from alembic import context

from controller.station.schema import metadata

connection = context.config.attributes["connection"]
context.configure(connection=connection, target_metadata=metadata, render_as_batch=True)
with context.begin_transaction():
    context.run_migrations()
