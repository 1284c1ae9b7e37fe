"""An offline credit memo, once (``POST /V1/order/{id}/refund``): how the refund sync mirrors a refund
Amazon made on its side.

A credit memo has no natural key Magento would let us set, so its look-up is by what the intent
recorded: a credit memo of the order with the item quantities and base-currency arguments the intent sent
(the arguments are base amounts, so the memo's base fields are compared with them), created since the intent (with
five minutes of slack for clocks), that nothing else claims (neither another mirrored refund nor a
memo the merchant made, which the refund sync has as an outbox entry).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping, Sequence
from datetime import timedelta
from decimal import Decimal
from typing import Any

from amazon_commerce_sync.commerce_writes import keys
from amazon_commerce_sync.commerce_writes.protocol import Done, WriteResult, write_once
from amazon_commerce_sync.currency import ZERO, creditmemo_arguments
from amazon_commerce_sync.errors import FatalError
from amazon_commerce_sync.hooks.commerce import Filter
from amazon_commerce_sync.store import StateStore, WriteRow
from amazon_commerce_sync.times import as_utc, parse_time

CLOCK_SLACK = timedelta(minutes=5)


@dataclasses.dataclass(frozen=True)
class OfflineRefund:
    """The arguments of ``refund_order`` for one credit memo and the grand total it will have.

    ``shipping_amount`` and the adjustments are in the store's BASE currency, as Magento reads them
    (``CreditmemoFactory::initData``); ``total`` is the memo's grand total in the order currency.
    """

    items: Sequence[dict[str, Any]]  # [{"order_item_id", "qty"}]
    shipping_amount: Decimal
    adjustment_positive: Decimal
    adjustment_negative: Decimal
    total: Decimal

    @classmethod
    def for_order(
        cls,
        order: Mapping[str, Any],
        *,
        items: Sequence[dict[str, Any]],
        shipping_amount: Decimal,
        adjustment_positive: Decimal,
        adjustment_negative: Decimal,
        total: Decimal,
    ) -> OfflineRefund:
        """From a plan in the order currency (``refunds.plan_mirror``): the arguments converted to the base
        currency of the Commerce ``order`` (``currency.creditmemo_arguments``)."""
        base = creditmemo_arguments(
            order,
            shipping_amount=shipping_amount,
            adjustment_positive=adjustment_positive,
            adjustment_negative=adjustment_negative,
        )
        return cls(items, total=total, **base)

    def sent(self) -> dict[str, Any]:
        """What the memo records of these arguments: {"items": {order item id: qty}, "base_shipping_amount",
        "base_adjustment_positive", "base_adjustment_negative"} as strings (the write's detail)."""
        return {
            "items": {
                str(i["order_item_id"]): str(Decimal(str(i["qty"]))) for i in self.items if Decimal(str(i["qty"]))
            },
            "base_shipping_amount": str(self.shipping_amount),
            "base_adjustment_positive": str(self.adjustment_positive),
            "base_adjustment_negative": str(self.adjustment_negative),
        }


def _is_memo_of(memo: Mapping[str, Any], detail: Mapping[str, Any]) -> bool:
    """Whether a found credit memo is the one the intent ``detail`` planned, comparing like with like: its item
    quantities and base-currency arguments with what was sent (Magento stores ``base_shipping_amount`` and
    ``base_adjustment_*`` as sent, rounded to the cent). An intent recorded before these were kept has only the
    order-currency ``total``, compared with the memo's ``grand_total``."""
    sent = detail.get("sent")
    if not sent:
        return Decimal(str(memo.get("grand_total") or 0)) == Decimal(detail["total"])
    for name in ("base_shipping_amount", "base_adjustment_positive", "base_adjustment_negative"):
        if Decimal(str(memo.get(name) or 0)) != Decimal(sent[name]):
            return False
    wanted = {k: Decimal(v) for k, v in sent["items"].items()}
    items: dict[str, Decimal] = {}
    for line in memo.get("items") or []:  # the import creates simple items only: one line per order item
        qty = Decimal(str(line.get("qty") or 0))
        if qty:
            key = str(line.get("order_item_id"))
            items[key] = items.get(key, ZERO) + qty
    return items == wanted


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
                if not _is_memo_of(memo, earlier["detail"]) or (created and created < started):
                    continue
                if not claimed(int(memo["entity_id"])):
                    return Done(int(memo["entity_id"]))
        return None

    def intent() -> dict[str, Any]:
        refund = plan()
        if refund.total <= 0:
            raise FatalError("the refund has no positive amount", operation="refund_order")
        planned.append(refund)
        return {"total": str(refund.total), "sent": refund.sent()}

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
