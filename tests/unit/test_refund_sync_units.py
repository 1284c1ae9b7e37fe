"""The refund sync's pure parts: adjustment plans, Finances refund lines, own-refund matching, mirror plans."""

from __future__ import annotations

import xml.etree.ElementTree as ET  # noqa: S405 - only used to serialise our own element
from decimal import Decimal as D

import defusedxml.ElementTree as SafeET
import pytest

from amazon_commerce_sync.feeds import build_adjustment_message
from amazon_commerce_sync.pipelines.refund_sync import combine
from amazon_commerce_sync.refunds import (
    RefundLine,
    RefundProblem,
    adjustment_payload,
    is_refund,
    match_own,
    plan_adjustment,
    plan_mirror,
    refund_lines,
    refunded_by_item,
    transaction_key,
)

PAID = {
    "A1": {"Principal": D("78.34"), "Tax": D("11.73"), "Shipping": D("6.79"), "ShippingTax": D("1.02"), "Other": D(0)},
    "A2": {"Principal": D("24.47"), "Tax": D("3.66"), "Shipping": D("6.79"), "ShippingTax": D("1.02"), "Other": D(0)},
}
CODES = {11: "A1", 12: "A2"}


def memo(items, *, shipping="0", shipping_tax="0", positive="0", negative="0", currency="USD", memo_id=7):
    lines = [
        {
            "order_item_id": oid,
            "sku": f"SKU{oid}",
            "qty": qty,
            "row_total": row,
            "tax_amount": tax,
            "discount_amount": disc,
        }
        for oid, qty, row, tax, disc in items
    ]
    grand = sum(D(r) - D(d) + D(t) for _, _, r, t, d in items) + D(shipping) + D(shipping_tax)
    grand += D(positive) - D(negative)
    return {
        "entity_id": memo_id,
        "order_id": 3,
        "order_currency_code": currency,
        "items": lines,
        "shipping_amount": shipping,
        "shipping_tax_amount": shipping_tax,
        "adjustment_positive": positive,
        "adjustment_negative": negative,
        "grand_total": str(grand),
    }


def plan(m, refunded=None, currency="USD"):
    return plan_adjustment(m, currency=currency, item_codes=CODES, paid=PAID, refunded=refunded or {}, reason="Other")


def total(items):
    return sum(v for i in items for v in i.components.values())


def test_full_refund_with_shipping_adds_up_to_the_memo():
    m = memo(
        [(11, 1, "87.04", "11.73", "8.70"), (12, 1, "27.19", "3.66", "2.72")], shipping="13.58", shipping_tax="2.04"
    )
    items = plan(m)
    assert total(items) == D(m["grand_total"])
    a1, a2 = items
    assert a1.components == {
        "Principal": D("78.34"),
        "Tax": D("11.73"),
        "Shipping": D("6.79"),
        "ShippingTax": D("1.02"),
    }
    assert a2.components["Shipping"] == D("6.79") and a2.components["ShippingTax"] == D("1.02")
    assert [i.merchant_adjustment_item_id for i in items] == ["cm7-1", "cm7-2"]
    assert {i.reason for i in items} == {"Other"} and a1.quantity == 1


def test_shipping_of_a_partial_refund_spills_over_to_other_items():
    items = plan(memo([(12, 1, "27.19", "3.66", "2.72")], shipping="10.00"))
    by_code = {i.amazon_order_item_code: i.components for i in items}
    assert by_code["A2"]["Shipping"] == D("6.79") and by_code["A1"] == {"Shipping": D("3.21")}


def test_adjustments_goodwill_and_fee():
    items = plan(memo([(11, 1, "87.04", "11.73", "8.70")], positive="2.50"))
    assert items[0].components["Goodwill"] == D("2.50")
    items = plan(memo([(11, 1, "87.04", "11.73", "8.70")], negative="5.00"))
    assert items[0].components["Principal"] == D("73.34") and total(items) == D("85.07")


