"""cursors: the scope a cursor covers (one orders cursor per account and Amazon region)

The extraction reads all of an account's marketplaces of a region in one searchOrders window, under the
stream ``orders:<account>:<region>``; ``scope`` lists the marketplace ids that window covers, so a
marketplace added later is read from ``import_orders_after`` instead of being skipped. The per-marketplace
cursors of earlier releases are kept by this migration: the first extraction starts the region's cursor from
the oldest of them (no gap) and removes them in the same transaction.

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-30 19:40:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("cursors", schema=None) as batch_op:
        batch_op.add_column(sa.Column("scope", sa.String(length=1000), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("cursors", schema=None) as batch_op:
        batch_op.drop_column("scope")
