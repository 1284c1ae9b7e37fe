"""order_events.deferrals: how often getOrder still showed an order older than its notification

The event-driven import defers such an order (Amazon's replicas lag) and asks again later; after
``pipelines.order_events.MAX_DEFERRALS`` deferrals it stages the order as Amazon shows it, marks the row ``stale``
and leaves the notified change to the polling sweep. Reset, like ``attempts``, by a newer notification.

Revision ID: 0010
Revises: 0009
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("order_events") as batch:
        batch.add_column(sa.Column("deferrals", sa.Integer(), nullable=False, server_default="0"))


def downgrade() -> None:
    with op.batch_alter_table("order_events") as batch:
        batch.drop_column("deferrals")