@pytest.mark.parametrize(
    ("m", "kwargs", "message"),
    [
        (memo([(11, 1, "87.04", "11.73", "8.70")], currency="EUR"), {}, "is in EUR"),
        (memo([(99, 1, "10.00", "0", "0")]), {}, "not an item of the Amazon order"),
        (memo([(11, 1, "87.04", "11.73", "8.70")]), {"refunded": {"A1": {"Principal": D("80")}}}, "left to refund"),
        (memo([(11, 1, "87.04", "11.73", "8.70")], shipping="99.00"), {}, "more than is left"),
        (memo([(11, 1, "0", "0", "0")]), {}, "refunds nothing"),
    ],
)
def test_refunds_that_cannot_be_sent(m, kwargs, message):
    with pytest.raises(RefundProblem, match=message):
        plan(m, **kwargs)


def test_components_must_add_up_to_the_memo():
    m = memo([(11, 1, "87.04", "11.73", "8.70")])
    m["grand_total"] = "1.00"
    with pytest.raises(RefundProblem, match="add up"):
        plan(m)


def test_message_xml_and_payload_round_trip():
    m = memo([(11, 1, "87.04", "11.73", "8.70")])
    payload = adjustment_payload("111-0000000-0000001", m, plan(m))
    assert payload["total"] == "90.07" and payload["creditmemo_id"] == 7
    message = SafeET.fromstring(ET.tostring(build_adjustment_message(3, payload)))
    assert message.findtext("MessageID") == "3"
    adjustment = message.find("OrderAdjustment")
    assert adjustment.findtext("AmazonOrderID") == "111-0000000-0000001"
    assert adjustment.findtext("ActionType") == "Refund"
    [item] = adjustment.findall("AdjustedItem")
    assert item.findtext("AmazonOrderItemCode") == "A1" and item.findtext("MerchantAdjustmentItemID") == "cm7-1"
    amounts = {
        c.findtext("Type"): (c.find("Amount").text, c.find("Amount").get("currency")) for c in item.iter("Component")
    }
    assert amounts == {"Principal": ("78.34", "USD"), "Tax": ("11.73", "USD")}


def test_refunded_by_item_counts_live_adjustments_and_amazon_refunds():
    entries = [
        {"status": "accepted", "payload": {"items": [{"code": "A1", "components": {"Principal": "10.00"}}]}},
        {"status": "rejected", "payload": {"items": [{"code": "A1", "components": {"Principal": "50.00"}}]}},
        {"status": "pending", "payload": {"items": [{"code": "A2", "components": {"Tax": "1.00"}}]}},
    ]
    writes = [
        {"kind": "refund_event", "detail": {"foreign": {"A1": {"Shipping": "2.00"}}}},
        {"kind": "comment", "detail": None},
    ]
    assert refunded_by_item(entries, writes) == {
        "A1": {"Principal": D("10.00"), "Shipping": D("2.00")},
        "A2": {"Tax": D("1.00")},
    }


def _b(kind, amount, children=()):
    return {
        "breakdownType": kind,
        "breakdownAmount": {"currencyCode": "USD", "currencyAmount": D(amount)},
        "breakdowns": list(children),
    }


