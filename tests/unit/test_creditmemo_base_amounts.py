"""Credit memo arguments in the store's base currency (``currency.creditmemo_arguments``) and the refund mirror's
look-up of a memo whose answer was lost, comparing what was sent with the memo's base amounts.

Magento reads ``shipping_amount``, ``adjustment_positive`` and ``adjustment_negative`` of ``POST
/V1/order/{id}/refund`` as base amounts (``CreditmemoFactory::initData``, ``Creditmemo::setAdjustmentPositive``).
"""

from __future__ import annotations

from decimal import Decimal

import pytest

from amazon_commerce_sync.commerce_writes.refunds import OfflineRefund, _is_memo_of
from amazon_commerce_sync.currency import creditmemo_arguments, order_rate

D = Decimal
# A CAD order on a USD store (USD→CAD 1.35): CAD 20.25 shipping is USD 15.00.
CAD_ORDER = {
    "base_to_order_rate": 1.35,
    "shipping_amount": 20.25,
    "base_shipping_amount": 15.0,
    "shipping_refunded": 0,
    "base_shipping_refunded": 0,
}


@pytest.mark.parametrize(
    ("order", "rate"),
    [
        (CAD_ORDER, D("1.35")),
        ({"base_to_order_rate": 0}, D(1)),
        ({}, D(1)),
        ({"base_to_order_rate": "0.92"}, D("0.92")),
    ],
)
def test_order_rate_is_commerce_rate_or_one(order, rate):
    assert order_rate(order) == rate


@pytest.mark.parametrize(
    ("shipping", "positive", "negative", "expected"),
    [
        # all the shipping left: the base shipping left, exactly (never 20.25 / 1.35 recomputed)
        (D("20.25"), D(0), D(0), {"shipping_amount": D("15.0"), "adjustment_positive": D("0.00")}),
        # a part: CAD 10.00 / 1.35 = 7.407 -> USD 7.41; CAD 1.00 / 1.35 = 0.7407 -> 0.74; 2.70 -> 2.00
        (D("10.00"), D("1.00"), D("2.70"), {"shipping_amount": D("7.41"), "adjustment_positive": D("0.74")}),
        # half a cent rounds up: CAD 0.02025 / 1.35 = 0.015 -> 0.02
        (D("0"), D("0.02025"), D(0), {"shipping_amount": D("0.00"), "adjustment_positive": D("0.02")}),
    ],
)
def test_cad_amounts_become_usd_arguments(shipping, positive, negative, expected):
    got = creditmemo_arguments(
        CAD_ORDER, shipping_amount=shipping, adjustment_positive=positive, adjustment_negative=negative
    )
    assert got["shipping_amount"] == expected["shipping_amount"]
    assert got["adjustment_positive"] == expected["adjustment_positive"]
    assert got["adjustment_negative"] == (negative / D("1.35")).quantize(D("0.01"))


def test_rest_of_partly_refunded_shipping_is_the_base_rest():
    order = {**CAD_ORDER, "shipping_refunded": 10.0, "base_shipping_refunded": 7.41}
    assert creditmemo_arguments(order, shipping_amount=D("10.25"))["shipping_amount"] == D("7.59")


def test_without_shipping_magento_refunds_the_shipping_left():
    assert "shipping_amount" not in creditmemo_arguments(CAD_ORDER)


def test_order_in_the_base_currency_is_sent_as_is():
    order = {"base_to_order_rate": 1, "shipping_amount": 4.99, "base_shipping_amount": 4.99}
    got = creditmemo_arguments(order, shipping_amount=D("2.50"), adjustment_positive=D("1.23"))
    assert (got["shipping_amount"], got["adjustment_positive"], got["adjustment_negative"]) == (
        D("2.50"),
        D("1.23"),
        D("0.00"),
    )


def test_offline_refund_for_order_converts_and_keeps_the_order_currency_total():
    refund = OfflineRefund.for_order(
        CAD_ORDER,
        items=[{"order_item_id": 7, "qty": 1}],
        shipping_amount=D("20.25"),
        adjustment_positive=D("1.35"),
        adjustment_negative=D(0),
        total=D("41.60"),
    )
    assert (refund.shipping_amount, refund.adjustment_positive, refund.total) == (D("15.0"), D("1.00"), D("41.60"))
    assert refund.sent() == {
        "items": {"7": "1"},
        "base_shipping_amount": "15.0",
        "base_adjustment_positive": "1.00",
        "base_adjustment_negative": "0.00",
    }


def _memo(**over):
    memo = {
        "grand_total": 41.6,
        "base_shipping_amount": 15,
        "base_adjustment_positive": 1,
        "base_adjustment_negative": 0,
        "items": [{"order_item_id": 7, "qty": 1}],
    }
    return {**memo, **over}


SENT = {
    "total": "41.60",
    "sent": {
        "items": {"7": "1"},
        "base_shipping_amount": "15.0",
        "base_adjustment_positive": "1.00",
        "base_adjustment_negative": "0.00",
    },
}


@pytest.mark.parametrize(
    ("memo", "found"),
    [
        (_memo(), True),
        (_memo(grand_total=41.61), True),  # the order-currency total is not compared: the memo's own rounding
        (_memo(base_shipping_amount=20.25), False),  # CAD shipping read as USD is another memo
        (_memo(base_adjustment_positive=1.35), False),
        (_memo(items=[{"order_item_id": 7, "qty": 2}]), False),
        (_memo(items=[{"order_item_id": 7, "qty": 1}, {"order_item_id": 8, "qty": 1}]), False),
        (_memo(items=[{"order_item_id": 7, "qty": 1}, {"order_item_id": 8, "qty": 0}]), True),
    ],
)
def test_a_memo_is_found_by_what_was_sent(memo, found):
    assert _is_memo_of(memo, SENT) is found


def test_an_intent_recorded_before_base_amounts_were_kept_is_found_by_its_total():
    assert _is_memo_of(_memo(), {"total": "41.60"}) is True
    assert _is_memo_of(_memo(grand_total=41.61), {"total": "41.60"}) is False
