"""Refunds of charges a Commerce order books differently from Amazon, end to end with dag.test() against both
sandboxes: tax Amazon collects as marketplace facilitator (``marketplace_facilitator_tax: exclude`` leaves it off
the Commerce order) and a paid gift wrap (part of the Commerce order's shipping & handling, its own GiftWrap and
GiftWrapTax components on Amazon, each capped by the Amazon sandbox as Amazon does).
"""

from __future__ import annotations

from decimal import Decimal

import pytest

from tests.e2e.test_import_fidelity_business import US, amazon_tax, taxed_us_order
from tests.e2e.test_refund_sync import (
    DAG,
    age_amazon_refunds,
    all_memos,
    assert_success,
    commerce_order,
    components,
    credit_memo,
    feed_refunds,
    hook,
    memo,
    outbox,
    run_and_settle,
    summary_of,
)
from tests.store_queries import open_mismatches, open_quarantine

pytestmark = pytest.mark.e2e

TAX_OF = {"ITEM": "Tax", "SHIPPING": "ShippingTax", "GIFT_WRAP": "GiftWrapTax"}
CHARGE_OF = {"ITEM": "Principal", "SHIPPING": "Shipping", "GIFT_WRAP": "GiftWrap"}


def D(value) -> Decimal:  # noqa: N802 - the Commerce sandbox answers JSON numbers
    return Decimal(str(value))


def imported_taxed_order(channel, facilitator_tax: str) -> dict:
    """A US order with sales tax Amazon collects as marketplace facilitator and a paid, taxed gift wrap on its first
    item; imported (and invoiced), then shipped on Amazon (Amazon refunds only shipped orders)."""
    channel.configure(marketplace_ids=[US], marketplace_facilitator_tax=facilitator_tax)
    order = taxed_us_order(channel, seed=61)
    channel.load_amazon_orders([order])
    assert_success(channel.run_dag("amazon_order_import"))
    channel.amazon_event(order["orderId"], {"type": "ship"})
    return order


def amazon_charges(order) -> dict[str, dict[str, Decimal]]:
    """What the buyer paid per item and adjustment component, read from Amazon's breakdowns."""
    out: dict[str, dict[str, Decimal]] = {}
    for item in order["orderItems"]:
        parts = out.setdefault(item["orderItemId"], {})
        for b in item["proceeds"]["breakdowns"]:
            if b["type"] == "TAX":
                for d in b["detailedBreakdowns"]:
                    kind = TAX_OF[d["subtype"]]
                    parts[kind] = parts.get(kind, D(0)) + D(d["value"]["amount"])
            elif b["type"] == "DISCOUNT":  # what the buyer paid: the charge net of its discount
                for d in b.get("detailedBreakdowns") or [{"subtype": "ITEM", "value": b["subtotal"]}]:
                    kind = CHARGE_OF[d["subtype"]]
                    parts[kind] = parts.get(kind, D(0)) - abs(D(d["value"]["amount"]))
            elif b["type"] in CHARGE_OF:
                parts[CHARGE_OF[b["type"]]] = parts.get(CHARGE_OF[b["type"]], D(0)) + D(b["subtotal"]["amount"])
    return {code: {k: v for k, v in parts.items() if v} for code, parts in out.items()}


def order_comments(channel, commerce) -> list[str]:
    return [c["comment"] for c in hook().get_order_comments(int(commerce["entity_id"]))]


def test_exclude_amazon_refund_mirrored_without_the_tax_and_checked_like_with_like(channel):
    order = imported_taxed_order(channel, "exclude")
    oid, tax = order["orderId"], amazon_tax(order)
    commerce = commerce_order(channel, oid)
    assert (
        D(commerce["tax_amount"]) == 0
        and D(commerce["total_paid"]) == D(order["proceeds"]["grandTotal"]["amount"]) - tax
    )
    first = order["orderItems"][0]["orderItemId"]
    # Amazon refunds part of the first item's tax alone (e.g. a tax-exempt buyer), then everything that is left
    channel.amazon_event(
        oid, {"type": "refund", "items": [{"orderItemId": first, "components": [{"type": "Tax", "amount": "0.10"}]}]}
    )
    rest = amazon_charges(order)
    rest[first]["Tax"] -= D("0.10")
    items = [
        {"orderItemId": code, "components": [{"type": k, "amount": str(v)} for k, v in comps.items() if v]}
        for code, comps in rest.items()
    ]
    channel.amazon_event(oid, {"type": "refund", "items": items})
    age_amazon_refunds(channel)
    assert_success(channel.run_dag(DAG))

    summary = summary_of(channel)
    assert summary["mirrored"] == 1 and summary.get("facilitator_tax_only") == 1, summary
    [mirrored] = all_memos(channel, commerce["entity_id"])  # the tax-only refund has nothing Commerce can refund
    assert D(mirrored["tax_amount"]) == 0
    refunds = channel.amazon("GET", "/_sandbox/refunds")["refunds"]
    refunded = [c for r in refunds for i in r["items"] for c in i["components"]]
    assert sum(D(c["amount"]) for c in refunded if c["type"].endswith("Tax")) == tax  # Amazon gave all the tax back
    # the memo is Amazon's refund without the tax Commerce never had: what the buyer paid Commerce, to the cent
    assert D(mirrored["grand_total"]) == sum(D(c["amount"]) for c in refunded if not c["type"].endswith("Tax"))
    assert D(mirrored["grand_total"]) == D(commerce["total_paid"])
    events = [w for w in channel.store.writes.for_order(oid) if w["kind"] == "refund_event"]
    excluded = [D(v) for w in events for comps in w["detail"]["excluded_tax"].values() for v in comps.values()]
    assert sum(excluded) == tax and all(w["status"] == "done" for w in events)  # recorded, nothing quarantined
    assert open_quarantine(channel.store, "amazon_refund") == []
    note = next(c for c in order_comments(channel, commerce) if "Amazon refund of" in c)
    assert "collected by Amazon as marketplace facilitator" in note
    # the three-way check compares like with like: confirmed, no false mismatch
    check = channel.store.refund_checks.get(f"mirror:{mirrored['entity_id']}")
    assert check["status"] == "confirmed", check
    assert open_mismatches(channel.store) == []

    assert_success(channel.run_dag(DAG))  # a rerun mirrors nothing again
    assert summary_of(channel)["mirrored"] == 0
    assert len(all_memos(channel, commerce["entity_id"])) == 1 and open_mismatches(channel.store) == []


