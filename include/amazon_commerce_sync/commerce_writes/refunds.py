"""An offline credit memo, once (``POST /V1/order/{id}/refund``): how the refund sync mirrors a refund
Amazon made on its side.

A credit memo has no natural key Magento would let us set, so its look-up is by what the intent
recorded: a credit memo of the order with the intent's grand total, created since the intent (with
five minutes of slack for clocks), that nothing else claims (neither another mirrored refund nor a
memo the merchant made, which the refund sync has as an outbox entry).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Sequence
from datetime import timedelta
from decimal import Decimal
from typing import Any

from amazon_commerce_sync.commerce_writes import keys
from amazon_commerce_sync.commerce_writes.protocol import Done, WriteResult, write_once
from amazon_commerce_sync.errors import FatalError
from amazon_commerce_sync.hooks.commerce import Filter
from amazon_commerce_sync.store import StateStore, WriteRow
from amazon_commerce_sync.times import as_utc, parse_time

CLOCK_SLACK = timedelta(minutes=5)


@dataclasses.dataclass(frozen=True)
class OfflineRefund:
    """The arguments of ``refund_order`` for one credit memo and the grand total it will have."""

    items: Sequence[dict[str, Any]]  # [{"order_item_id", "qty"}]
    shipping_amount: Decimal
    adjustment_positive: Decimal
    adjustment_negative: Decimal
    total: Decimal


def refund_offline(
    commerce,
    store: StateStore,
    key: keys.WriteKey,
    commerce_id: int,
    *,
    plan: Callable[[], OfflineRefund],
    claimed: Callable[[int], bool],
) -> WriteResult:
    """Create the offline credit memo once; ``done.entity_id`` / the log's entity id is its id.

    ``plan`` is called only when the memo must be created (it may read the order); ``claimed(memo_id)``
    tells whether an existing memo already stands for something else.

    :raises FatalError: the refund has no positive amount, or Commerce refused it.
    """
    planned: list[OfflineRefund] = []

    def look(earlier: WriteRow | None) -> Done | None:
        total = ((earlier or {}).get("detail") or {}).get("total")
        if earlier is None or not total:
            return None
        started = as_utc(earlier["created_at"]) - CLOCK_SLACK
        for page in commerce.search("creditmemos", [[Filter("order_id", commerce_id)]]):
            for memo in page:
                created = parse_time(memo["created_at"]) if memo.get("created_at") else None
                if Decimal(str(memo.get("grand_total") or 0)) != Decimal(total) or (created and created < started):
                    continue
                if not claimed(int(memo["entity_id"])):
                    return Done(int(memo["entity_id"]))
        return None

    def intent() -> dict[str, Any]:
        refund = plan()
        if refund.total <= 0:
            raise FatalError("the refund has no positive amount", operation="refund_order")
        planned.append(refund)
        return {"total": str(refund.total)}

    def send() -> Done:
        refund = planned[-1]
        memo_id = commerce.refund_order(
            commerce_id,
            list(refund.items),
            shipping_amount=refund.shipping_amount,
            adjustment_positive=refund.adjustment_positive,
            adjustment_negative=refund.adjustment_negative,
        )
        return Done(memo_id)

    return write_once(store.writes, key, send=send, look=look, detail=intent)