# A Finances 2024-06-19 refund transaction as the model describes it: related identifiers, items with a
# ProductContext (the SKU; no order item id), breakdowns of what the buyer got back (negative) and fees.
TRANSACTION = {
    "relatedIdentifiers": [
        {"relatedIdentifierName": "ORDER_ID", "relatedIdentifierValue": "111-0000000-0000001"},
        {"relatedIdentifierName": "REFUND_ID", "relatedIdentifierValue": "amzn1:crow:1"},
    ],
    "transactionType": "Refund",
    "transactionId": "b1qD0oAliFkLiqRyGbmeT0DoS2Z2kHzi7TZ92z-vARI",
    "transactionStatus": "DEFERRED",
    "description": "Refund Order",
    "postedDate": "2026-03-01T10:00:00Z",
    "totalAmount": {"currencyCode": "USD", "currencyAmount": D("-88.06")},
    "items": [
        {
            "relatedIdentifiers": [
                {"itemRelatedIdentifierName": "ORDER_ADJUSTMENT_ITEM_ID", "itemRelatedIdentifierValue": "12345"}
            ],
            "breakdowns": [
                _b("ProductCharges", "-90.07", [_b("Principal", "-78.34"), _b("Tax", "-11.73")]),
                _b("AmazonFees", "2.01", [_b("Commission", "11.75"), _b("RefundCommission", "-2.35")]),
            ],
            "contexts": [{"contextType": "ProductContext", "sku": "SKU-A", "quantityShipped": 1}],
        }
    ],
}
SKUS = {"SKU-A": ["A1"], "SKU-B": ["A2"]}


def test_refund_lines_and_transaction_key():
    [line] = refund_lines(TRANSACTION, SKUS)
    assert line.code == "A1" and line.charges == {"Principal": D("78.34"), "Tax": D("11.73")} and line.currency == "USD"
    key = transaction_key(TRANSACTION)
    assert key == "amzrefund:111-0000000-0000001:b1qD0oAliFkLiqRyGbmeT0DoS2Z2kHzi7TZ92z-vARI"
    # released later: the same transaction, the same key
    assert transaction_key({**TRANSACTION, "transactionStatus": "DEFERRED_RELEASED"}) == key
    # a release posted as a transaction of its own names the deferred one: still the same refund
    release = {
        **TRANSACTION,
        "transactionId": "another-id",
        "transactionStatus": "RELEASED",
        "relatedIdentifiers": [
            *TRANSACTION["relatedIdentifiers"],
            {
                "relatedIdentifierName": "DEFERRED_TRANSACTION_ID",
                "relatedIdentifierValue": TRANSACTION["transactionId"],
            },
        ],
    }
    assert transaction_key(release) == key
    assert transaction_key({**TRANSACTION, "transactionId": "other"}) != key
    assert is_refund(TRANSACTION) and not is_refund({**TRANSACTION, "transactionType": "Shipment"})


def test_refund_lines_shipping_gift_wrap_goodwill_and_unknown_sku():
    item = {
        "breakdowns": [
            _b("Shipping", "-7.81", [_b("ShippingCharge", "-6.79"), _b("ShippingTax", "-1.02")]),
            _b("GiftWrap", "-4.39", [_b("GiftWrapCharge", "-3.99"), _b("GiftWrapTax", "-0.40")]),
            _b("OtherCharges", "-2.00", [_b("Goodwill", "-2.00")]),
            _b("PromoRebates", "1.00"),
        ],
        "contexts": [{"contextType": "ProductContext", "sku": "SKU-B"}],
    }
    [line] = refund_lines({**TRANSACTION, "items": [item]}, SKUS)
    assert line.code == "A2" and line.charges == {
        "Shipping": D("6.79"),
        "ShippingTax": D("1.02"),
        "GiftWrap": D("3.99"),
        "GiftWrapTax": D("0.40"),
        "Goodwill": D("2.00"),
    }
    two = {**TRANSACTION, "items": [item, item]}
    assert [ln.code for ln in refund_lines(two, {"SKU-B": ["A1", "A2"]})] == ["A1", "A2"]  # one SKU, two items
    with pytest.raises(RefundProblem, match="SKU-B is not an item"):
        refund_lines({**TRANSACTION, "items": [item]}, {"SKU-A": ["A1"]})


