"""Order-level proceeds (``order_charges``) on the Commerce order, table-driven: a delivery tip is a charge in
shipping & handling with a comment, the aggregated types are not counted twice, an unknown type is quarantined
by name; and what a refund of such an order does. No Airflow, no HTTP."""

from __future__ import annotations

import re
from decimal import Decimal

import pytest

from amazon_commerce_sync import transform
from amazon_commerce_sync.currency import StoreCurrency
from amazon_commerce_sync.refunds import RefundLine, RefundProblem, amazon_paid_by_item, plan_adjustment, plan_mirror
from tests.unit.test_order_programs import EXCLUDE, assert_adds_up, build, comments, item, m, order

D = Decimal
TIP_COMMENT = (
    "Delivery tip 5.00 USD (Amazon status FINALIZED), paid by the buyer for the delivery and charged by Amazon "
    "separately from the items: included in shipping & handling."
)


def tipped(*items, tip="5.00", status="FINALIZED", in_total=True, aggregated=True, **extra):
    """An order with an order-level DELIVERY_TIP; ``in_total``: Amazon's grand total counts it;
    ``aggregated``: the order's breakdowns also sum up the items' (ITEM, SHIPPING, TAX), as Amazon's do."""
    o = order(*items, **extra)
    entries = [b for i in o["orderItems"] for b in i["proceeds"]["breakdowns"]]
    breakdowns = []
    if aggregated:
        for kind in ("ITEM", "SHIPPING", "TAX"):
            amount = sum((D(b["subtotal"]["amount"]) for b in entries if b["type"] == kind), D(0))
            breakdowns.append({"type": kind, "subtotal": m(str(amount))})
    tip_entry = {"type": "DELIVERY_TIP", "subtotal": m(tip)}
    if status:
        tip_entry["status"] = status
    breakdowns.append(tip_entry)
    grand = D(o["proceeds"]["grandTotal"]["amount"]) + (D(tip) if in_total else 0)
    o["proceeds"] = {"grandTotal": m(str(grand)), "breakdowns": breakdowns}
    return o


@pytest.mark.parametrize(
    ("o", "shipping", "grand", "note"),
    [
        # item 20.00 + shipping 5.00 + tax 2.50 = 27.50; the tip is shipping & handling, untaxed
        (tipped(), "10.00", "32.50", TIP_COMMENT),
        (tipped(aggregated=False), "10.00", "32.50", TIP_COMMENT),
        (tipped(status=None), "10.00", "32.50", TIP_COMMENT.replace(" (Amazon status FINALIZED)", "")),
        (tipped(status="PENDING"), "10.00", "32.50", TIP_COMMENT.replace("FINALIZED", "PENDING")),
        # a pending tip Amazon's grand total does not count yet: noted, not charged
        (
            tipped(status="PENDING", in_total=False),
            "5.00",
            "27.50",
            "Delivery tip 5.00 USD (Amazon status PENDING): not yet in Amazon's order total, so not on this order.",
        ),
        # with a paid gift wrap: both in shipping & handling
        (tipped(item(wrap=("3.00", "0.30"))), "13.00", "35.80", TIP_COMMENT),
    ],
)
def test_a_delivery_tip_is_shipping_and_handling_with_a_comment(o, shipping, grand, note):
    amounts, entity = build(o)
    assert amounts.grand_total == D(grand) == D(o["proceeds"]["grandTotal"]["amount"])
    assert D(entity["grand_total"]) == D(grand) and D(entity["base_grand_total"]) == D(grand)
    assert D(entity["shipping_amount"]) == D(shipping) == D(entity["base_shipping_amount"])
    assert "adjustment_positive" not in entity  # not an "other" charge: invoices take shipping, not adjustments
    total = entity["extension_attributes"]["shipping_assignments"][0]["shipping"]["total"]
    assert D(total["shipping_amount"]) == D(shipping)
    assert note in comments(entity)
    charged = "not on this order" not in note
    assert entity["shipping_description"].endswith("+ delivery tip") is charged
    assert_adds_up(entity)


def test_amazons_us_example_shape_adds_up_with_base_amounts_at_a_rate():
    """Amazon's example 123-4567890-1234567: 149.97 items + 0.02 tax + 5.00 tip = 154.99, on a EUR store."""
    a = item("1", "SKU-A", price="99.98", shipping="0.00", item_tax="0.02", ship_tax="0.00")
    b = item("2", "SKU-B", price="49.99", shipping="0.00", item_tax="0.00", ship_tax="0.00")
    o = tipped(a, b)
    assert o["proceeds"]["grandTotal"]["amount"] == "154.99"
    store = StoreCurrency(1, "EUR", {"USD": D("1.25")}, frozenset({"EUR", "USD"}))
    _, entity = build(o, store_currency=store)
    assert D(entity["grand_total"]) == D("154.99") and D(entity["shipping_amount"]) == D("5.00")
    assert D(entity["base_shipping_amount"]) == D("4.00")
    base_parts = (
        D(entity["base_subtotal"])
        + D(entity["base_shipping_amount"])
        + D(entity["base_tax_amount"])
        + D(entity["base_discount_amount"])
    )
    assert base_parts == D(entity["base_grand_total"]) == D(entity["payment"]["base_amount_ordered"])