@pytest.mark.parametrize("facilitator_tax", ["exclude", "include"])
def test_credit_memo_on_gift_wrapped_taxed_order_accepted_and_confirmed(channel, facilitator_tax):
    """A full credit memo (shipping & handling included) on an order with a paid, taxed gift wrap: the adjustment
    splits Shipping / GiftWrap (and their taxes) as Amazon charged them, so Amazon accepts it. Under ``exclude`` the
    memo has no tax; the adjustment adds the tax Amazon collected, which Amazon expects to refund with the goods."""
    order = imported_taxed_order(channel, facilitator_tax)
    oid, tax = order["orderId"], amazon_tax(order)
    amazon_total = D(order["proceeds"]["grandTotal"]["amount"])
    commerce = commerce_order(channel, oid)
    memo_id = credit_memo(channel, oid, None, shipping=str(commerce["shipping_invoiced"]))
    memo_total = D(memo(channel, memo_id)["grand_total"])
    assert memo_total == (amazon_total - tax if facilitator_tax == "exclude" else amazon_total)
    run_and_settle(channel)

    entry = outbox(channel, memo_id)
    assert entry["status"] == "accepted", entry
    [refund] = feed_refunds(channel, oid)
    sent = {i["orderItemId"]: components(i) for i in refund["items"]}
    assert sent == amazon_charges(order)
    first = order["orderItems"][0]["orderItemId"]
    assert sent[first]["GiftWrap"] == D("3.99") and sent[first]["GiftWrapTax"] == D("0.29")
    assert sum(v for comps in sent.values() for v in comps.values()) == amazon_total  # the buyer gets it all back
    collected = entry["payload"].get("facilitator_tax") or {}
    assert sum(D(v) for comps in collected.values() for v in comps.values()) == (
        tax if facilitator_tax == "exclude" else 0
    )

    age_amazon_refunds(channel)  # Amazon posts it: recognised as ours, checked three ways
    assert_success(channel.run_dag(DAG))
    summary = summary_of(channel)
    assert summary["recognised_own"] == 1 and summary["mirrored"] == 0, summary
    check = channel.store.refund_checks.get(f"sent:{memo_id}")
    assert check["status"] == "confirmed", check
    assert check["memo_amounts"] == check["accepted_amounts"] == check["posted_amounts"]
    assert open_mismatches(channel.store) == [] and open_quarantine(channel.store, "creditmemo") == []
    assert [m["entity_id"] for m in all_memos(channel, commerce["entity_id"])] == [memo_id]


def test_shipping_refund_on_gift_wrapped_order_is_shipping_first(channel):
    """A memo refunding only part of the shipping & handling: Shipping up to the items' shipping, the rest GiftWrap."""
    order = imported_taxed_order(channel, "include")
    oid = order["orderId"]
    charges = amazon_charges(order)
    shipping = sum((c.get("Shipping", D(0)) for c in charges.values()), D(0))
    commerce = commerce_order(channel, oid)
    first_line = int(commerce["items"][0]["item_id"])
    memo_id = hook().refund_order(
        int(commerce["entity_id"]), [{"order_item_id": first_line, "qty": 0}], shipping_amount=shipping + D("1.00")
    )
    run_and_settle(channel)
    assert outbox(channel, memo_id)["status"] == "accepted", outbox(channel, memo_id)
    [refund] = feed_refunds(channel, oid)
    sent = [components(i) for i in refund["items"]]
    assert sum(c.get("Shipping", D(0)) for c in sent) == shipping
    assert sum(c.get("GiftWrap", D(0)) for c in sent) == D("1.00")
