"""Alembic environment: run with the connection handed over by store.db.migrate()."""

from __future__ import annotations

from alembic import context

from amazon_commerce_sync.store.schema import metadata

connection = context.config.attributes.get("connection")
if connection is None:  # pragma: no cover - only via the alembic CLI
    raise RuntimeError("run migrations through amazon_commerce_sync.store.db.migrate()")

context.configure(
    connection=connection,
    target_metadata=metadata,
    render_as_batch=connection.dialect.name == "sqlite",
    compare_type=True,
)
with context.begin_transaction():
    context.run_migrations()
