"""Staging a page of Amazon orders: a fixed number of statements per page (``OrderStore.stage``).

Per chunk of up to ``STAGE_CHUNK`` orders: insert-if-absent ``RETURNING`` the ids it inserted (two writers racing
on a new order cannot both insert), the stored versions of the others (locked), one ``executemany`` update of those
Amazon changed, and ``executemany`` upserts of their items and buyer data.

Amazon changed an order when its ``lastUpdatedTime`` moved forward, or stayed the same with other content: the
Orders API gives that time to the second (``2025-03-10T14:30:00Z`` in the 2026-01-01 model's examples), so two
changes within one second (shipped, then its package data) carry the same time. The one read later is the newer;
an older time never overwrites a newer one (stale notifications, out-of-order pages).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import bindparam, select, update
from sqlalchemy.engine import Connection

from amazon_commerce_sync.store import pii_crypto
from amazon_commerce_sync.store.base import aware, insert
from amazon_commerce_sync.store.orders import OrderSync, StageCounts, StagedOrder, ship_by_of
from amazon_commerce_sync.store.schema import PII_FIELDS, amazon_orders, order_items, order_pii

#: Orders per statement when staging (SQLite allows 32,766 bound parameters per statement).
STAGE_CHUNK = 500


def stage_chunk(conn: Connection, orders: Sequence[StagedOrder], now: datetime, counts: StageCounts) -> None:
    """``OrderStore.stage`` for up to ``STAGE_CHUNK`` orders with distinct ids, on ``conn``; adds to ``counts``."""
    o = amazon_orders.c
    rows = [
        {
            "amazon_order_id": order.amazon_order_id,
            "sync_status": OrderSync.WAITING,
            "attempts": 0,
            "first_seen_at": now,
            **_order_values(order, now),
        }
        for order in orders
    ]
    inserted = set(
        conn.execute(
            insert(conn, amazon_orders)
            .on_conflict_do_nothing(index_elements=["amazon_order_id"])
            .returning(o.amazon_order_id),
            rows,  # executemany: one compiled statement, sent as multi-row batches ("insertmanyvalues")
        ).scalars()
    )
    counts["new"] += len(inserted)
    latest = {order.amazon_order_id: order for order in orders}
    others = [i for i in latest if i not in inserted]
    current = (
        {
            row.amazon_order_id: row
            for row in conn.execute(
                select(o.amazon_order_id, o.amazon_updated_at, o.payload)
                .where(o.amazon_order_id.in_(others))
                .with_for_update()
            )
        }
        if others
        else {}
    )
    newer = {i for i in others if aware(current[i].amazon_updated_at) < latest[i].amazon_updated_at}
    same_second = {
        i
        for i in others
        if aware(current[i].amazon_updated_at) == latest[i].amazon_updated_at
        and _as_stored(latest[i].payload) != current[i].payload
    }
    changed = newer | same_second
    counts["changed"] += len(changed)
    counts["unchanged"] += len(others) - len(changed)
    if changed:
        conn.execute(
            update(amazon_orders)
            .where(o.amazon_order_id == bindparam("b_amazon_order_id"))
            .values({name: bindparam(f"b_{name}", type_=o[name].type) for name in ORDER_VALUE_COLUMNS}),
            [
                {"b_amazon_order_id": i, **{f"b_{k}": v for k, v in _order_values(latest[i], now).items()}}
                for i in others
                if i in changed
            ],
        )
    if same_second:  # its lastUpdatedTime is the one applied: only a cleared mark gets it applied
        conn.execute(
            update(amazon_orders)
            .where(o.amazon_order_id.in_(sorted(same_second)))
            .values(synced_amazon_updated_at=None)
        )
    written = [order for order in orders if order.amazon_order_id in inserted or order.amazon_order_id in changed]
    _upsert_items(conn, written)
    _upsert_pii(conn, [order for order in written if order.pii is not None])


def _as_stored(payload: dict[str, Any]) -> Any:
    """``payload`` as the JSON column gives it back (JSON numbers, lists for tuples), to compare with a stored one."""
    return json.loads(json.dumps(payload, default=str))


#: The ``amazon_orders`` columns a staged version of an order sets (``_order_values``).
ORDER_VALUE_COLUMNS = (
    "account_id",
    "marketplace_id",
    "fulfilled_by",
    "amazon_status",
    "amazon_created_at",
    "amazon_updated_at",
    "currency",
    "order_total",
    "buyer_cancel_requested",
    "payload",
    "ship_by",
    "updated_at",
)


def _order_values(order: StagedOrder, now: datetime) -> dict[str, Any]:
    """The ``amazon_orders`` values of one staged version (``ORDER_VALUE_COLUMNS``)."""
    return {
        "account_id": order.account_id,
        "marketplace_id": order.marketplace_id,
        "fulfilled_by": order.fulfilled_by,
        "amazon_status": order.amazon_status,
        "amazon_created_at": order.amazon_created_at,
        "amazon_updated_at": order.amazon_updated_at,
        "currency": order.currency,
        "order_total": order.order_total,
        "buyer_cancel_requested": order.buyer_cancel_requested,
        "payload": order.payload,
        "ship_by": ship_by_of(order.payload),
        "updated_at": now,
    }


def _upsert_items(conn: Connection, orders: Sequence[StagedOrder]) -> None:
    """Insert or update the items of these orders (one ``executemany``; Commerce item ids are kept)."""
    rows = {
        item["amazon_order_item_id"]: {
            "amazon_order_item_id": item["amazon_order_item_id"],
            "amazon_order_id": order.amazon_order_id,
            "seller_sku": item["seller_sku"],
            "quantity_ordered": item["quantity_ordered"],
            "quantity_shipped": item.get("quantity_shipped", 0),
        }
        for order in orders
        for item in order.items
    }
    if not rows:
        return
    stmt = insert(conn, order_items)
    conn.execute(
        stmt.on_conflict_do_update(
            index_elements=["amazon_order_item_id"],
            set_={c: stmt.excluded[c] for c in ("seller_sku", "quantity_ordered", "quantity_shipped")},
        ),
        list(rows.values()),
    )


def _upsert_pii(conn: Connection, orders: Sequence[StagedOrder]) -> None:
    """Store the buyer data of these orders (one ``executemany``), except where retention erased it.

    An order without any personal data (PENDING orders carry none) keeps what is stored.
    Raises ``PiiKeyError`` when no encryption key is configured: never a clear-text row."""
    with_values = {
        order.amazon_order_id: {k: order.pii.get(k) for k in PII_FIELDS}
        for order in orders
        if order.pii and any(order.pii.get(k) for k in PII_FIELDS)
    }
    if not with_values:
        return
    erased = set(
        conn.scalars(
            select(order_pii.c.amazon_order_id).where(
                order_pii.c.amazon_order_id.in_(list(with_values)), order_pii.c.erased_at.is_not(None)
            )
        )
    )
    rows = [{"amazon_order_id": i, **values} for i, values in with_values.items() if i not in erased]
    if not rows:
        return  # erased for retention: never stored again
    pii_crypto.cipher()  # no key: PiiKeyError here (the task fails at once), never a clear-text row
    stmt = insert(conn, order_pii)
    conn.execute(
        stmt.on_conflict_do_update(
            index_elements=["amazon_order_id"],
            set_={k: stmt.excluded[k] for k in PII_FIELDS},
            # an erasure committed since the look-up above (PostgreSQL re-reads the row it waited for) stays
            where=order_pii.c.erased_at.is_(None),
        ),
        rows,
    )