def test_own_refunds_match_on_item_and_amounts_not_on_the_sandbox_field():
    lines = refund_lines(TRANSACTION, SKUS)
    ours = [{"code": "A1", "madj": "cm7-1", "components": {"Principal": "78.34", "Tax": "11.73"}}]
    own, foreign = match_own(lines, ours)
    assert [m for _, m in own] == ["cm7-1"] and not foreign
    own, foreign = match_own(lines, [{**ours[0], "components": {"Principal": "78.34"}}])
    assert not own and foreign == lines
    two = [RefundLine("A1", {"Principal": D("5")}, "USD"), RefundLine("A1", {"Principal": D("5")}, "USD", "cm9-1")]
    candidates = [
        {"code": "A1", "madj": "cm8-1", "components": {"Principal": "5"}},
        {"code": "A1", "madj": "cm9-1", "components": {"Principal": "5"}},
    ]
    own, foreign = match_own(two, candidates)
    assert sorted(m for _, m in own) == ["cm8-1", "cm9-1"] and not foreign  # each of ours matched once


COMMERCE_ORDER = {
    "shipping_amount": "13.58",
    "shipping_tax_amount": "2.04",
    "shipping_invoiced": "13.58",
    "shipping_refunded": "0",
    "items": [
        {
            "item_id": 11,
            "qty_ordered": 2,
            "qty_invoiced": 2,
            "qty_refunded": 0,
            "row_total": "100.00",
            "discount_amount": "10.00",
            "row_invoiced": "100.00",
            "amount_refunded": "0",
            "tax_invoiced": "9.00",
            "tax_refunded": "0",
            "discount_invoiced": "10.00",
            "discount_refunded": "0",
        },
        {
            "item_id": 12,
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
        },
    ],
}


def test_mirror_plan_whole_units_and_remainder():
    lines = [RefundLine("A1", {"Principal": D("45.00"), "Tax": D("4.50"), "Shipping": D("6.79")}, "USD")]
    result = plan_mirror(COMMERCE_ORDER, lines, {"A1": 11, "A2": 12})
    assert result["items"] == [{"order_item_id": 11, "qty": 1}]
    assert result["shipping_amount"] == D("6.79")
    # 1 unit = 50.00 - 5.00 + 4.50 = 49.50; shipping 6.79 + tax 1.02 -> the remainder is a negative adjustment
    assert result["adjustment_negative"] == D("1.02") and result["adjustment_positive"] == 0
    assert result["total"] == D("56.29")


def test_mirror_plan_amount_only_refund_names_an_item_with_quantity_zero():
    result = plan_mirror(COMMERCE_ORDER, [RefundLine("A2", {"Principal": D("3.00")}, "USD")], {"A2": 12})
    assert result["items"] == [{"order_item_id": 11, "qty": 0}]  # never an empty list (= refund everything)
    assert result["shipping_amount"] == 0 and result["adjustment_positive"] == D("3.00")


def test_combine_sums_the_counts():
    out = combine([{"account": "a", "sent": 2, "rejected": 1}, {"account": "b", "mirrored": 1}, None])
    assert out["sent"] == 2 and out["rejected"] == 1 and out["mirrored"] == 1 and out["skipped"] == 0


def test_mirror_plan_refunds_at_most_what_commerce_collected():
    """A gift wrap booked on the Commerce order but never invoiced: Magento refunds at most total_paid."""
    order = {**COMMERCE_ORDER, "total_paid": "50.00", "total_refunded": "0"}
    lines = [RefundLine("A1", {"Principal": D("45.00"), "Tax": D("4.50"), "GiftWrap": D("3.99")}, "USD")]
    result = plan_mirror(order, lines, {"A1": 11, "A2": 12})
    assert result["total"] == D("50.00") and result["uncollected"] == D("3.49")
    assert result["adjustment_positive"] == D("0.50") and result["adjustment_negative"] == 0  # 49.50 + 0.50
    result = plan_mirror({**order, "total_paid": "200.00"}, lines, {"A1": 11})
    assert result["total"] == D("53.49") and result["uncollected"] == 0


WRAPPED = {  # A1 gift-wrapped for 3.99 + 0.29 tax: the Commerce order books it as shipping & handling
    "A1": {**PAID["A1"], "GiftWrap": D("3.99"), "GiftWrapTax": D("0.29")},
    "A2": PAID["A2"],
}


