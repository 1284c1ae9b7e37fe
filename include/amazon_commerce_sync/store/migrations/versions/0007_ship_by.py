"""amazon_orders: the ship-by deadline of merchant-fulfilled orders, and when its alert was sent

``ship_by`` is Amazon's ``fulfillment.shipByWindow.latestDateTime`` (Orders API 2026-01-01), until now only in
the staged payload; as a column the monitor and the Sales Channel page can query the orders at risk of shipping
late. ``ship_by_alerted_at`` remembers that the monitor has alerted on the order (once per order, across runs).
The orders that can still be late (merchant-fulfilled, not shipped or cancelled on Amazon) get their ship-by
from their payload here; the others get it when Amazon next changes them.

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-30 22:30:00
"""

from __future__ import annotations

from datetime import UTC, datetime

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None

_BATCH = 1000


def _ship_by(payload) -> datetime | None:
    """fulfillment.shipByWindow.latestDateTime of a staged payload (as ``store.orders.ship_by_of``)."""
    value = (((payload or {}).get("fulfillment") or {}).get("shipByWindow") or {}).get("latestDateTime")
    try:
        return datetime.fromisoformat(str(value)).astimezone(UTC) if value else None
    except ValueError:
        return None


def upgrade() -> None:
    with op.batch_alter_table("amazon_orders", schema=None) as batch_op:
        batch_op.add_column(sa.Column("ship_by", sa.DateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column("ship_by_alerted_at", sa.DateTime(timezone=True), nullable=True))
        batch_op.create_index("ix_amazon_orders_ship_by", ["ship_by"], unique=False)
    orders = sa.table(
        "amazon_orders",
        sa.column("amazon_order_id", sa.String),
        sa.column("fulfilled_by", sa.String),
        sa.column("amazon_status", sa.String),
        sa.column("payload", sa.JSON),
        sa.column("ship_by", sa.DateTime(timezone=True)),
    )
    conn = op.get_bind()
    last = ""
    while True:
        rows = conn.execute(
            sa.select(orders.c.amazon_order_id, orders.c.payload)
            .where(
                orders.c.fulfilled_by == "MERCHANT",
                orders.c.amazon_status.in_(["UNSHIPPED", "PARTIALLY_SHIPPED"]),
                orders.c.amazon_order_id > last,
            )
            .order_by(orders.c.amazon_order_id)
            .limit(_BATCH)
        ).all()
        if not rows:
            break
        for row in rows:
            ship_by = _ship_by(row.payload)
            if ship_by is not None:
                conn.execute(
                    sa.update(orders).where(orders.c.amazon_order_id == row.amazon_order_id).values(ship_by=ship_by)
                )
        last = rows[-1].amazon_order_id


def downgrade() -> None:
    with op.batch_alter_table("amazon_orders", schema=None) as batch_op:
        batch_op.drop_index("ix_amazon_orders_ship_by")
        batch_op.drop_column("ship_by_alerted_at")
        batch_op.drop_column("ship_by")
