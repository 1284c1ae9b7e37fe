"""Extract Amazon orders: stage every order updated in a window, exactly as Amazon published it.

Extraction stages every order updated in ``[cursor - overlap, now - 2 min]`` page by page
(SP-API Orders 2026-01-01 ``searchOrders`` by ``lastUpdatedAfter``; Amazon's 2-minute rule and
publication delay) and moves the cursor only when the whole window is staged. Buyer personal data
is kept apart (``order_pii``). Loading into Commerce is ``order_import``'s job.

One window per account and Amazon region: ``searchOrders`` takes all of the account's marketplaces of
the region in ``marketplaceIds`` and Amazon's rate limit (0.0056 requests/s, burst 20) is per seller and
operation, not per marketplace, so a run costs one call per page of orders whatever the number of
marketplaces. The cursor ``orders:<account>:<region>`` records which marketplaces it covers; a marketplace
added later is read once from ``import_orders_after`` (its own window, same end), and the per-marketplace
cursors of earlier releases start the region's cursor from the oldest of them, then are removed.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

from amazon_commerce_sync import buyer_data, marketplaces, transform
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
        payload=buyer_data.strip_pii(order),
        items=items,
        pii=buyer_data.extract_pii(order),
    )


def _windows(
    ctx: Resources, account: AccountSettings, region: str, ids: tuple[str, ...], end: datetime
) -> tuple[list[tuple[tuple[str, ...], datetime]], tuple[str, ...]]:
    """The windows ``(marketplace ids, start)`` that bring the region's cursor to ``end``, and the earlier
    releases' per-marketplace cursors the region's cursor takes over."""
    stream = account.orders_cursor(region)
    legacy = tuple(account.marketplace_cursor(m) for m in ids)
    cursor = ctx.store.ops.get_cursor(stream)
    if cursor is not None:
        scope = ctx.store.ops.cursor_scope(stream)
        covered = set(ids) if scope is None else set(scope) & set(ids)
    else:
        # First run of this release: the oldest per-marketplace cursor, so no marketplace gets a gap.
        old = {m: ctx.store.ops.get_cursor(account.marketplace_cursor(m)) for m in ids}
        found = {m: value for m, value in old.items() if value is not None}
        cursor = min(found.values()) if found else None
        covered = set(found) if found else set(ids)
    start = max(cursor - timedelta(minutes=account.overlap_minutes), account.import_orders_after) if cursor else None
    windows: list[tuple[tuple[str, ...], datetime]] = []
    read = tuple(m for m in ids if m in covered)
    if read:
        windows.append((read, start or account.import_orders_after))
    added = tuple(m for m in ids if m not in covered)
    if added:  # not read up to the cursor yet: from the start, once
        windows.append((added, account.import_orders_after))
    return [(m, s) for m, s in windows if s < end], legacy


def extract_orders(
    ctx: Resources,
    account: AccountSettings,
    *,
    now: datetime,
    backfill_from: datetime | None = None,
    backfill_to: datetime | None = None,
) -> dict[str, Any]:
    """Stage every order of the account's marketplaces updated in the window; returns counts (no personal data).

    One ``searchOrders`` listing for all the account's marketplaces (two only the first time a marketplace
    is added: the new one is read from ``import_orders_after``); the cursor ``orders:<account>:<region>``
    moves to ``now - 2 min`` once every page is staged.

    :raises SettingsError: an unknown marketplace id, or marketplaces of more than one Amazon region.
    :raises RepeatedPageError: Amazon handed out a page token twice; the cursor stays.
    """
    region, ids = marketplaces.account_region(account.account_id, account.marketplace_ids)
    summary: dict[str, Any] = {
        "account": account.account_id,
        "region": region,
        "marketplaces": len(ids),
        "pages": 0,
        "fetched": 0,
        "new": 0,
        "changed": 0,
    }
    hook = ctx.amazon(account)
    latest_end = now - AMAZON_PUBLICATION_DELAY
    stream = account.orders_cursor(region)
    moves = True
    if backfill_from is not None:
        end = min(backfill_to or latest_end, latest_end)
        start = max(backfill_from, account.import_orders_after)
        windows = [(ids, start)] if start < end else []
        legacy: tuple[str, ...] = ()
        # A backfill moves the cursor only when it read on from the cursor (else it would skip a gap).
        cursor = ctx.store.ops.get_cursor(stream)
        scope = ctx.store.ops.cursor_scope(stream)
        moves = bool(windows) and cursor is not None and start <= cursor and set(ids) <= set(scope or ids)
    else:
        end = latest_end
        windows, legacy = _windows(ctx, account, region, ids, end)
    if not windows:
        log.info("%s %s: the window ending %s is empty; nothing to fetch", account.account_id, region, end)
    for window_ids, start in windows:
        log.info(
            "%s %s: fetching orders of %d marketplace(s) updated in [%s, %s]",
            account.account_id,
            region,
            len(window_ids),
            start,
            end,
        )
        pages = hook.search_orders(
            marketplace_ids=window_ids,
            last_updated_after=start,
            last_updated_before=end,
            included_data=INCLUDED_DATA,
            max_results_per_page=account.page_size,
        )
        for number, page in enumerate(pages, start=1):
            _stage_page(ctx, account, page.orders, summary)
            log.info(
                "%s %s: page %d staged: %d orders (%d new, %d changed so far)",
                account.account_id,
                region,
                number,
                len(page.orders),
                summary["new"],
                summary["changed"],
            )
    # Only now that every window is staged may the cursor move (and take over the per-marketplace ones).
    if moves:
        ctx.store.ops.set_cursor(stream, end, scope=ids, replaces=legacy)
    return summary


def _stage_page(
    ctx: Resources, account: AccountSettings, orders: list[dict[str, Any]], summary: dict[str, Any]
) -> None:
    """Stage one page of orders; an order that cannot be staged is quarantined with the reason."""
    records = []
    for order in orders:
        try:
            records.append(staged_order(order, account.account_id))
        except (KeyError, TypeError, ValueError) as exc:
            order_id = str(order.get("orderId") or "?")
            ctx.store.ops.quarantine("amazon_order", order_id, f"cannot stage the order: {type(exc).__name__}")
            summary["quarantined"] = summary.get("quarantined", 0) + 1
    counts = ctx.store.orders.stage(records)
    summary["pages"] += 1
    summary["fetched"] += len(orders)
    summary["new"] += counts["new"]
    summary["changed"] += counts["changed"]
