"""Refund reconciliation between Adobe Commerce and Amazon, both directions.

Commerce → Amazon
    Credit memos (persisted cursor over ``GET /V1/creditmemos`` by ``updated_at``, with
    overlap) on imported Amazon orders become ``OrderAdjustment`` messages of a
    ``POST_PAYMENT_ADJUSTMENT_DATA`` feed. Per refunded item: the Amazon order item code,
    the account's adjustment reason and the components Principal (row total net of
    discount), Tax, Shipping and ShippingTax (the memo's shipping, attributed to the memo's
    items first, then to the order's other items, within what Amazon can still refund of
    each item's shipping), Goodwill (``adjustment_positive``); ``adjustment_negative`` is
    netted out of Principal. The components add up to the memo's grand total to the cent,
    or the memo is not sent. Each memo is one outbox entry ``refund:<creditmemo id>``;
    a memo that refunds more than Amazon can still refund for an item (what our accepted or
    pending adjustments and Amazon-side refunds already took), names an unknown item, or is
    in another currency than the Amazon order is recorded *rejected* with the reason (and
    quarantined), never sent. All pending adjustments of an account go in ONE feed per run
    (``feeds.submit_outbox``: createFeed allows 0.0083 requests/s); feeds submitted by
    earlier runs are settled first thing in each run, so no worker waits for Amazon.

Amazon → Commerce
    Refund events (Finances v0 ``RefundEventList``, persisted cursor by ``PostedDate`` with
    overlap, ``PostedBefore`` = now − 3 min) of imported orders are matched line by line
    against our own submitted/accepted adjustments (order id + order item id + amounts; the
    sandbox's extra ``MerchantAdjustmentItemId`` only breaks ties): ours are recognised and
    not mirrored back. The rest become one offline credit memo on the Commerce order per
    event (whole units where the amounts match whole units, the remainder as an adjustment,
    so the memo's total equals Amazon's refund), with an order comment naming the refund.

Exactly once: outbox entries are keyed by the credit memo id; a mirrored refund has an
intent (``mirror:<event key>``) recorded before ``POST /V1/order/{id}/refund``, and after an
ambiguous failure (or a crash) the order's credit memos are looked at before anything is
created again. Credit memos we created are recognised by that intent log and never sent to
Amazon; memos of Amazon-side cancellations (``cancel_in_commerce``) are not refunds.
No buyer data is read or logged here: only ids, SKUs and amounts.
"""

from __future__ import annotations

import collections
import dataclasses
import hashlib
import json
import logging
from collections.abc import Iterable, Mapping, Sequence
from datetime import UTC, datetime, timedelta
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation
from typing import Any

from amazon_commerce_sync import transform
from amazon_commerce_sync.errors import FatalError, RetriableError
from amazon_commerce_sync.feeds import PAYMENT_ADJUSTMENT, AdjustedItem, adjustment_message, settle_feed, submit_outbox
from amazon_commerce_sync.hooks.commerce import Filter
from amazon_commerce_sync.pipelines.context import Context
from amazon_commerce_sync.settings import AccountSettings
from amazon_commerce_sync.store import OrderSync, OutboxStatus, WriteStatus

log = logging.getLogger(__name__)

KIND = "refund"  # outbox kind of payment adjustments
MIRROR = "refund_mirror"  # intent log: a credit memo we create for an Amazon-side refund
EVENT = "refund_event"  # intent log: a Finances refund event handled (with its foreign lines)
OWN = "refund_own"  # intent log: one of our adjusted items seen coming back through Finances
CENT = Decimal("0.01")
ZERO = Decimal("0")
PUBLICATION_LAG = timedelta(minutes=3)  # Finances: PostedBefore must be >= 2 minutes before now
# Amazon says refund events of the last 48 hours may be missing when first asked; re-read
# this much every run (events are de-duplicated by their key, so re-reading costs requests only).
FINANCES_OVERLAP = timedelta(hours=6)
IN_FLIGHT = (OutboxStatus.PENDING, "submitting", OutboxStatus.SUBMITTED, OutboxStatus.ACCEPTED)
OWN_STATUSES = ("submitting", OutboxStatus.SUBMITTED, OutboxStatus.ACCEPTED)
WAITING_ORDERS = (OrderSync.WAITING, OrderSync.WAITING_PRODUCT, OrderSync.PENDING_PAYMENT)


class RefundProblem(ValueError):
    """A refund that cannot be sent or mirrored as it is; the message says why, for a person."""


Components = dict[str, Decimal]


# -- pure helpers -------------------------------------------------------------------------------
def dec(value: Any) -> Decimal:
    if value in (None, ""):
        return ZERO
    try:
        return Decimal(str(value))
    except InvalidOperation:
        raise RefundProblem(f"{value!r} is not an amount") from None


def cents(value: Decimal) -> Decimal:
    return value.quantize(CENT, rounding=ROUND_HALF_UP)


def parse_commerce_time(value: str | None) -> datetime | None:
    if not value:
        return None
    parsed = datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    return parsed.replace(tzinfo=UTC) if parsed.tzinfo is None else parsed.astimezone(UTC)


