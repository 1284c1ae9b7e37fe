"""The three-way refund check's pure rules: the memo's own amounts, the comparable form, the differences."""

from __future__ import annotations

from decimal import Decimal as D

from amazon_commerce_sync.refund_amounts import (
    adjustment_amounts,
    comparable,
    describe,
    differences,
    memo_amounts,
    mirror_memo_amounts,
    near_own,
    transaction_totals,
)
from amazon_commerce_sync.refunds import RefundLine

MEMO = {
    "entity_id": 7,
    "items": [
        {"order_item_id": 11, "qty": 1, "row_total": "50.00", "tax_amount": "4.50", "discount_amount": "5.00"},
        {"order_item_id": 12, "qty": 0, "row_total": "0", "tax_amount": "0", "discount_amount": "0"},
    ],
    "shipping_amount": "6.79",
    "shipping_tax_amount": "1.02",
    "adjustment_positive": "2.00",
    "adjustment_negative": "1.50",
}


def test_memo_amounts_per_item_and_per_order():
    assert memo_amounts(MEMO, {11: "A1", 12: "A2"}) == {
        "A1": {"Principal": D("43.50"), "Tax": D("4.50")},  # 50 - 5 discount - 1.50 fee kept back
        "*": {"Shipping": D("6.79"), "ShippingTax": D("1.02"), "Goodwill": D("2.00")},
    }
    # no shipping tax on the memo: the memo's tax less its items'
    memo = {**MEMO, "shipping_tax_amount": None, "tax_amount": "5.52"}
    assert memo_amounts(memo, {11: "A1"})["*"]["ShippingTax"] == D("1.02")


def test_adjustment_spread_over_items_compares_per_order():
    items = [
        {"code": "A1", "components": {"Principal": "43.50", "Tax": "4.50", "Shipping": "3.40", "Goodwill": "2.00"}},
        {"code": "A2", "components": {"Shipping": "3.39", "ShippingTax": "1.02"}},
    ]
    assert differences(memo=memo_amounts(MEMO, {11: "A1"}), accepted=adjustment_amounts(items)) == []
    posted = comparable({"A1": {"Principal": D("42.50"), "Tax": D("4.50")}, "A2": {"Shipping": D("6.79")}})
    diffs = differences(memo=memo_amounts(MEMO, {11: "A1"}), accepted=adjustment_amounts(items), posted=posted)
    assert diffs[0] == {
        "item": "*",
        "component": "Goodwill",
        "memo": "2.00",
        "accepted": "2.00",
        "posted": "0",
    }
    assert {"item": "A1", "component": "Principal", "memo": "43.50", "accepted": "43.50", "posted": "42.50"} in diffs
    text = describe("111-0000000-0000001", 7, "USD", diffs)
    assert text.startswith("order 111-0000000-0000001, credit memo 7, USD: ")
    assert "Principal (item A1): memo 43.50, accepted 43.50, posted 42.50" in text


def test_mirror_compares_total_and_shipping():
    foreign = {"A1": {"Principal": "45.00", "Tax": "4.50", "GiftWrap": "3.99"}, "A2": {"Shipping": "6.79"}}
    memo = {"grand_total": "60.28", "shipping_amount": "6.79"}
    assert differences(memo=mirror_memo_amounts(memo), posted=transaction_totals(foreign)) == []
    short = {"grand_total": "56.29", "shipping_amount": "6.79"}  # the gift wrap Commerce never collected
    [diff] = differences(memo=mirror_memo_amounts(short), posted=transaction_totals(foreign))
    assert diff == {"item": "*", "component": "Total", "memo": "56.29", "posted": "60.28"}


def test_near_own_takes_one_accepted_adjustment_with_the_same_items_only():
    lines = [RefundLine("A1", {"Principal": D("9")}, "USD"), RefundLine("A2", {"Principal": D("1")}, "USD")]
    ours = [[{"code": "A1", "madj": "cm7-1"}], [{"code": "A2", "madj": "cm8-1"}, {"code": "A1", "madj": "cm8-2"}]]
    pairs, rest = near_own(lines, ours)
    assert [(ln.code, m) for ln, m in pairs] == [("A1", "cm8-2"), ("A2", "cm8-1")] and rest == []
    pairs, rest = near_own(lines[:1] * 2, ours)  # two lines of one item: not one adjustment's items
    assert pairs == [] and len(rest) == 2
    assert near_own(lines, []) == ([], lines)