def test_shipping_beyond_the_items_shipping_is_gift_wrap():
    m = memo([], shipping=str(D("13.58") + D("3.99")), shipping_tax=str(D("2.04") + D("0.29")))
    items = plan_adjustment(m, currency="USD", item_codes=CODES, paid=WRAPPED, refunded={}, reason="Other")
    by_code = {i.amazon_order_item_code: i.components for i in items}
    assert by_code["A1"] == {
        "Shipping": D("6.79"),
        "ShippingTax": D("1.02"),
        "GiftWrap": D("3.99"),
        "GiftWrapTax": D("0.29"),
    }
    assert by_code["A2"] == {"Shipping": D("6.79"), "ShippingTax": D("1.02")}
    assert total(items) == D(m["grand_total"])
    with pytest.raises(RefundProblem, match="GiftWrap"):  # more than shipping and gift wrap together
        plan_adjustment(
            memo([], shipping="20.00"), currency="USD", item_codes=CODES, paid=WRAPPED, refunded={}, reason="Other"
        )


def test_facilitator_tax_the_commerce_order_lacks_is_added_to_the_adjustment():
    """marketplace_facilitator_tax: exclude: the memo carries no tax for A1; Amazon refunds the tax it collected."""
    collected: dict = {}
    half = memo([(11, 1, "43.52", "0", "4.35")])  # half of A1's Principal (39.17 of 78.34), no tax in Commerce
    items = plan_adjustment(
        half,
        currency="USD",
        item_codes=CODES,
        paid=PAID,
        refunded={},
        reason="Other",
        facilitator={"A1"},
        collected=collected,
    )
    [a1] = items
    assert a1.components == {"Principal": D("39.17"), "Tax": D("5.87")}  # 11.73 × 39.17 / 78.34, to the cent
    assert collected == {"A1": {"Tax": D("5.87")}} and total(items) == D(half["grand_total"]) + D("5.87")
    payload = adjustment_payload("111-1", half, items, collected)
    assert payload["facilitator_tax"] == {"A1": {"Tax": "5.87"}}
    # the rest of the item and all its shipping: all the tax that is left, none of Commerce's shipping tax
    rest = memo([(11, 1, "43.52", "0", "4.35")], shipping="6.79")
    refunded = {"A1": {"Principal": D("39.17"), "Tax": D("5.87")}}
    [a1] = plan_adjustment(
        rest, currency="USD", item_codes=CODES, paid=PAID, refunded=refunded, reason="Other", facilitator={"A1"}
    )
    assert a1.components == {"Principal": D("39.17"), "Tax": D("5.86"), "Shipping": D("6.79"), "ShippingTax": D("1.02")}
    # an item whose memo line carries tax was imported with it: nothing is added
    [a1] = plan_adjustment(
        memo([(11, 1, "87.04", "11.73", "8.70")]),
        currency="USD",
        item_codes=CODES,
        paid=PAID,
        refunded={},
        reason="Other",
        facilitator={"A1"},
    )
    assert a1.components == {"Principal": D("78.34"), "Tax": D("11.73")}


def test_amazon_refund_lines_without_the_facilitator_tax():
    from amazon_commerce_sync.refund_charges import commerce_lines

    lines = [
        RefundLine("A1", {"Principal": D("10"), "Tax": D("1.50"), "ShippingTax": D("0.20")}, "USD"),
        RefundLine("A2", {"Principal": D("5"), "Tax": D("0.75")}, "USD"),
        RefundLine("A1", {"Tax": D("0.10")}, "USD"),  # a tax-only refund
    ]
    kept, excluded = commerce_lines(lines, {"A1"})
    assert [(ln.code, ln.charges) for ln in kept] == [
        ("A1", {"Principal": D("10")}),
        ("A2", {"Principal": D("5"), "Tax": D("0.75")}),
    ]
    assert excluded == {"A1": {"Tax": D("1.60"), "ShippingTax": D("0.20")}}