def amazon_paid_by_item(order_payload: Mapping[str, Any]) -> dict[str, Components]:
    """What the buyer paid per Amazon order item, as adjustment components (from the staged order)."""
    amounts = transform.order_amounts(order_payload)
    return {
        item.order_item_id: {
            "Principal": item.row_total - item.discount,
            "Tax": item.tax,
            "Shipping": item.shipping - item.shipping_discount,
            "ShippingTax": item.shipping_tax,
            "Other": item.other,
        }
        for item in amounts.items
    }


def _add(target: Components, kind: str, amount: Decimal) -> None:
    target[kind] = target.get(kind, ZERO) + amount


def refunded_by_item(outbox_entries: Iterable[Mapping[str, Any]], writes: Iterable[Mapping[str, Any]]) -> dict:
    """Per Amazon item and component, what is refunded or on its way: our adjustments that are
    not rejected, and the Amazon-side refunds seen in Finances (mirrored or not)."""
    out: dict[str, Components] = collections.defaultdict(dict)
    for entry in outbox_entries:
        if entry["status"] not in IN_FLIGHT:
            continue
        for item in (entry.get("payload") or {}).get("items") or []:
            for kind, amount in item["components"].items():
                _add(out[item["code"]], kind, Decimal(amount))
    for write in writes:
        if write["kind"] != EVENT:
            continue
        for code, components in ((write.get("detail") or {}).get("foreign") or {}).items():
            for kind, amount in components.items():
                _add(out[code], kind, Decimal(amount))
    return out


def _allocate(
    planned: dict[str, Components], kind: str, amount: Decimal, order: Sequence[str], capacity: Mapping[str, Decimal]
) -> None:
    left = amount
    for code in order:
        if left <= 0:
            break
        room = capacity.get(code, ZERO) - planned.get(code, {}).get(kind, ZERO)
        take = min(left, room)
        if take > 0:
            _add(planned.setdefault(code, {}), kind, take)
            left -= take
    if left > 0:
        raise RefundProblem(
            f"{kind} refund of {amount} is more than is left to refund on Amazon as {kind} on this order's items"
        )


def plan_adjustment(
    memo: Mapping[str, Any],
    *,
    currency: str,
    item_codes: Mapping[int, str],
    paid: Mapping[str, Components],
    refunded: Mapping[str, Components],
    reason: str,
) -> list[AdjustedItem]:
    """The adjusted items of one credit memo; ``RefundProblem`` when it cannot be sent as it is.

    ``item_codes`` maps Commerce order item id → Amazon order item id; ``paid`` and
    ``refunded`` are per Amazon item and component.
    """
    memo_id = memo.get("entity_id")
    memo_currency = memo.get("order_currency_code")
    if memo_currency and memo_currency != currency:
        raise RefundProblem(f"credit memo {memo_id} is in {memo_currency} but the Amazon order is in {currency}")
    planned: dict[str, Components] = {}
    quantities: dict[str, Decimal] = collections.defaultdict(Decimal)
    item_tax = ZERO
    for line in memo.get("items") or []:
        qty, row, tax, disc = (dec(line.get(k)) for k in ("qty", "row_total", "tax_amount", "discount_amount"))
        if not qty and not row and not tax:
            continue  # Magento lists every order item, refunded or not
        commerce_item = int(line.get("order_item_id") or 0)
        code = item_codes.get(commerce_item)
        if code is None or code not in paid:
            raise RefundProblem(
                f"credit memo {memo_id} refunds Commerce order item {commerce_item} (SKU {line.get('sku')}), "
                "which is not an item of the Amazon order"
            )
        components = planned.setdefault(code, {})
        _add(components, "Principal", row - disc)
        _add(components, "Tax", tax)
        item_tax += tax
        quantities[code] += qty
    shipping = dec(memo.get("shipping_amount"))
    if memo.get("shipping_tax_amount") is not None:
        shipping_tax = dec(memo.get("shipping_tax_amount"))
    else:
        shipping_tax = dec(memo.get("tax_amount")) - item_tax
    order = list(planned) + sorted(code for code in paid if code not in planned)
    for kind, amount in (("Shipping", shipping), ("ShippingTax", shipping_tax)):
        if amount < 0:
            raise RefundProblem(f"credit memo {memo_id} has a negative {kind} amount {amount}")
        if amount > 0:
            capacity = {c: paid[c].get(kind, ZERO) - refunded.get(c, {}).get(kind, ZERO) for c in order}
            _allocate(planned, kind, amount, order, capacity)
    positive, negative = dec(memo.get("adjustment_positive")), dec(memo.get("adjustment_negative"))
    if positive > 0:
        # An extra amount refunded (adjustment refund): Goodwill, on the memo's items first, within what is left.
        left_total = {
            c: sum(paid[c].values(), ZERO) - sum(refunded.get(c, {}).values(), ZERO)
            - sum(planned.get(c, {}).values(), ZERO)
            for c in order
        }  # fmt: skip
        _allocate(planned, "Goodwill", positive, order, left_total)
    if negative > 0:
        # A fee kept back from the refund: Amazon takes only positive amounts, so it is netted out of Principal.
        left = negative
        for code in order:
            principal = planned.get(code, {}).get("Principal", ZERO)
            take = min(left, principal)
            if take > 0:
                planned[code]["Principal"] = principal - take
                left -= take
        if left > 0:
            raise RefundProblem(f"credit memo {memo_id}: adjustment fee {negative} is larger than the refunded items")
    planned = {c: {k: cents(v) for k, v in comps.items() if v != 0} for c, comps in planned.items()}
    planned = {c: comps for c, comps in planned.items() if comps}
    if not planned:
        raise RefundProblem(f"credit memo {memo_id} refunds nothing that Amazon can refund")
    for code, comps in planned.items():
        if any(v < 0 for v in comps.values()):
            raise RefundProblem(f"credit memo {memo_id}: negative amounts for Amazon item {code}: {comps}")
    total = sum((v for comps in planned.values() for v in comps.values()), ZERO)
    grand = dec(memo.get("grand_total"))
    if total != grand:
        raise RefundProblem(f"credit memo {memo_id}: components add up to {total}, not the memo's total {grand}")
    for code, comps in planned.items():
        asked = sum(comps.values(), ZERO)
        left = sum(paid[code].values(), ZERO) - sum(refunded.get(code, {}).values(), ZERO)
        if asked > left:
            raise RefundProblem(
                f"credit memo {memo_id} refunds {asked} {currency} for Amazon order item {code}, "
                f"but only {left} {currency} is left to refund on Amazon"
            )
    return [
        AdjustedItem(
            amazon_order_item_code=code,
            merchant_adjustment_item_id=f"cm{memo_id}-{index}",
            reason=reason,
            components=comps,
            currency=currency,
            quantity=int(quantities[code]) if quantities.get(code) and quantities[code] % 1 == 0 else None,
        )
        for index, (code, comps) in enumerate(planned.items(), start=1)
    ]


