"""Extract Amazon orders: stage every order updated in a window, exactly as Amazon published it.

Extraction stages every order updated in ``[cursor - overlap, now - 2 min]`` page by page
(SP-API Orders 2026-01-01 ``searchOrders`` by ``lastUpdatedAfter``; Amazon's 2-minute rule and
publication delay) and moves the cursor only when the whole window is staged. Buyer personal data
is kept apart (``order_pii``). Loading into Commerce is ``order_import``'s job.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

from amazon_commerce_sync import transform
from amazon_commerce_sync.resources import Resources
from amazon_commerce_sync.settings import AccountSettings
from amazon_commerce_sync.store import StagedItem, StagedOrder
from amazon_commerce_sync.times import parse_time

log = logging.getLogger(__name__)

INCLUDED_DATA = ("BUYER", "RECIPIENT", "PROCEEDS", "PROMOTION", "CANCELLATION", "FULFILLMENT", "PACKAGES", "TAX")
AMAZON_PUBLICATION_DELAY = timedelta(minutes=2)


def staged_order(order: Mapping[str, Any], account_id: str) -> StagedOrder:
    """The state-store record of an Amazon order (personal data kept apart in ``pii``)."""
    currency = transform.order_currency(order)
    grand = (order.get("proceeds") or {}).get("grandTotal")
    total = None
    if grand and grand.get("amount") is not None:
        try:
            total = Decimal(str(grand["amount"]))
        except ArithmeticError:
            total = None
    items: list[StagedItem] = []
    for item in order.get("orderItems") or []:
        items.append(
            {
                "amazon_order_item_id": str(item.get("orderItemId")),
                "seller_sku": str(((item.get("product") or {}).get("sellerSku")) or ""),
                "quantity_ordered": int(item.get("quantityOrdered") or 0),
                "quantity_shipped": transform.quantity_shipped(item),
            }
        )
    return StagedOrder(
        amazon_order_id=order["orderId"],
        account_id=account_id,
        marketplace_id=(order.get("salesChannel") or {}).get("marketplaceId") or "",
        fulfilled_by=transform.fulfilled_by(order),
        amazon_status=transform.fulfillment_status(order),
        amazon_created_at=parse_time(order["createdTime"]),
        amazon_updated_at=parse_time(order["lastUpdatedTime"]),
        currency=currency,
        order_total=total,
        buyer_cancel_requested=transform.buyer_cancel_requested(order),
        payload=transform.strip_pii(order),
        items=items,
        pii=transform.extract_pii(order),
    )


def extract_orders(
    ctx: Resources,
    account: AccountSettings,
    *,
    now: datetime,
    backfill_from: datetime | None = None,
    backfill_to: datetime | None = None,
) -> dict[str, Any]:
    """Stage every order updated in the window, per marketplace; returns counts (no personal data)."""
    summary: dict[str, Any] = {"account": account.account_id, "pages": 0, "fetched": 0, "new": 0, "changed": 0}
    hook = ctx.amazon(account)
    latest_end = now - AMAZON_PUBLICATION_DELAY
    for marketplace in account.marketplace_ids:
        stream = account.cursor_stream(marketplace)
        if backfill_from is not None:
            start = max(backfill_from, account.import_orders_after)
            end = min(backfill_to or latest_end, latest_end)
        else:
            cursor = ctx.store.ops.get_cursor(stream)
            start = (cursor - timedelta(minutes=account.overlap_minutes)) if cursor else account.import_orders_after
            start = max(start, account.import_orders_after)
            end = latest_end
        if end <= start:
            log.info("%s %s: window [%s, %s] is empty; nothing to fetch", account.account_id, marketplace, start, end)
            continue
        log.info("%s %s: fetching orders updated in [%s, %s]", account.account_id, marketplace, start, end)
        pages = hook.search_orders(
            marketplace_ids=[marketplace],
            last_updated_after=start,
            last_updated_before=end,
            included_data=INCLUDED_DATA,
            max_results_per_page=account.page_size,
        )
        for number, page in enumerate(pages, start=1):
            records = []
            for order in page.orders:
                try:
                    records.append(staged_order(order, account.account_id))
                except (KeyError, TypeError, ValueError) as exc:
                    order_id = str(order.get("orderId") or "?")
                    ctx.store.ops.quarantine("amazon_order", order_id, f"cannot stage the order: {type(exc).__name__}")
                    summary["quarantined"] = summary.get("quarantined", 0) + 1
            counts = ctx.store.orders.stage(records)
            summary["pages"] += 1
            summary["fetched"] += len(page.orders)
            summary["new"] += counts["new"]
            summary["changed"] += counts["changed"]
            log.info(
                "%s %s: page %d staged: %d orders (%d new, %d changed)",
                account.account_id,
                marketplace,
                number,
                len(page.orders),
                counts["new"],
                counts["changed"],
            )
        # Only now that the whole window is staged may the cursor move.
        ctx.store.ops.set_cursor(stream, end)
    return summary
