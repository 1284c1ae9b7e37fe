"""Ship-by deadlines of merchant-fulfilled orders: the orders at risk of shipping late, and the alert sent once.

Amazon counts a merchant-fulfilled order confirmed after its ship-by date (``fulfillment.shipByWindow.
latestDateTime``, stored as ``amazon_orders.ship_by``) as a late shipment against the seller's metrics. An
order is *at risk* while its deadline is near or past and it is still unshipped: ``UNSHIPPED`` or
``PARTIALLY_SHIPPED`` on Amazon, not cancelled nor left out of the import (``not_eligible``), and not shipped in
Commerce either (no shipment confirmation on its way to Amazon in the outbox, ``pipelines.shipment_confirm``).
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement, and_, exists, select, update

from amazon_commerce_sync.store.base import Aggregate, aware
from amazon_commerce_sync.store.orders import OrderSync
from amazon_commerce_sync.store.outbox import OutboxStatus
from amazon_commerce_sync.store.schema import amazon_orders, outbox

#: Amazon statuses of an order not (fully) shipped (Orders API 2026-01-01 ``fulfillmentStatus``).
UNSHIPPED_STATUSES = ("UNSHIPPED", "PARTIALLY_SHIPPED")
#: The outbox kind of the shipment confirmations the shipment sync sends (``pipelines.shipment_confirm.KIND``).
SHIPMENT_CONFIRMATION = "shipment_confirmation"
#: Sync statuses of orders nobody ships through Commerce.
NOT_SHIPPED_HERE = (OrderSync.CANCELLED, OrderSync.NOT_ELIGIBLE)

COLUMNS = (
    amazon_orders.c.amazon_order_id,
    amazon_orders.c.account_id,
    amazon_orders.c.marketplace_id,
    amazon_orders.c.amazon_status,
    amazon_orders.c.sync_status,
    amazon_orders.c.commerce_order_id,
    amazon_orders.c.commerce_increment_id,
    amazon_orders.c.ship_by,
    amazon_orders.c.ship_by_alerted_at,
)


def at_risk(before: datetime) -> ColumnElement[bool]:
    """The WHERE clause of the orders at risk whose ship-by deadline is at or before ``before`` (aware UTC)."""
    o, b = amazon_orders.c, outbox.c
    shipped_in_commerce = exists().where(
        b.amazon_order_id == o.amazon_order_id,
        b.kind == SHIPMENT_CONFIRMATION,
        b.status != str(OutboxStatus.SKIPPED),
    )
    return and_(
        o.ship_by.is_not(None),
        o.ship_by <= before,
        o.fulfilled_by == "MERCHANT",
        o.amazon_status.in_(UNSHIPPED_STATUSES),
        o.sync_status.not_in([str(s) for s in NOT_SHIPPED_HERE]),
        ~shipped_in_commerce,
    )


class ShipByDeadlines(Aggregate):
    """The orders at risk of missing their ship-by deadline (README "Alerts")."""

    def at_risk(self, before: datetime, *, not_alerted: bool = False, limit: int = 1000) -> list[dict[str, Any]]:
        """Orders at risk with a deadline at or before ``before``, soonest first: dicts of ``COLUMNS`` (times
        aware UTC); ``not_alerted``: only those the monitor has not alerted on yet."""
        where = at_risk(before)
        if not_alerted:
            where = and_(where, amazon_orders.c.ship_by_alerted_at.is_(None))
        rows = self._all(
            select(*COLUMNS)
            .where(where)
            .order_by(amazon_orders.c.ship_by, amazon_orders.c.amazon_order_id)
            .limit(limit)
        )
        for row in rows:
            row["ship_by"], row["ship_by_alerted_at"] = aware(row["ship_by"]), aware(row["ship_by_alerted_at"])
        return rows

    def mark_alerted(self, amazon_order_ids: Iterable[str], at: datetime) -> int:
        """Remember that the ship-by alert was sent for these orders (never again for them); returns how many."""
        ids = sorted(set(amazon_order_ids))
        if not ids:
            return 0
        with self._writing() as conn:
            return conn.execute(
                update(amazon_orders)
                .where(amazon_orders.c.amazon_order_id.in_(ids), amazon_orders.c.ship_by_alerted_at.is_(None))
                .values(ship_by_alerted_at=at)
            ).rowcount