def adjustment_payload(amazon_order_id: str, memo: Mapping[str, Any], items: Sequence[AdjustedItem]) -> dict:
    return {
        "amazon_order_id": amazon_order_id,
        "creditmemo_id": int(memo["entity_id"]),
        "commerce_order_id": int(memo["order_id"]),
        "total": str(sum((v for i in items for v in i.components.values()), ZERO)),
        "items": [
            {"code": i.amazon_order_item_code, "madj": i.merchant_adjustment_item_id, "reason": i.reason,
             "currency": i.currency, "quantity": i.quantity,
             "components": {k: str(v) for k, v in i.components.items()}}
            for i in items
        ],
    }  # fmt: skip


def build_adjustment_message(message_id: int, payload: Mapping[str, Any]):
    items = [
        AdjustedItem(
            amazon_order_item_code=i["code"],
            merchant_adjustment_item_id=i["madj"],
            reason=i["reason"],
            components={k: Decimal(v) for k, v in i["components"].items()},
            currency=i["currency"],
            quantity=i.get("quantity"),
        )
        for i in payload["items"]
    ]
    return adjustment_message(message_id, payload["amazon_order_id"], items)


@dataclasses.dataclass(frozen=True)
class RefundLine:
    """One ``ShipmentItemAdjustmentList`` entry of a Finances refund event, amounts positive."""

    code: str
    charges: Components
    currency: str
    merchant_adjustment_item_id: str | None = None

    @property
    def total(self) -> Decimal:
        return sum(self.charges.values(), ZERO)


def refund_lines(event: Mapping[str, Any]) -> list[RefundLine]:
    lines = []
    for entry in event.get("ShipmentItemAdjustmentList") or []:
        charges: Components = {}
        currencies = set()
        for charge in entry.get("ItemChargeAdjustmentList") or []:
            amount = charge.get("ChargeAmount") or {}
            currencies.add(amount.get("CurrencyCode"))
            value = -dec(amount.get("CurrencyAmount"))
            if value:
                _add(charges, str(charge.get("ChargeType") or "Other"), value)
        if len(currencies) > 1:
            raise RefundProblem(f"refund line of item {entry.get('OrderAdjustmentItemId')} mixes {currencies}")
        lines.append(
            RefundLine(
                code=str(entry.get("OrderAdjustmentItemId") or ""),
                charges=charges,
                currency=next(iter(currencies), None) or "",
                merchant_adjustment_item_id=entry.get("MerchantAdjustmentItemId"),
            )
        )
    return lines


def event_key(event: Mapping[str, Any]) -> str:
    """A refund event's natural key: order id + posted date + a digest of its items and amounts."""
    body = sorted(
        (str(e.get("OrderAdjustmentItemId")),
         sorted((str(c.get("ChargeType")), str(dec((c.get("ChargeAmount") or {}).get("CurrencyAmount"))))
                for c in e.get("ItemChargeAdjustmentList") or []))
        for e in event.get("ShipmentItemAdjustmentList") or []
    )  # fmt: skip
    digest = hashlib.sha256(json.dumps(body).encode()).hexdigest()[:16]
    return f"amzrefund:{event.get('AmazonOrderId')}:{event.get('PostedDate')}:{digest}"


def _same(a: Mapping[str, Any], b: Mapping[str, Decimal]) -> bool:
    left = {k: Decimal(v) for k, v in a.items() if Decimal(v) != 0}
    right = {k: v for k, v in b.items() if v != 0}
    return left == right


