"""Alembic's environment for the station's database: run by `controller.station.store.migrate`
with the connection in `config.attributes["connection"]` (no alembic.ini, no URL in a file)."""

from __future__ import annotations

from alembic import context

from controller.station.schema import metadata


def run_migrations() -> None:
    connection = context.config.attributes["connection"]
    context.configure(connection=connection, target_metadata=metadata, render_as_batch=True)
    with context.begin_transaction():
        context.run_migrations()


# Alembic runs this file inside its environment; imported anywhere else (a walk over every
# module of the package, say) it does nothing
if hasattr(context, "config"):
    run_migrations()