def test_exclude_facilitator_tax_keeps_the_tip():
    o = tipped(item(tax={"taxCollections": [{"model": "MARKETPLACE_FACILITATOR", "responsibleParty": "X"}]}))
    _, entity = build(o, EXCLUDE)
    assert D(entity["grand_total"]) == D("30.00")  # 32.50 - 2.50 tax Amazon collects
    assert D(entity["shipping_amount"]) == D("10.00") and D(entity["tax_amount"]) == 0
    assert TIP_COMMENT in comments(entity)
    assert_adds_up(entity)


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        # a finalized tip Amazon's grand total does not count: the amounts do not add up, the tip named
        (
            lambda o: o["proceeds"].update(grandTotal=m("27.50")),
            "amounts do not add up: items, shipping, tax and discounts, delivery tip 5.00 give 32.50 USD "
            "but Amazon's order total is 27.50 USD",
        ),
        (
            lambda o: o["proceeds"]["breakdowns"].append({"type": "SERVICE_FEE", "subtotal": m("1.00")}),
            "order-level proceeds type 'SERVICE_FEE' (proceeds.breakdowns[4]) is not one Amazon's Orders API "
            "2026-01-01 lists",
        ),
        (lambda o: o["proceeds"]["breakdowns"][3].update(subtotal=m("-5.00")), "negative DELIVERY_TIP"),
        (
            lambda o: o["proceeds"]["breakdowns"][3].update(subtotal=m("5.00", "EUR")),
            "currency EUR differs from the order's USD",
        ),
        # an order-level charge of an aggregated type no item carries does not add up either
        (
            lambda o: (
                o["proceeds"]["breakdowns"].append({"type": "COD_FEE", "subtotal": m("2.00")})
                or o["proceeds"].update(grandTotal=m("34.50"))
            ),
            "Amazon's order total is 34.50 USD",
        ),
    ],
)
def test_order_level_charges_that_cannot_be_taken_are_quarantined_by_name(change, reason):
    o = tipped()
    change(o)
    with pytest.raises(transform.MalformedOrder, match=re.escape(reason)):
        transform.order_amounts(o)


# -- refunds of a tipped order ------------------------------------------------------------------------
def test_a_credit_memo_refunding_the_tip_as_shipping_is_not_sent_to_amazon():
    """Amazon's adjustment refunds per item; the tip belongs to no item, so a memo that refunds the whole
    shipping & handling (tip included) is refused with the reason, never sent as item shipping."""
    o = tipped()
    paid = amazon_paid_by_item(o)
    assert paid == {
        "1": {
            "Principal": D("20.00"),
            "Tax": D("2.00"),
            "Shipping": D("5.00"),
            "ShippingTax": D("0.50"),
            "GiftWrap": D("0"),
            "GiftWrapTax": D("0"),
            "Other": D("0"),
        }
    }  # the tip is no item's
    line = {"order_item_id": 11, "sku": "SKU-A", "qty": 1, "row_total": "20.00", "tax_amount": "2.00"}
    memo = {
        "entity_id": 9,
        "order_currency_code": "USD",
        "items": [line],
        "shipping_amount": "10.00",
        "shipping_tax_amount": "0.50",
        "grand_total": "32.50",
    }
    with pytest.raises(
        RefundProblem, match="GiftWrap refund of 5.00 is more than .* delivery tip.*: lower the memo's shipping by 5.00"
    ):
        plan_adjustment(memo, currency="USD", item_codes={11: "1"}, paid=paid, refunded={}, reason="Other")
    # the items and their own shipping go through
    items = plan_adjustment(
        {**memo, "shipping_amount": "5.00", "grand_total": "27.50"},
        currency="USD",
        item_codes={11: "1"},
        paid=paid,
        refunded={},
        reason="Other",
    )
    assert items[0].components == {
        "Principal": D("20.00"),
        "Tax": D("2.00"),
        "Shipping": D("5.00"),
        "ShippingTax": D("0.50"),
    }


def test_an_amazon_refund_of_a_tipped_order_refunds_shipping_not_the_tip():
    """Amazon refunds the item and its shipping: the offline memo gives back Amazon's shipping (5.00), not
    the Commerce shipping & handling that includes the tip (10.00), and never more than was paid."""
    order_in_commerce = {
        "shipping_amount": "10.00",
        "shipping_tax_amount": "0.50",
        "shipping_invoiced": "10.00",
        "shipping_refunded": "0",
        "total_paid": "32.50",
        "total_refunded": "0",
        "items": [
            {
                "item_id": 11,
                "qty_ordered": 1,
                "qty_invoiced": 1,
                "qty_refunded": 0,
                "row_total": "20.00",
                "discount_amount": "0",
                "row_invoiced": "20.00",
                "amount_refunded": "0",
                "tax_invoiced": "2.00",
                "tax_refunded": "0",
                "discount_invoiced": "0",
                "discount_refunded": "0",
            }
        ],
    }
    charges = {"Principal": D("20.00"), "Tax": D("2.00"), "Shipping": D("5.00"), "ShippingTax": D("0.50")}
    result = plan_mirror(order_in_commerce, [RefundLine("1", charges, "USD")], {"1": 11})
    assert result["shipping_amount"] == D("5.00") and result["total"] == D("27.50")
    assert result["items"] == [{"order_item_id": 11, "qty": 1}]
    # 20.00 + 2.00 + 5.00 + 0.25 (half the shipping tax, prorated on 10.00) = 27.25: the rest an adjustment
    assert result["adjustment_positive"] == D("0.25") and result["uncollected"] == 0
    # after an earlier refund only what is left of the paid total can be given back
    result = plan_mirror({**order_in_commerce, "total_refunded": "20.00"}, [RefundLine("1", charges, "USD")], {"1": 11})
    assert result["total"] == D("12.50") and result["uncollected"] == D("15.00")