def match_own(
    lines: Sequence[RefundLine], candidates: Sequence[Mapping[str, Any]]
) -> tuple[list[tuple[RefundLine, str]], list[RefundLine]]:
    """Split an event's lines into ours (with the matched MerchantAdjustmentItemID) and foreign ones.

    ``candidates``: our adjusted items not yet matched to another event (``code``, ``madj``,
    ``components``). A line is ours when order item and amounts are equal; the sandbox's echo of
    MerchantAdjustmentItemId only chooses among equal candidates (real Amazon has no such field).
    """
    free = list(candidates)
    own, foreign = [], []
    for line in lines:
        matches = [c for c in free if c["code"] == line.code and _same(c["components"], line.charges)]
        if not matches:
            foreign.append(line)
            continue
        chosen = next((c for c in matches if c["madj"] == line.merchant_adjustment_item_id), matches[0])
        free.remove(chosen)
        own.append((line, chosen["madj"]))
    return own, foreign


def _portion(total: Decimal, done: Decimal, qty: Decimal, qty_total: Decimal, qty_done: Decimal) -> Decimal:
    # Magento's share of an item amount for ``qty`` units; the document that completes it takes the rest.
    if qty_total <= 0:
        return ZERO
    if qty_done + qty >= qty_total:
        return total - done
    return cents(total * qty / qty_total)


def plan_mirror(order: Mapping[str, Any], lines: Sequence[RefundLine], item_ids: Mapping[str, int]) -> dict[str, Any]:
    """Arguments of ``refund_order`` so that the Commerce credit memo totals Amazon's refund exactly.

    Whole units are refunded where an item's Principal is a whole number of units; shipping
    goes to ``shipping_amount`` (within what Commerce can still refund); any remainder is an
    adjustment (positive or negative), so the memo's grand total is the refund's.
    """
    by_id = {int(i["item_id"]): i for i in order.get("items") or []}
    total = sum((line.total for line in lines), ZERO)
    items: list[dict[str, Any]] = []
    predicted = ZERO
    shipping = ZERO
    for line in lines:
        shipping += line.charges.get("Shipping", ZERO)
        commerce_id = item_ids.get(line.code)
        item = by_id.get(commerce_id) if commerce_id is not None else None
        principal = line.charges.get("Principal", ZERO)
        if item is None or principal <= 0:
            continue
        ordered = dec(item.get("qty_ordered"))
        invoiced, done = dec(item.get("qty_invoiced")), dec(item.get("qty_refunded"))
        unit = (dec(item.get("row_total")) - dec(item.get("discount_amount"))) / ordered if ordered else ZERO
        if unit <= 0:
            continue
        units = (principal / unit).to_integral_value(rounding=ROUND_HALF_UP)
        if not (1 <= units <= invoiced - done) or abs(units * unit - principal) > CENT * units:
            continue
        row = _portion(dec(item.get("row_invoiced")), dec(item.get("amount_refunded")), units, invoiced, done)
        tax = _portion(dec(item.get("tax_invoiced")), dec(item.get("tax_refunded")), units, invoiced, done)
        disc = _portion(dec(item.get("discount_invoiced")), dec(item.get("discount_refunded")), units, invoiced, done)
        predicted += row + tax - disc
        items.append({"order_item_id": int(commerce_id), "qty": int(units)})
    shipping_left = dec(order.get("shipping_invoiced")) - dec(order.get("shipping_refunded"))
    shipping = max(min(shipping, shipping_left), ZERO)
    full_shipping = dec(order.get("shipping_amount"))
    shipping_tax = cents(dec(order.get("shipping_tax_amount")) * shipping / full_shipping) if full_shipping else ZERO
    predicted += shipping + shipping_tax
    residual = total - predicted
    if not items and by_id:
        # An empty item list means "refund everything" to Magento: name one item with quantity 0.
        items = [{"order_item_id": min(by_id), "qty": 0}]
    return {
        "items": items,
        "shipping_amount": shipping,
        "adjustment_positive": residual if residual > 0 else ZERO,
        "adjustment_negative": -residual if residual < 0 else ZERO,
        "total": total,
    }


# -- the pipeline -------------------------------------------------------------------------------
def memo_stream(account: AccountSettings) -> str:
    return f"refunds:commerce:{account.account_id}"


def finances_stream(account: AccountSettings) -> str:
    return f"refunds:amazon:{account.account_id}"


class RefundSync:
    """One account's refund reconciliation; each public method is one task's transaction."""

    def __init__(self, ctx: Context, account: AccountSettings) -> None:
        self.ctx = ctx
        self.account = account
        self.store = ctx.store
        self.counts: collections.Counter[str] = collections.Counter()

    @property
    def amazon(self):
        return self.ctx.amazon(self.account)

    @property
    def commerce(self):
        return self.ctx.commerce(self.account)

    def summary(self) -> dict[str, Any]:
        return {"account": self.account.account_id, **dict(sorted(self.counts.items()))}

    # -- feeds ---------------------------------------------------------------------------------
    def settle_open_feeds(self) -> dict[str, Any]:
        """Settle feeds submitted by earlier runs whose processing finished; never waits."""
        self.counts.update(accepted=0, rejected=0, feeds_open=0)
        for feed in self.store.outbox.open_feeds(PAYMENT_ADJUSTMENT, account_id=self.account.account_id):
            result = settle_feed(self.store, self.amazon, feed["feed_id"])
            if result.get("status") not in ("DONE", "CANCELLED", "FATAL"):
                self.counts["feeds_open"] += 1
                continue
            self.counts["accepted"] += result.get("accepted", 0)
            self.counts["rejected"] += result.get("rejected", 0)
            for entry in self.store.outbox.entries(kind=KIND, feed_id=feed["feed_id"]):
                payload = entry["payload"]
                event = None
                if entry["status"] == OutboxStatus.REJECTED:  # because Amazon refunded the same items itself?
                    event = self._seen_in_amazon_refund(entry) or self._unmirrored_amazon_refund(entry)
                if event:
                    self._settled_by_amazon(entry, event)
                    continue
                if entry["status"] == OutboxStatus.REJECTED:
                    self.store.ops.quarantine(
                        "creditmemo", str(payload.get("creditmemo_id")),
                        f"Amazon rejected the refund: {entry.get('amazon_message')}",
                        {"amazon_order_id": entry["amazon_order_id"], "feed_id": feed["feed_id"]},
                    )  # fmt: skip
                self.store.ops.audit(
                    f"refund_{entry['status']}", "creditmemo", str(payload.get("creditmemo_id")),
                    {"amazon_order_id": entry["amazon_order_id"], "feed_id": feed["feed_id"],
                     "total": payload["total"]},
                )  # fmt: skip
            log.info("%s: feed %s %s", self.account.account_id, feed["feed_id"], result)
        return self.summary()

    def submit(self) -> dict[str, Any]:
        """All pending adjustments of the account in one feed, then one look at it (no waiting)."""
        pending = self.store.outbox.entries(
            kind=KIND, statuses=[OutboxStatus.PENDING], account_id=self.account.account_id
        )
        feed_id = submit_outbox(
            self.store, self.amazon, account_id=self.account.account_id, kind=KIND, feed_type=PAYMENT_ADJUSTMENT,
            message_type="OrderAdjustment", merchant_id=self.account.merchant_identifier,
            marketplace_ids=self.account.marketplace_ids, build_message=build_adjustment_message,
        )  # fmt: skip
        self.counts["sent"] = len(self.store.outbox.entries(feed_id=feed_id)) if feed_id else 0
        if feed_id and not pending:
            self.counts["recovered_feed"] += 1
        self.counts["feed"] = 1 if feed_id else 0
        self.settle_open_feeds()
        return self.summary()

    # -- Commerce → Amazon ---------------------------------------------------------------------
    def queue_creditmemos(self, now: datetime) -> dict[str, Any]:
        """New credit memos since the cursor become outbox entries (or rejections with a reason)."""
        self.counts.update(queued=0, rejected=0, skipped=0, held=0)
        stream = memo_stream(self.account)
        cursor = self.store.ops.get_cursor(stream) or self.account.import_orders_after
        since = cursor - timedelta(minutes=self.account.overlap_minutes)
        newest: datetime | None = None
        held: datetime | None = None
        for memo in self.commerce.iter_creditmemos(since, page_size=self.account.page_size):
            updated = parse_commerce_time(memo.get("updated_at")) or now
            outcome = self._queue_memo(memo)
            self.counts[outcome] += 1
            if outcome == "held":
                held = updated if held is None else min(held, updated)
            newest = updated if newest is None else max(newest, updated)
        if newest is not None:
            self.store.ops.set_cursor(stream, min(newest, held) if held else newest)
        return self.summary()

    def _queue_memo(self, memo: Mapping[str, Any]) -> str:
        memo_id = int(memo["entity_id"])
        key = f"refund:{memo_id}"
        if self.store.outbox.get(key):
            return "known"
        row = self.store.orders.by_commerce_id(int(memo.get("order_id") or 0))
        if row is None or row["account_id"] != self.account.account_id:
            return "skipped"  # not an Amazon order (of this account)
        order_id = row["amazon_order_id"]
        if self.store.writes.by_entity(MIRROR, memo_id):
            return "mirror_of_amazon_refund"
        writes = self.store.writes.for_order(order_id)
        if any(w["kind"] == MIRROR and w["status"] == WriteStatus.INTENT for w in writes):
            return "held"  # a mirrored refund's outcome is unknown: this memo might be it
        if any(w["natural_key"] == f"cancel:{order_id}" for w in writes):
            return "cancellation"  # the Amazon order was cancelled: the memo is not a refund
        entries = self.store.outbox.for_order(order_id, KIND)
        item_codes = {
            int(i["commerce_order_item_id"]): i["amazon_order_item_id"]
            for i in self.store.orders.items(order_id)
            if i["commerce_order_item_id"] is not None
        }
        paid = amazon_paid_by_item(row["payload"])

        def plan(counted_writes: list[Mapping[str, Any]]) -> list[AdjustedItem]:
            return plan_adjustment(
                memo, currency=row["currency"] or "", item_codes=item_codes, paid=paid,
                refunded=refunded_by_item(entries, counted_writes), reason=self.account.refund_reason,
            )  # fmt: skip

        try:
            items = plan(writes)
        except (RefundProblem, transform.MalformedOrder) as exc:
            # Over-refunded because Amazon refunded the same items itself and this memo took its mirror's place?
            unmirrored = [w for w in writes if w["kind"] == EVENT and w["status"] == WriteStatus.FAILED]
            try:
                alone = plan([w for w in writes if w not in unmirrored]) if unmirrored else None
            except (RefundProblem, transform.MalformedOrder):
                alone = None
            if alone:
                payload = adjustment_payload(order_id, memo, alone)
                event = self._unmirrored_amazon_refund({"amazon_order_id": order_id, "payload": payload})
                if event and self.store.outbox.add(key, KIND, self.account.account_id, order_id, payload):
                    self._settled_by_amazon(self.store.outbox.get(key), event)
                    return "settled_by_amazon"
            reason = str(exc)
            payload = {"amazon_order_id": order_id, "creditmemo_id": memo_id,
                       "commerce_order_id": row["commerce_order_id"], "total": str(dec(memo.get("grand_total"))),
                       "items": [], "problem": reason}  # fmt: skip
            self.store.outbox.add(
                key, KIND, self.account.account_id, order_id, payload, OutboxStatus.REJECTED,
                f"not sent: {reason}"[:2000],
            )  # fmt: skip
            self.store.ops.quarantine("creditmemo", str(memo_id), reason, {"amazon_order_id": order_id})
            self.store.ops.audit(
                "refund_not_sent", "creditmemo", str(memo_id), {"amazon_order_id": order_id, "reason": reason}
            )
            log.warning("%s: credit memo %s not sent to Amazon: %s", self.account.account_id, memo_id, reason)
            return "rejected"
        payload = adjustment_payload(order_id, memo, items)
        if self.store.outbox.add(key, KIND, self.account.account_id, order_id, payload):
            self.store.ops.audit(
                "refund_queued", "creditmemo", str(memo_id), {"amazon_order_id": order_id, "total": payload["total"]}
            )
        return "queued"

    # -- Amazon → Commerce ---------------------------------------------------------------------
    def mirror_amazon_refunds(self, now: datetime) -> dict[str, Any]:
        """Refund events posted on Amazon's side become offline credit memos in Commerce, once."""
        self.counts.update(mirrored=0, recognised_own=0, skipped=0, held=0, rejected=0)
        stream = finances_stream(self.account)
        cursor = self.store.ops.get_cursor(stream) or self.account.import_orders_after
        after = max(cursor - FINANCES_OVERLAP, self.account.import_orders_after - timedelta(days=1))
        limit = now - PUBLICATION_LAG
        held: datetime | None = None
        while after < limit:  # windows of at most max_window_days, oldest first
            before = min(limit, after + timedelta(days=self.account.max_window_days))
            for page in self.amazon.list_financial_events(posted_after=after, posted_before=before):
                for event in page.get("RefundEventList") or []:
                    outcome = self._handle_event(event)
                    self.counts[outcome] += 1
                    if outcome == "held":
                        posted = transform.parse_time(event["PostedDate"])
                        held = posted if held is None else min(held, posted)
            if held is None:
                self.store.ops.set_cursor(stream, before)
            after = before
        if held is not None:
            self.store.ops.set_cursor(stream, held)  # never moves back: the held event is read again next run
        return self.summary()

    def _handle_event(self, event: Mapping[str, Any]) -> str:
        order_id = str(event.get("AmazonOrderId") or "")
        row = self.store.orders.get(order_id)
        if row is None or row["account_id"] != self.account.account_id:
            return "skipped"  # an order the import never staged (e.g. placed before the start date)
        if not row["commerce_order_id"]:
            return "held" if row["sync_status"] in WAITING_ORDERS else "skipped"
        key = event_key(event)
        seen = self.store.writes.get(key)
        if seen and seen["status"] in (WriteStatus.DONE, WriteStatus.FAILED):
            return "known"  # handled (FAILED: reported in the quarantine, for a person)
        try:
            lines = refund_lines(event)
        except RefundProblem as exc:
            return self._reject_event(key, order_id, str(exc))
        own_writes = [w for w in self.store.writes.for_order(order_id) if w["kind"] == OWN]
        taken = {w["natural_key"].split(":", 1)[1] for w in own_writes if (w.get("detail") or {}).get("event") != key}
        candidates = [
            item
            for entry in self.store.outbox.for_order(order_id, KIND)
            if entry["status"] in OWN_STATUSES
            for item in entry["payload"].get("items") or []
            if item["madj"] not in taken
        ]
        own, foreign = match_own(lines, candidates)
        if foreign:
            adopted, foreign = self._adopt_rejected(order_id, key, foreign, taken)
            own += adopted
        self._recognise_own(order_id, key, [madj for _line, madj in own])
        if not foreign:
            self.store.writes.record_intent(key, EVENT, order_id, {"own": [m for _, m in own]})
            self.store.writes.complete(key, None, detail={"own": [m for _, m in own], "foreign": {}})
            return "recognised_own"
        foreign_amounts: dict[str, dict[str, str]] = {}
        for line in foreign:
            for kind, amount in line.charges.items():
                current = Decimal(foreign_amounts.setdefault(line.code, {}).get(kind, "0"))
                foreign_amounts[line.code][kind] = str(current + amount)
        detail = {"own": [m for _, m in own], "foreign": foreign_amounts}
        self.store.writes.record_intent(key, EVENT, order_id, detail)
        currency = row["currency"] or ""
        wrong = sorted({line.currency for line in foreign if line.currency and line.currency != currency})
        if wrong:
            return self._reject_event(key, order_id, f"refund in {', '.join(wrong)} but the order is in {currency}")
        try:
            memo_id = self._mirror_once(key, row, foreign, event)
        except FatalError as exc:
            return self._reject_event(key, order_id, f"Commerce refused the credit memo: {exc}")
        self.store.writes.complete(key, memo_id, detail=detail)
        self.store.ops.audit(
            "amazon_refund_mirrored", "amazon_order", order_id,
            {"creditmemo_id": memo_id, "event": key, "total": str(sum((ln.total for ln in foreign), ZERO))},
        )  # fmt: skip
        return "mirrored"

    def _adopt_rejected(
        self, order_id: str, key: str, foreign: list[RefundLine], taken: set[str]
    ) -> tuple[list[tuple[RefundLine, str]], list[RefundLine]]:
        """A credit memo Amazon refused because Amazon refunded the same items itself (the merchant and Amazon
        refunded at the same time, e.g. on a return): when every item of the refused adjustment matches this
        Amazon refund exactly, the memo already stands for it in Commerce. The adjustment counts as settled by
        Amazon's refund (no second credit memo, the memo leaves the quarantine) instead of a conflict."""
        adopted: list[tuple[RefundLine, str]] = []
        for entry in self.store.outbox.for_order(order_id, KIND):
            items = [i for i in entry["payload"].get("items") or [] if i["madj"] not in taken]
            if entry["status"] != OutboxStatus.REJECTED or not items:
                continue
            matched, rest = match_own(foreign, items)
            if len(matched) != len(items):
                continue
            foreign = rest
            adopted += matched
            self._settled_by_amazon(entry, key)
        return adopted, foreign

    def _settled_by_amazon(self, entry: Mapping[str, Any], key: str) -> None:
        memo_id = entry["natural_key"].split(":", 1)[1]
        refused = f" Amazon had refused the adjustment: {entry['amazon_message']}" if entry["amazon_message"] else ""
        message = f"Amazon refunded this itself ({key}); credit memo {memo_id} stands for that refund.{refused}"
        self.store.outbox.transition(entry["id"], OutboxStatus.ACCEPTED, expect=entry["status"], amazon_message=message)
        self.store.ops.resolve_quarantine("creditmemo", memo_id)
        self.store.ops.audit("refund_settled_by_amazon", "amazon_order", entry["amazon_order_id"],
                         {"creditmemo_id": memo_id, "event": key})  # fmt: skip
        self.counts["settled_by_amazon"] += 1
        log.info("%s: credit memo %s of order %s was refunded by Amazon itself (%s)",
                 self.account.account_id, memo_id, entry["amazon_order_id"], key)  # fmt: skip

    def _unmirrored_amazon_refund(self, entry: Mapping[str, Any]) -> str | None:
        """An Amazon refund on the order that could not be mirrored (Commerce had nothing left to refund: this
        memo had taken it) and whose lines are exactly this adjustment's items: it becomes ours, and leaves the
        quarantine. Returns its event key."""
        items = entry["payload"].get("items") or []
        wanted = {i["code"]: {k: Decimal(v) for k, v in i["components"].items() if Decimal(v) != 0} for i in items}
        for write in self.store.writes.for_order(entry["amazon_order_id"]):
            detail = write.get("detail") or {}
            if write["kind"] != EVENT or write["status"] != WriteStatus.FAILED or detail.get("own"):
                continue
            foreign = detail.get("foreign") or {}
            if set(foreign) != set(wanted) or len(wanted) != len(items):
                continue
            if all(_same(foreign[code], charges) for code, charges in wanted.items()):
                key = write["natural_key"]
                madjs = [i["madj"] for i in items]
                self._recognise_own(entry["amazon_order_id"], key, madjs)
                self.store.writes.complete(key, None, detail={"own": madjs, "foreign": {}})
                self.store.ops.resolve_quarantine("amazon_refund", key[-64:])
                return key
        return None

    def _recognise_own(self, order_id: str, key: str, madjs: Iterable[str]) -> None:
        """Our adjusted items seen coming back in Amazon's refund event ``key`` (never matched to another)."""
        for madj in madjs:
            self.store.writes.record_intent(f"{OWN}:{madj}", OWN, order_id, {"event": key})
            self.store.writes.complete(f"{OWN}:{madj}", None, detail={"event": key})

    def _seen_in_amazon_refund(self, entry: Mapping[str, Any]) -> str | None:
        """The Amazon refund event every item of this adjustment was recognised in (while it was in flight)."""
        events = set()
        for item in entry["payload"].get("items") or []:
            write = self.store.writes.get(f"{OWN}:{item['madj']}")
            if not write or write["status"] != WriteStatus.DONE:
                return None
            events.add((write.get("detail") or {}).get("event"))
        return next(iter(events)) if len(events) == 1 and None not in events else None

    def _reject_event(self, key: str, order_id: str, reason: str) -> str:
        self.store.ops.quarantine("amazon_refund", key[-64:], reason, {"amazon_order_id": order_id, "event": key})
        self.store.ops.audit("amazon_refund_not_mirrored", "amazon_order", order_id, {"event": key, "reason": reason})
        write = self.store.writes.get(key)
        detail = (write or {}).get("detail") or {}
        self.store.writes.record_intent(key, EVENT, order_id, detail)
        self.store.writes.complete(key, None, status=WriteStatus.FAILED, detail={**detail, "problem": reason})
        log.warning("%s: Amazon refund on order %s not mirrored: %s", self.account.account_id, order_id, reason)
        return "rejected"

    def _mirror_once(self, key: str, row: Mapping[str, Any], lines: Sequence[RefundLine], event) -> int:
        order_id = row["amazon_order_id"]
        commerce_id = int(row["commerce_order_id"])
        mirror_key = f"mirror:{key}"
        write = self.store.writes.get(mirror_key)
        if write and write["status"] == WriteStatus.DONE:
            memo_id = int(write["commerce_entity_id"])
        else:
            memo_id = self._find_mirror_memo(commerce_id, write) if write else None
            if memo_id is None:
                order = self.commerce.get_order(commerce_id)
                item_ids = {
                    i["amazon_order_item_id"]: int(i["commerce_order_item_id"])
                    for i in self.store.orders.items(order_id)
                    if i["commerce_order_item_id"] is not None
                }
                plan = plan_mirror(order, lines, item_ids)
                if plan["total"] <= 0:
                    raise FatalError("the refund has no positive amount", operation="refund_order")
                self.store.writes.record_intent(mirror_key, MIRROR, order_id, {"total": str(plan["total"])})
                try:
                    memo_id = self.commerce.refund_order(
                        commerce_id, plan["items"], shipping_amount=plan["shipping_amount"],
                        adjustment_positive=plan["adjustment_positive"],
                        adjustment_negative=plan["adjustment_negative"],
                    )  # fmt: skip
                except FatalError:
                    self.store.writes.forget(mirror_key)
                    raise
                except RetriableError:
                    # Ambiguous: Commerce may have committed before the answer was lost.
                    memo_id = self._find_mirror_memo(commerce_id, self.store.writes.get(mirror_key))
                    if memo_id is None:
                        raise
                    self.counts["recovered_after_lost_answer"] += 1
            self.store.writes.complete(mirror_key, memo_id)
        total = sum((line.total for line in lines), ZERO)
        items = ", ".join(sorted({line.code for line in lines}))
        self._comment_once(
            f"{mirror_key}:comment", order_id, commerce_id,
            f"Amazon refund of {total} {lines[0].currency or row['currency']} posted {event.get('PostedDate')} "
            f"(Amazon order {order_id}, items {items}) recorded as offline credit memo {memo_id}. [{key}]",
        )  # fmt: skip
        return memo_id

    def _find_mirror_memo(self, commerce_id: int, write: Mapping[str, Any] | None) -> int | None:
        """A credit memo an interrupted attempt created: same total, not claimed by anything else."""
        if not write or not (write.get("detail") or {}).get("total"):
            return None
        total = Decimal(write["detail"]["total"])
        started = write["created_at"]
        started = started.replace(tzinfo=UTC) if started.tzinfo is None else started
        for page in self.commerce.search("creditmemos", [[Filter("order_id", commerce_id)]]):
            for memo in page:
                created = parse_commerce_time(memo.get("created_at"))
                if dec(memo.get("grand_total")) != total or (created and created < started - timedelta(minutes=5)):
                    continue
                memo_id = int(memo["entity_id"])
                claimed = self.store.writes.by_entity(MIRROR, memo_id) or self.store.outbox.get(f"refund:{memo_id}")
                if not claimed:
                    return memo_id
        return None

    def _comment_once(self, key: str, order_id: str, commerce_id: int, comment: str) -> None:
        write = self.store.writes.get(key)
        if write and write["status"] == WriteStatus.DONE:
            return
        if write and any(comment == c.get("comment") for c in self.commerce.get_order_comments(commerce_id)):
            self.store.writes.complete(key, commerce_id)
            return
        self.store.writes.record_intent(key, "comment", order_id)
        try:
            self.commerce.add_order_comment(commerce_id, comment)
        except RetriableError:
            if not any(comment == c.get("comment") for c in self.commerce.get_order_comments(commerce_id)):
                raise
        self.store.writes.complete(key, commerce_id)


# -- task entry points ---------------------------------------------------------------------------
def settle_feeds(ctx: Context, account: AccountSettings) -> dict[str, Any]:
    return RefundSync(ctx, account).settle_open_feeds()


def mirror_amazon_refunds(ctx: Context, account: AccountSettings, *, now: datetime) -> dict[str, Any]:
    return RefundSync(ctx, account).mirror_amazon_refunds(now)


def queue_creditmemos(ctx: Context, account: AccountSettings, *, now: datetime) -> dict[str, Any]:
    return RefundSync(ctx, account).queue_creditmemos(now)


def submit_adjustments(ctx: Context, account: AccountSettings) -> dict[str, Any]:
    return RefundSync(ctx, account).submit()


def combine(summaries: Iterable[Mapping[str, Any] | None]) -> dict[str, Any]:
    """The run's summary over every task and account: sent, accepted, rejected, mirrored, skipped..."""
    total: collections.Counter[str] = collections.Counter()
    for summary in summaries:
        for key, value in (summary or {}).items():
            if isinstance(value, int) and not isinstance(value, bool):
                total[key] += value
    base = {k: 0 for k in ("sent", "accepted", "rejected", "mirrored", "skipped")}
    return {**base, **dict(sorted(total.items()))}


__all__ = [
    "RefundProblem",
    "RefundSync",
    "combine",
    "mirror_amazon_refunds",
    "plan_adjustment",
    "plan_mirror",
    "queue_creditmemos",
    "settle_feeds",
    "submit_adjustments",
]
